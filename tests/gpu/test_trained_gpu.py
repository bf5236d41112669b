"""Trained ONNX models shipped inside PyPI wheels (run on the GPU machine by
tools/device-run.sh trained): each .onnx in KILN_TRAINED_DIR runs on real
images (scikit-image's samples, resized to the model's input, RGB in [0, 1],
a batch of two different images) through `kiln run --backend cuda` and
through onnxruntime on the CPU:
  FP32: every output within rtol 1e-3 / atol 1e-3 x the reference's RMS;
  FP16: relative L2 error <= 1e-2 per output, no NaN/Inf.
The comparisons go through tests/compare_outputs.py (the reference must not
be degenerate and the tolerance must be able to fail). Get the models with
`pip download --no-deps nudenet` (YOLOv8n, 320n.onnx) and unzip (tools/stage-gpu.sh does);
PP-OCR from rapidocr-onnxruntime, in KILN_TRAINED_DIR/ppocr, has its own test (test_ocr_gpu.py).
KILN_BACKEND=cpu runs the same commands on the CPU reference (no --fp16).
"""
import glob
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
from compare_outputs import assert_close  # noqa: E402
from kiln_cli import BACKEND, run_model  # noqa: E402

TRAINED = os.environ.get("KILN_TRAINED_DIR", "")
MODELS = sorted(glob.glob(os.path.join(TRAINED, "*.onnx"))) if TRAINED else []


def images(h, w):
    from skimage import data, transform
    out = []
    for img in (data.astronaut(), data.chelsea()):
        img = transform.resize(img, (h, w), anti_aliasing=True)  # float in [0, 1]
        out.append(np.transpose(img, (2, 0, 1)).astype(np.float32))
    return np.stack(out)


def feeds_for(model):
    inp = model.graph.input[0]
    dims = [d.dim_value if d.HasField("dim_value") else 0 for d in inp.type.tensor_type.shape.dim]
    h, w = dims[2] or 320, dims[3] or 320
    return {inp.name: images(h, w)}


@pytest.mark.skipif(not MODELS, reason="KILN_TRAINED_DIR has no .onnx models")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("path", MODELS, ids=[os.path.basename(m) for m in MODELS])
def test_trained_model(path, precision, tmp_path):
    model = onnx.load(path, load_external_data=False)
    feeds = feeds_for(model)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    refs = sess.run(None, feeds)
    outs = run_model(path, feeds, str(tmp_path), [o.name for o in sess.get_outputs()],
                     fp16=precision == "fp16" and BACKEND != "cpu")
    for meta, ref in zip(sess.get_outputs(), refs):
        got = outs[meta.name]
        what = f"{os.path.basename(path)} {precision} {meta.name}"
        assert np.isfinite(got).all(), f"{what}: NaN/Inf in kiln output"
        if precision == "fp32":
            stats = assert_close(got, ref, what, rtol=1e-3, atol=1e-3)
        else:
            stats = assert_close(got, ref, what, max_rel_l2=1e-2, elementwise=False)
        print(f"{what}: rel L2 {stats['rel_l2']:.2e}, max abs {stats['max_abs']:.2e}")
