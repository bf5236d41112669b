"""GPU model tests (run on the GPU machine by tools/device-run.sh).

Each zoo model is exported with the local torch (TorchScript exporter at opset
17; the dynamo exporter at opset 18 with KILN_EXPORTERS=torchscript,dynamo),
built once into a dynamic plan (batch 1..32; sequence 16..128 and image side
64..224 where those axes are dynamic), and run by `kiln run PLAN --backend cuda`
at several shapes inside the profile from that one plan (RUNS: batch 1, 7 and
32, with an odd sequence length / image size on the middle run):
  FP32: every output within rtol 1e-3 / atol 1e-3 x the reference's RMS;
  FP16: relative L2 error <= 1.25x that of ideal FP16 storage per output (tests/fp16_ideal.py: weights and
  stored activations rounded to float16, FP32 compute, on onnxruntime; issue #14's criterion 2); no NaN/Inf.
Both comparisons go through tests/compare_outputs.py: the reference must not be
degenerate, and the tolerance must reject zeros and a 5%-perturbed reference.
The classifiers (resnet50, mobilenet_v2, efficientnet_b0, vit_b_16) also run
256 random inputs (8 runs of batch 32 through the one FP16 plan): kiln's top-1
differs from onnxruntime FP32's on at most max(1%, 1.5x that of ideal FP16
storage + 3) of them. Random-weight networks put many inputs on near-ties
(resnet50 --calibrate-bn, H100 2026-12-06: median top-1 margin 0.019 against
kiln's logit error 0.015 RMS; 191/256 agree), so a fixed 99% measures the
fixture, as the 1e-2 rel-L2 bound did (docs/GPU.md); ideal FP16 storage on the
same inputs is the oracle for how many flips FP16 itself causes. A reference
whose top-1 is one class for more than 90% of the inputs fails as a degenerate
test: agreeing on a constant says little about the engine.
"""
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
from compare_outputs import assert_close  # noqa: E402
from fp16_ideal import assert_fp16_within_ideal, ideal_fp16_session  # noqa: E402
from kiln_cli import ROOT, build_plan as kiln_build, run_model  # noqa: E402

ZOO = os.environ.get("KILN_GPU_ZOO", "/tmp/kiln-gpu-zoo")
MODELS = os.environ.get("KILN_GPU_MODELS", "super_resolution,resnet50,mobilenet_v2,efficientnet_b0,vit_b_16,"
                        "bert_encoder,hf_bert,llama_decoder").split(",")
EXPORTERS = os.environ.get("KILN_EXPORTERS", "torchscript").split(",")
# (batch, sequence length, image side) of each run; the plan's profile is
# batch 1..32, sequence SEQ_MIN..SEQ, image side HW_MIN..HW (dynamic axes only).
SEQ, SEQ_MIN, HW, HW_MIN = 128, 16, 224, 64
RUNS = [(1, SEQ, HW), (7, 37, 100), (32, SEQ, HW)]
CLASSIFIERS = ["resnet50", "mobilenet_v2", "efficientnet_b0", "vit_b_16"]
TOP1_RUNS, TOP1_BATCH = 8, 32


def model_path(name, exporter):
    d = os.path.join(ZOO, exporter)
    path = os.path.join(d, name + ".onnx")
    if not os.path.exists(path):
        opset = "17" if exporter == "torchscript" else "18"
        subprocess.run([sys.executable, os.path.join(ROOT, "tests", "models", "export_zoo.py"), d, "--only", name,
                        "--size", "224", "--opset", opset, "--exporter", exporter, "--calibrate-bn"], check=True)
    return path


def input_dims(model, batch, seq=SEQ, hw=HW):
    out = {}
    for inp in model.graph.input:
        dims = []
        for i, d in enumerate(inp.type.tensor_type.shape.dim):
            if d.HasField("dim_value"):
                dims.append(d.dim_value)
            elif i == 0:
                dims.append(batch)
            elif inp.type.tensor_type.elem_type == onnx.TensorProto.INT64:
                dims.append(seq)
            else:
                dims.append(hw)  # super-resolution's dynamic height/width
        out[inp.name] = (dims, inp.type.tensor_type.elem_type)
    return out


def feeds_for(model, batch, rng, seq=SEQ, hw=HW):
    feeds = {}
    for name, (dims, et) in input_dims(model, batch, seq, hw).items():
        if et == onnx.TensorProto.INT64:
            if "mask" in name:
                a = np.ones(dims, dtype=np.int64)
                a[..., -5:] = 0
            elif "type" in name:
                a = np.zeros(dims, dtype=np.int64)
            else:
                a = rng.integers(0, 1000, size=dims, dtype=np.int64)
        else:
            a = rng.standard_normal(dims).astype(np.float32)
        feeds[name] = a
    return feeds


