"""Issue #10's model list on the GPU: kiln build + kiln run --backend cuda vs onnxruntime (CPU).

    KILN_WIDE_DIR=DIR [KILN_WIDE_REPORT=DIR] [KILN_WIDE_MODELS=a,b] pytest -q -rs -s tests/gpu/test_wide_gpu.py

DIR is what tests/gpu/export_wide.py wrote (manifest.json, <model>/<exporter>.onnx and its input .npy
files); the test skips only when DIR is not set or absent. KILN_WIDE_MODELS / KILN_WIDE_EXPORTERS
(torchscript|dynamo|both) select a subset; results accumulate in DIR/wide_results.json, so the report
covers every run on DIR so far. For each exported (model, exporter), FP32 and
FP16: `kiln build MODEL --saveEngine PLAN [--fp16]`, `kiln run PLAN --backend cuda` on the saved inputs,
onnxruntime's CPU provider on the same inputs as the oracle, and `kiln bench PLAN` (median GPU compute
ms at batch 1). Criteria (issue #10):
  FP32: every output within rtol 1e-3 / atol 1e-4 (tests/compare_outputs.py: |d| <= rtol |ref| +
        atol rms(ref)); detectors: detections matched by box IoU >= 0.99 per label, scores within 1e-3
        relative, masks soft IoU >= 0.99 (tests/compare_detections.py);
  FP16: rel L2 <= 1.25x that of ideal FP16 storage per output (tests/fp16_ideal.py:
        the model with float16 weights and stored activations, FP32 compute, on onnxruntime; issue #14's
        criterion 2: a random-weight net that amplifies storage noise, as fcn_resnet50, is held to what
        FP16 storage gives it, not to a bound no FP16 engine meets; rel L2 <= 1e-2 alone where the
        emulation does not run); detectors: the same detections at box IoU >= 0.9 (scores within 2%,
        masks soft IoU >= 0.9).
  Keypoint R-CNN's keypoints: for matched detections, >= 97% of keypoints within one heatmap cell
  (box size / 56) + 1 px of onnxruntime's.
Every comparison first proves it can fail (degenerate references and vacuous tolerances fail the test).
Writes KILN_WIDE_REPORT (default $OUT, else DIR)/wide_report.json and wide_report.md: model, exporter,
nodes, build s, FP32 error, FP16 error, GPU ms; a build or run failure is reported with kiln's message
(first lines), and failed exports (manifest status 'failed') are listed with the exporter's error.

With KILN_BACKEND=cpu (no GPU) the same test runs the ONNX files through `kiln run --backend cpu`
(no build, no bench; 'fp16' then applies the FP16 criteria to the FP32 reference executor): that
checks the test's logic on real outputs.
"""
import json
import os
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
from compare_detections import assert_detections_match, confident_floor, match  # noqa: E402
from compare_outputs import assert_close  # noqa: E402
from fp16_ideal import assert_fp16_within_ideal, ideal_fp16_outputs  # noqa: E402
from kiln_cli import BACKEND, KilnError, bench_ms, build_plan, first_lines, inspect_nodes, run_model  # noqa: E402

WIDE = os.environ.get("KILN_WIDE_DIR", "")
REPORT = os.environ.get("KILN_WIDE_REPORT") or os.environ.get("OUT") or WIDE
ONLY = [m for m in os.environ.get("KILN_WIDE_MODELS", "").split(",") if m]
EXPORTERS = [e for e in os.environ.get("KILN_WIDE_EXPORTERS", "both").replace("both", "torchscript,dynamo").split(",")
             if e]
MANIFEST = os.path.join(WIDE, "manifest.json") if WIDE else ""
ENTRIES = []
if MANIFEST and os.path.exists(MANIFEST):
    with open(MANIFEST) as f:
        ENTRIES = [e for e in json.load(f)["entries"] if (not ONLY or e["model"] in ONLY) and e["exporter"] in EXPORTERS]
CASES = [e for e in ENTRIES if e["status"] == "ok"]

