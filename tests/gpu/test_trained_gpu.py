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
KILN_BACKEND=cpu runs the same commands on the CPU reference (no --fp16); the INT8 detection test then
runs the quantized graph on the CPU reference (`kiln compare --int8 --fp16 --save-outputs`).

YOLOv8 models (yolov8 in the file name) also get a detection test (issue #14's criterion) on six
320x320 images with many objects: astronaut, camera and four 4x4 grids of scikit-image's LFW faces.
Boxes are decoded as ultralytics does (confidence >= 0.25, per-class greedy NMS at IoU 0.45) from
onnxruntime FP32 and from kiln:
  FP16: every reference box has a kiln box of the same class at IoU >= 0.9;
  INT8 (`--fp16 --int8`, calibrated on eight other images: other face grids, coffee, chelsea, never
        the test images): >= 95% of the reference boxes have a kiln box of the same class at IoU >= 0.7.
A reference box whose confidence is within 0.05 of the threshold may lose its partner to rounding (it
counts as matched when kiln has none above the threshold); the test needs >= 20 reference boxes, and
the match must reject the reference boxes shifted by half their width.
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
from kiln_cli import BACKEND, run_model, run_quantized  # noqa: E402

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


# ------------------------------------------------------------------ YOLOv8 detections

YOLO = [m for m in MODELS if "yolov8" in os.path.basename(m)]
CONF, NMS_IOU, MARGIN = 0.25, 0.45, 0.05


def _rgb320(img):
    from skimage import transform
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = transform.resize(img[..., :3], (320, 320), anti_aliasing=True)
    return np.transpose(img, (2, 0, 1)).astype(np.float32)


def _face_grid(first):
    """A 320x320 grayscale grid of 16 LFW faces (skimage.data.lfw_subset, bundled), from face `first`."""
    from skimage import data, transform
    faces, g = data.lfw_subset(), np.zeros((320, 320))
    for i in range(16):
        r, c = divmod(i, 4)
        g[r * 80:(r + 1) * 80, c * 80:(c + 1) * 80] = transform.resize(faces[first + i], (80, 80))
    return g


def detection_images():
    from skimage import data
    return np.stack([_rgb320(data.astronaut()), _rgb320(data.camera())] + [_rgb320(_face_grid(k)) for k in (0, 16, 32, 48)])


def calibration_images():
    from skimage import data
    imgs = [_rgb320(_face_grid(k)) for k in (100, 116, 132, 148, 164, 180)] + [_rgb320(data.coffee()), _rgb320(data.chelsea())]
    return [x[None] for x in imgs]


def _iou(a, b):
    """IoU of boxes a [N, 4] and b [M, 4] (x0, y0, x1, y1) -> [N, M]."""
    x0, y0 = np.maximum(a[:, None, 0], b[None, :, 0]), np.maximum(a[:, None, 1], b[None, :, 1])
    x1, y1 = np.minimum(a[:, None, 2], b[None, :, 2]), np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda t: (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


def decode(out, conf=CONF):
    """YOLOv8 head [4 + classes, anchors] -> (boxes [K, 4] xyxy, scores [K], classes [K]) after NMS."""
    scores, classes = out[4:].max(axis=0), out[4:].argmax(axis=0)
    keep = scores >= conf
    cx, cy, w, h = out[:4, keep]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    scores, classes = scores[keep], classes[keep]
    chosen = []
    for c in np.unique(classes):
        idx = np.flatnonzero(classes == c)
        idx = idx[np.argsort(-scores[idx])]
        while len(idx):
            chosen.append(idx[0])
            idx = idx[1:][_iou(boxes[idx[:1]], boxes[idx[1:]])[0] < NMS_IOU]
    chosen = np.array(chosen, dtype=np.int64)
    return boxes[chosen], scores[chosen], classes[chosen]


def matched_fraction(ref, got, iou_min):
    """(matched, total): reference boxes with a kiln box of the same class at IoU >= iou_min; a reference
    box within MARGIN of the threshold counts as matched when kiln has none above the threshold there."""
    (rb, rs, rc), (gb, _, gc) = ref, got
    matched = 0
    for i in range(len(rb)):
        same = gc == rc[i]
        if same.any() and _iou(rb[i:i + 1], gb[same])[0].max() >= iou_min:
            matched += 1
        elif rs[i] < CONF + MARGIN and (not same.any() or _iou(rb[i:i + 1], gb[same])[0].max() < 0.1):
            matched += 1
    return matched, len(rb)


@pytest.mark.skipif(not YOLO, reason="KILN_TRAINED_DIR has no yolov8*.onnx")
@pytest.mark.parametrize("precision", [
    pytest.param("fp16", marks=pytest.mark.skipif(BACKEND == "cpu", reason="FP16 detections are a CUDA-engine test")),
    "int8"])  # on the CPU backend: the INT8 graph on the CPU reference (kiln_cli.run_quantized)
@pytest.mark.parametrize("path", YOLO, ids=[os.path.basename(m) for m in YOLO])
def test_yolo_detections(path, precision, tmp_path):
    x = detection_images()
    name = onnx.load(path, load_external_data=False).graph.input[0].name
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    out_name = sess.get_outputs()[0].name
    ref = sess.run(None, {name: x})[0]
    if precision == "fp16":
        got, iou_min, need = run_model(path, {name: x}, str(tmp_path), [out_name], fp16=True)[out_name], 0.9, 1.0
    else:
        calib = [{name: c} for c in calibration_images()]
        outs, info = run_quantized(path, {name: x}, str(tmp_path), [out_name], calib, "--int8")
        got, iou_min, need = outs[out_name], 0.7, 0.95
        print("\n".join(ln for ln in info["stdout"].splitlines() if "INT8" in ln or "int8" in ln)[:3000])
    what = f"{os.path.basename(path)} {precision} detections"
    assert np.isfinite(got).all(), f"{what}: NaN/Inf in kiln output"
    total_m = total_n = shifted_m = 0
    for b in range(x.shape[0]):
        r, g = decode(ref[b]), decode(got[b])
        m, n = matched_fraction(r, g, iou_min)
        total_m, total_n = total_m + m, total_n + n
        shifted = (r[0] + np.stack([(r[0][:, 2] - r[0][:, 0]) / 2, r[0][:, 0] * 0] * 2, axis=1), r[1], r[2])
        shifted_m += matched_fraction(r, shifted, iou_min)[0]
        print(f"  image {b}: onnxruntime {n} boxes, kiln {len(g[0])}; matched {m}")
    assert total_n >= 20, f"{what}: onnxruntime finds {total_n} boxes (< 20): a degenerate test"
    assert shifted_m < need * total_n, f"{what}: vacuous match (accepts boxes shifted by half their width)"
    frac = total_m / total_n
    print(f"{what}: {total_m}/{total_n} reference boxes matched at IoU >= {iou_min} ({frac:.1%}); need {need:.0%}")
    assert frac >= need, f"{what}: {total_m}/{total_n} boxes matched at IoU >= {iou_min} ({frac:.1%} < {need:.0%})"
