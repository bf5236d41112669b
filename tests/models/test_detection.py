"""Detection model tests: kiln's CPU reference vs onnxruntime on torchvision detectors.

The detectors (zoo_detectors.py: Mask R-CNN and SSDlite, random weights,
TorchScript exporter, opset 17, 320x320; export_zoo.py writes them) are in
$KILN_ZOO_DIR (ctest's fixture_zoo). Each runs on one structured synthetic
image through `kiln run --backend cpu` and onnxruntime, and the detections are
compared as detections (tests/compare_detections.py), not index by index: a
detector turns float rounding into discrete differences (near-tie order in
TopK/NMS, a mask pasted one pixel wider when a box edge sits at an integer),
so boxes are matched per label at IoU >= 0.99, then matched scores (rtol 1e-3)
and masks (soft IoU >= 0.99) are compared, and nearly all confident detections
must match. The comparison first proves it could fail (>= MIN_DETECTIONS
confident detections; it rejects an empty result, shifted boxes, rotated
labels, scores +5% and shifted masks).
"""
import os
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
from compare_detections import assert_detections_match, confident_floor  # noqa: E402
from zoo_detectors import DETECTION_SIZE, DETECTORS, detection_settings  # noqa: E402
from test_zoo import ZOO, kiln  # noqa: E402

MIN_DETECTIONS = 30
BOX_IOU = 0.99


def structured_image(size, seed=0):
    """[1, 3, size, size] float32 in [0, 1]: smooth colour gradients, flat rectangles and discs, light noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.stack([0.5 + 0.3 * np.sin(6 * x + 2 * y), 0.4 + 0.4 * y, 0.6 - 0.3 * x])
    for _ in range(12):
        colour = rng.uniform(0, 1, 3)
        x0, y0 = rng.uniform(0, 0.8, 2)
        w, h = rng.uniform(0.08, 0.35, 2)
        if rng.random() < 0.5:
            inside = (x >= x0) & (x < x0 + w) & (y >= y0) & (y < y0 + h)
        else:
            inside = (x - x0 - w / 2) ** 2 + (y - y0 - h / 2) ** 2 < (min(w, h) / 2) ** 2
        img[:, inside] = colour[:, None]
    img += rng.normal(0, 0.02, img.shape)
    return np.clip(img, 0, 1)[None].astype(np.float32)


@pytest.fixture(scope="module", autouse=True)
def detectors():
    missing = [m for m in DETECTORS if not os.path.exists(os.path.join(ZOO, m + ".onnx"))]
    if missing:  # ctest's fixture_zoo exports them first; this covers a direct pytest run
        subprocess.run([sys.executable, os.path.join(HERE, "export_zoo.py"), ZOO, "--calibrate-bn", "--only",
                        *missing], check=True)


@pytest.mark.parametrize("name", list(DETECTORS))
def test_detections_match_onnxruntime(name, tmp_path):
    path = os.path.join(ZOO, name + ".onnx")
    image = structured_image(DETECTION_SIZE)
    np.save(tmp_path / "image.npy", image)
    start = time.time()
    kiln("run", path, "--backend", "cpu", "--input", f"image={tmp_path / 'image.npy'}", "--output-dir",
         str(tmp_path / "out"))
    kiln_s = time.time() - start
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # the mask Loop's declared shape warns once per detection
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    ref = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"image": image})))
    got = {k: np.load(tmp_path / "out" / (k + ".npy")) for k in ref}
    for k in ref:
        assert got[k].dtype == ref[k].dtype, f"{name} {k}: dtype {got[k].dtype} vs onnxruntime {ref[k].dtype}"
    assert ref["labels"].dtype == np.int64 and ref["boxes"].shape[1:] == (4,)
    if "masks" in ref:
        assert ref["masks"].shape[1:] == (1, DETECTION_SIZE, DETECTION_SIZE)
    thresh, cap = detection_settings(name)
    min_score = confident_floor(ref["scores"], thresh, cap)
    stats = assert_detections_match(got, ref, name, min_detections=MIN_DETECTIONS, box_iou=BOX_IOU,
                                    min_score=min_score)
    print(f"{name}: kiln {kiln_s:.1f} s; {len(ref['boxes'])} detections, {stats['confident']} with score >= "
          f"{min_score:.5f}, {stats['matched']} matched (min box IoU {stats['min_box_iou']:.5f}), "
          f"{stats['missing']} missing, {stats['extra']} extra, max score error {stats['max_score_err']:.2e}, "
          f"min mask soft IoU {stats['min_mask_iou']:.4f} ({stats['bad_masks']} below 0.99)")