FP32 = dict(rtol=1e-3, atol=1e-4)
DET = {"fp32": dict(box_iou=0.99, score_rtol=1e-3, score_atol=1e-5, mask_iou=0.99),
       "fp16": dict(box_iou=0.9, score_rtol=2e-2, score_atol=1e-4, mask_iou=0.9)}
MIN_DETECTIONS = 20
HEATMAP = 56  # torchvision's keypoint head upsamples to 56x56 per box
RESULTS = {}  # (model, exporter) -> {"nodes", "fp32": {...}, "fp16": {...}}


def _oracle_cache():
    cache = {}

    def get(entry):
        key = entry["file"]
        if key not in cache:
            opts = ort.SessionOptions()
            opts.log_severity_level = 3  # Mask R-CNN's Loop warns once per detection
            sess = ort.InferenceSession(os.path.join(WIDE, entry["file"]), opts, providers=["CPUExecutionProvider"])
            feeds = feeds_of(entry)
            start = time.time()
            outs = sess.run(None, feeds)
            cache[key] = (dict(zip([o.name for o in sess.get_outputs()], outs)), time.time() - start)
        return cache[key]
    return get


reference = _oracle_cache()
_IDEAL = {}


def ideal_fp16(entry):
    """{output name: the model's output with ideal FP16 storage} (onnxruntime; cached per file)."""
    key = entry["file"]
    if key not in _IDEAL:
        path = os.path.join(WIDE, key)
        names = [o.name for o in onnx.load(path, load_external_data=False).graph.output]
        try:
            _IDEAL[key] = dict(zip(names, ideal_fp16_outputs(path, feeds_of(entry), threads=os.cpu_count() or 1)))
        except Exception as e:  # the emulation is the oracle's helper, not kiln: report it, keep the 1e-2 bound
            print(f"{key}: no ideal FP16 emulation ({first_lines(str(e))})")
            _IDEAL[key] = {}
    return _IDEAL[key]


def feeds_of(entry):
    return {i["name"]: np.load(os.path.join(WIDE, i["file"])) for i in entry["inputs"]}


def keypoints_match(got, ref, pairs, name):
    """Matched detections' keypoints agree: >= 97% within one heatmap cell + 1 px. Returns the stats."""
    rk, gk = np.asarray(ref["keypoints"], np.float64), np.asarray(got["keypoints"], np.float64)
    boxes = np.asarray(ref["boxes"], np.float64)

    def misses(k):
        errs, bad, n = [], 0, 0
        for i, j, _ in pairs:
            cell = max(boxes[i, 2] - boxes[i, 0], boxes[i, 3] - boxes[i, 1]) / HEATMAP + 1.0
            d = np.linalg.norm(k[j, :, :2] - rk[i, :, :2], axis=1)
            errs.append(d)
            bad += int((d > cell).sum())
            n += len(d)
        return bad, n, np.concatenate(errs) if errs else np.zeros(0)

    wh = (boxes[:, 2:] - boxes[:, :2])[:, None, :]
    shifted = rk.copy()
    shifted[:, :, :2] += 0.1 * wh  # a wrong answer the check must reject
    sbad, sn, _ = misses(shifted)
    assert sn and sbad > 0.03 * sn, f"{name}: vacuous keypoint comparison (keypoints shifted by 10% pass)"
    bad, n, errs = misses(gk)
    assert bad <= 0.03 * n, (f"{name}: {bad} of {n} keypoints of matched detections are more than one heatmap "
                             f"cell + 1 px from onnxruntime's (max {errs.max():.2f} px)")
    return {"keypoints": n, "keypoints_off": bad, "max_keypoint_px": float(errs.max(initial=0.0))}