def build_plan(path, model, fp16, tmp):
    def shapes(batch, seq, hw):
        return {k: dims for k, (dims, _) in input_dims(model, batch, seq, hw).items()}
    plan = os.path.join(tmp, "m.plan")
    print(kiln_build(path, plan, fp16, min_shapes=shapes(1, SEQ_MIN, HW_MIN), opt_shapes=shapes(32, SEQ, HW),
                     max_shapes=shapes(32, SEQ, HW))["stdout"])
    return plan


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", MODELS)
def test_model(name, exporter, precision, tmp_path):
    path = model_path(name, exporter)
    model = onnx.load(path, load_external_data=False)
    plan = build_plan(path, model, precision == "fp16", str(tmp_path))
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    # With its weights: the ideal FP16 emulation, built once for the runs.
    ideal_sess = (ideal_fp16_session(onnx.load(path), threads=os.cpu_count() or 1)
                  if precision == "fp16" else None)
    rng = np.random.default_rng(0)
    for batch, seq, hw in RUNS:
        feeds = feeds_for(model, batch, rng, seq, hw)
        outs = run_model(plan, feeds, str(tmp_path), [o.name for o in sess.get_outputs()], backend="cuda")
        ideal = ideal_sess.run(None, feeds) if ideal_sess is not None else None
        for k, (meta, ref) in enumerate(zip(sess.get_outputs(), sess.run(None, feeds))):
            got = outs[meta.name]
            what = f"{name} {exporter} {precision} b{batch} seq{seq} hw{hw} {meta.name}"
            assert np.isfinite(got).all(), f"{what}: NaN/Inf in kiln output"
            if precision == "fp32":
                stats = assert_close(got, ref, what, rtol=1e-3, atol=1e-3)
                print(f"{what}: rel L2 {stats['rel_l2']:.2e}, max abs {stats['max_abs']:.2e}")
                continue
            stats = assert_fp16_within_ideal(got, ref, ideal[k], what)
            storage = stats["ideal_fp16_rel_l2"]
            print(f"{what}: rel L2 {stats['rel_l2']:.2e} ({stats['rel_l2'] / max(storage, 1e-30):.2f}x ideal FP16 "
                  f"storage {storage:.2e}), max abs {stats['max_abs']:.2e}")


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", [m for m in CLASSIFIERS if m in MODELS])
def test_classifier_top1_fp16(name, exporter, tmp_path):
    path = model_path(name, exporter)
    model = onnx.load(path, load_external_data=False)
    plan = build_plan(path, model, True, str(tmp_path))
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    out_name = sess.get_outputs()[0].name
    ideal_sess = ideal_fp16_session(onnx.load(path), threads=os.cpu_count() or 1)  # with its weights
    rng = np.random.default_rng(0)
    ref_top, got_top, ideal_top, margins, errs = [], [], [], [], []
    for _ in range(TOP1_RUNS):
        feeds = feeds_for(model, TOP1_BATCH, rng)
        ref = sess.run(None, feeds)[0]
        got = run_model(plan, feeds, str(tmp_path), [out_name], backend="cuda")[out_name]
        assert got.shape == ref.shape, f"{name} {out_name}: {got.shape} vs {ref.shape}"
        assert np.isfinite(got).all(), f"{name} {out_name}: NaN/Inf in kiln output"
        ref_top.append(ref.argmax(axis=1))
        got_top.append(got.argmax(axis=1))
        ideal_top.append(ideal_sess.run(None, feeds)[0].argmax(axis=1))
        top2 = np.sort(ref, axis=1)[:, -2:]
        margins.append(top2[:, 1] - top2[:, 0])
        errs.append(np.sqrt(np.mean((got.astype(np.float64) - ref) ** 2, axis=1)))
    ref_top, got_top, ideal_top = np.concatenate(ref_top), np.concatenate(got_top), np.concatenate(ideal_top)
    n = ref_top.size
    agree = int((ref_top == got_top).sum())
    ideal_agree = int((ref_top == ideal_top).sum())
    common = int(np.bincount(ref_top).max())
    print(f"{name} {exporter} fp16 top-1: {agree}/{n} identical to onnxruntime; "
          f"{len(np.unique(ref_top))} distinct reference classes, the most common on {common}/{n}; "
          f"median top-1 margin {np.median(np.concatenate(margins)):.3g}, "
          f"kiln's logit error (RMS per input) {np.median(np.concatenate(errs)):.3g}; "
          f"ideal FP16 storage: {ideal_agree}/{n} identical")
    allowed = max(0.01 * n, 1.5 * (n - ideal_agree) + 3)
    assert n - agree <= allowed, (f"{name}: FP16 top-1 differs from onnxruntime on {n - agree}/{n} inputs, more "
                                  f"than {allowed:.0f} (ideal FP16 storage: {n - ideal_agree})")
    assert common <= 0.9 * n, (f"{name}: onnxruntime's top-1 is one class on {common}/{n} random inputs: "
                               "a degenerate test")