def compare(entry, precision, got, ref):
    """Asserts the criterion; returns (summary string for the table, stats dict)."""
    what = f"{entry['model']} {entry['exporter']} {precision}"
    for k in ref:
        assert np.isfinite(np.asarray(got[k], np.float64)).all() or not np.isfinite(ref[k]).all(), \
            f"{what} {k}: NaN/Inf in kiln's output"
    if entry.get("outputs_are") == "detections":
        tol = DET[precision]
        floor = confident_floor(ref["scores"], entry["score_thresh"], entry["cap"], tol["score_rtol"],
                                tol["score_atol"])
        b = np.asarray(ref["boxes"], np.float64)
        flat = int(((b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])).sum())
        assert flat <= 0.03 * max(1, len(b)), (f"{what}: {flat} of {len(b)} reference boxes have zero width or "
                                                "height (IoU 0 even with themselves): a degenerate test")
        dets = {k: ref[k] for k in ("boxes", "scores", "labels", "masks") if k in ref}
        gdets = {k: got[k] for k in dets}
        st = assert_detections_match(gdets, dets, what, min_detections=MIN_DETECTIONS,
                                     one_class=entry.get("one_class", False), min_score=floor, **tol)
        summary = (f"{st['matched']}/{len(ref['scores'])} matched (conf {st['confident']}, miss {st['missing']}, "
                   f"extra {st['extra']}), box IoU >= {st['min_box_iou']:.4f}, score err {st['max_score_err']:.1e}")
        if "masks" in ref:
            summary += f", mask IoU >= {st['min_mask_iou']:.3f}"
        if "keypoints" in ref:
            kst = keypoints_match(got, ref, match(dets, gdets, tol["box_iou"]), what)
            st.update(kst)
            summary += f", keypoints off {kst['keypoints_off']}/{kst['keypoints']}"
        return summary, st
    stats, worst = {}, None
    ideal = ideal_fp16(entry) if precision == "fp16" else {}
    for k, r in ref.items():
        if precision == "fp32":
            s = assert_close(got[k], r, f"{what} {k}", **FP32)
        elif k not in ideal:
            s = assert_close(got[k], r, f"{what} {k}", max_rel_l2=1e-2, elementwise=False)
        else:
            s = assert_fp16_within_ideal(got[k], r, ideal[k], f"{what} {k}")
        stats[k] = s
        if worst is None or s["rel_l2"] > worst[1]["rel_l2"]:
            worst = (k, s)
    k, s = worst
    ideal_note = (f" ({s['rel_l2'] / max(s['ideal_fp16_rel_l2'], 1e-30):.2f}x ideal FP16)"
                  if "ideal_fp16_rel_l2" in s else "")
    return (f"rel L2 {s['rel_l2']:.1e}{ideal_note}, max abs {s['max_abs']:.1e}" + (f" ({k})" if len(ref) > 1 else ""),
            stats)


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    if REPORT and ENTRIES:
        write_report(REPORT)


def merged_results():
    """This run's results over earlier runs' on the same export folder (DIR/wide_results.json), so that
    runs split by model or exporter (one device call each) add up to one table."""
    path = os.path.join(WIDE, "wide_results.json")
    old = {}
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
    old.update({f"{m}|{e}": r for (m, e), r in RESULTS.items()})
    with open(path, "w") as f:
        json.dump(old, f, indent=1, default=str)
    return old


def write_report(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    results = merged_results()
    with open(MANIFEST) as f:
        entries = json.load(f)["entries"]
    rows = []
    for e in entries:
        r = results.get(f"{e['model']}|{e['exporter']}", {})
        rows.append({"model": e["model"], "exporter": e["exporter"], "export": e["status"],
                     "export_error": e.get("error"), "export_s": e.get("export_s"),
                     "onnx_nodes": e.get("nodes"), "backend": BACKEND, **r})
    with open(os.path.join(out_dir, "wide_report.json"), "w") as f:
        json.dump(rows, f, indent=1, default=str)

    def cell(r, p, key):
        v = r.get(p, {}).get(key)
        return "" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v).replace("|", "/"))

    lines = [f"Backend: {BACKEND}. FP32: rtol 1e-3 / atol 1e-4 x RMS (detectors: IoU >= 0.99 matching); "
             "FP16: rel L2 <= 1.25x ideal FP16 storage (detectors: IoU >= 0.9). GPU ms: kiln bench median GPU compute, batch 1.", "",
             "| model | exporter | nodes (ONNX / kiln) | build s FP32 / FP16 | FP32 error | FP16 error | GPU ms FP32 / FP16 |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["export"] != "ok":
            err = str(r["export_error"]).replace("|", "/")
            lines.append(f"| {r['model']} | {r['exporter']} | | | export failed: {err} | | |")
            continue
        if "fp32" not in r and "fp16" not in r:
            lines.append(f"| {r['model']} | {r['exporter']} | {r.get('onnx_nodes') or ''} | | not run | | |")
            continue
        nodes = " / ".join(str(n) for n in (r.get("onnx_nodes"), r.get("nodes")) if n)
        lines.append(f"| {r['model']} | {r['exporter']} | {nodes} | {cell(r, 'fp32', 'build_s')} / "
                     f"{cell(r, 'fp16', 'build_s')} | {cell(r, 'fp32', 'error')} | {cell(r, 'fp16', 'error')} | "
                     f"{cell(r, 'fp32', 'gpu_ms')} / {cell(r, 'fp16', 'gpu_ms')} |")
    with open(os.path.join(out_dir, "wide_report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"\nwrote {os.path.join(out_dir, 'wide_report.md')}:\n" + "\n".join(lines))


def test_manifest():
    """The export folder exists and lists the model list; failed exports are reported, TorchScript ones fail."""
    if not WIDE or not os.path.isdir(WIDE):
        pytest.skip("KILN_WIDE_DIR is not set or absent (tests/gpu/export_wide.py writes it)")
    assert ENTRIES, f"{MANIFEST}: no entries (run tests/gpu/export_wide.py {WIDE})"
    bad = [f"{e['model']}: {e['error']}" for e in ENTRIES if e["exporter"] == "torchscript" and e["status"] != "ok"]
    assert not bad, "TorchScript exports failed: " + "; ".join(bad)


@pytest.mark.skipif(not WIDE or not os.path.isdir(WIDE), reason="KILN_WIDE_DIR is not set or absent")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("entry", CASES, ids=[f"{e['model']}-{e['exporter']}" for e in CASES])
def test_wide_model(entry, precision, tmp_path):
    tmp = str(tmp_path)
    model = os.path.join(WIDE, entry["file"])
    rec = RESULTS.setdefault((entry["model"], entry["exporter"]), {})
    res = rec.setdefault(precision, {})
    feeds = feeds_of(entry)
    ref, ort_s = reference(entry)
    rec["ort_s"] = round(ort_s, 3)
    try:
        if BACKEND == "cpu":
            rec.setdefault("nodes", inspect_nodes(model))
            start = time.time()
            got = run_model(model, feeds, tmp, list(ref), backend="cpu")
            res["run_s"] = round(time.time() - start, 2)
        else:
            plan = os.path.join(tmp, "model.plan")
            try:
                b = build_plan(model, plan, fp16=precision == "fp16")
            except KilnError as e:
                res["error"] = "BUILD FAILED: " + first_lines(e.message)
                raise
            res["build_s"] = b["build_s"]
            rec["nodes"] = b["nodes"]
            start = time.time()
            try:
                got = run_model(plan, feeds, tmp, list(ref))
            except KilnError as e:
                res["error"] = "RUN FAILED: " + first_lines(e.message)
                raise
            res["run_s"] = round(time.time() - start, 2)
            try:
                res["gpu_ms"] = bench_ms(plan, tmp)
            except KilnError as e:
                res["bench_error"] = first_lines(e.message)
        try:
            res["error"], res["stats"] = compare(entry, precision, got, ref)
        except AssertionError as e:
            res["error"] = "FAIL: " + first_lines(str(e), 2)
            raise
        print(f"{entry['model']} {entry['exporter']} {precision}: {res['error']}; build {res.get('build_s')} s, "
              f"GPU {res.get('gpu_ms')} ms, onnxruntime {ort_s:.2f} s")
    finally:
        res.setdefault("error", "FAIL")
