"""PP-OCR (trained, from the rapidocr-onnxruntime wheel) on scikit-image's text images: kiln vs onnxruntime.

    KILN_TRAINED_DIR=DIR pytest -q -rs -s tests/gpu/test_ocr_gpu.py

DIR/ppocr/ holds the wheel's rapidocr_onnxruntime/models/*.onnx (tools/stage-gpu.sh puts them there):
PP-OCRv4 det (DB text detector), PP-OCRv4 rec (SVTR-LCNet CTC recogniser; its character list is in the
model's metadata_props 'character', the wheel ships no separate dictionary) and the ppocr mobile v2.0
cls (0/180 degree text-line classifier). Inputs are preprocessed as rapidocr does (RGB, (x/255 - 0.5)
/ 0.5; det: short side scaled to 736, sides rounded to multiples of 32; rec: height 48, width by aspect, zero-padded; cls:
48x192). Each model runs through `kiln run MODEL.onnx --backend cuda [--fp16]` and onnxruntime (CPU):
  det on skimage.data.text() and data.page(): FP32 probability map within rtol 1e-3 / atol 1e-4;
      FP16 rel L2 <= 1e-2 (1.25x ideal FP16 storage where that exceeds it: text()) and the same binarized
      text regions (threshold 0.3, rapidocr's: every region of >= 100 px on either side has a partner at
      IoU >= 0.9);
  rec on the text lines onnxruntime's det finds (axis-aligned boxes, unclipped as rapidocr does, cut
      from the original images): FP32 probabilities close and the CTC greedy decoding identical to
      onnxruntime's on every line; FP16 within 1.25x the error of ideal FP16 storage (tests/fp16_ideal.py)
      and identical on every line whose text ideal FP16 storage keeps; INT8 see test_rec;
  cls on the same lines and the lines turned 180 degrees: FP32 probabilities close; the same argmax.
Every comparison first proves it can fail: the reference must hold text regions / decoded text / both
classes, and the region check must reject the reference map shifted by 3 px and an empty map.
KILN_BACKEND=cpu runs the same commands with --backend cpu (no --fp16) to check the test without a GPU;
INT8 then runs the quantized graph on the CPU reference (`kiln compare --int8 --fp16 --save-outputs`).
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
from fp16_ideal import FP16_VS_IDEAL, assert_fp16_within_ideal, ideal_fp16_outputs, rel_l2  # noqa: E402
from kiln_cli import BACKEND, kiln, run_model, run_quantized  # noqa: E402

TRAINED = os.environ.get("KILN_TRAINED_DIR", "")
OCR = os.path.join(TRAINED, "ppocr") if TRAINED else ""


def _find(pattern):
    hits = sorted(glob.glob(os.path.join(OCR, pattern))) if OCR else []
    return hits[0] if hits else None


DET, REC, CLS = _find("*det*.onnx"), _find("*rec*.onnx"), _find("*cls*.onnx")
pytestmark = pytest.mark.skipif(not (DET and REC and CLS), reason="KILN_TRAINED_DIR/ppocr has no PP-OCR models "
                                                                  "(tools/stage-gpu.sh fetches them)")
THRESH = 0.3  # rapidocr's Det.thresh
UNCLIP = 1.6  # rapidocr's Det.unclip_ratio
MIN_REGION = 100  # px, regions compared by IoU
FP32 = dict(rtol=1e-3, atol=1e-4)


def gray_images():
    from skimage import data
    return {"text": data.text(), "page": data.page()}


def normalize(rgb_u8):
    """HxWx3 uint8 -> 3xHxW float32, (x/255 - 0.5)/0.5."""
    return np.transpose((rgb_u8.astype(np.float32) / 255.0 - 0.5) / 0.5, (2, 0, 1))


def resize_u8(img, h, w):
    from skimage import transform
    out = transform.resize(img, (h, w), order=1, anti_aliasing=False, preserve_range=True)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def rgb(gray):
    return np.repeat(gray[..., None], 3, axis=2) if gray.ndim == 2 else gray[..., :3]


def det_input(gray, limit_side_len=736):
    """rapidocr's det resize (limit_type min): the short side scaled up to 736, sides rounded to 32.
    (skimage's text() is 172x448: at 1x the det model finds nothing in it, at 736x1920 its text lines.)"""
    h, w = gray.shape[:2]
    ratio = limit_side_len / min(h, w) if min(h, w) < limit_side_len else 1.0
    H, W = max(32, int(round(h * ratio / 32)) * 32), max(32, int(round(w * ratio / 32)) * 32)
    return normalize(resize_u8(rgb(gray), H, W))[None]


def kiln_run(path, feeds, tmp, precision, calib=None, flags=()):
    """kiln's outputs; precision int8 builds `--fp16 --int8 FLAGS` calibrated on `calib` ([{name: array}])."""
    names = [o.name for o in onnx.load(path, load_external_data=False).graph.output]
    if precision == "int8":
        got, info = run_quantized(path, feeds, str(tmp), names, calib, "--int8", extra=flags)
        print("\n".join(ln for ln in info["stdout"].splitlines() if "INT8" in ln)[:2000])
    else:
        got = run_model(path, feeds, str(tmp), names, backend=BACKEND, fp16=precision == "fp16" and BACKEND != "cpu")
    return [got[n] for n in names]


_ORT = {}


def ort_run(path, feeds):
    if path not in _ORT:
        _ORT[path] = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return _ORT[path].run(None, feeds)


# ------------------------------------------------------------------ regions

def regions(prob, min_area=MIN_REGION):
    """Connected components of prob > THRESH with at least min_area pixels: list of boolean masks."""
    from skimage import measure
    lab = measure.label(prob > THRESH, connectivity=2)
    return [lab == i for i in range(1, lab.max() + 1) if (lab == i).sum() >= min_area]


def partner_iou(m, theirs):
    """IoU of region mask m with its partner: the other side's binarized map under m, within m's box."""
    return (m & theirs).sum() / (m | (theirs & _box(m))).sum()


def regions_differ(ref, got, iou_min=0.9):
    """None when the binarized maps have the same text regions, else how they differ."""
    r, g = regions(ref), regions(got)
    bin_r, bin_g = ref > THRESH, got > THRESH
    for name, mine, theirs in (("reference", r, bin_g), ("kiln", g, bin_r)):
        for m in mine:
            iou = partner_iou(m, theirs)
            if iou < iou_min:
                ys, xs = np.nonzero(m)
                return (f"a {name} text region ({m.sum()} px at x {xs.min()}-{xs.max()}, y {ys.min()}-{ys.max()}) "
                        f"has IoU {iou:.3f} < {iou_min} with the other side's binarized map")
    return None


def regions_matched(ref, got, iou_min):
    """(matched, total): the reference's text regions whose partner in kiln's binarized map has IoU >= iou_min."""
    r = regions(ref)
    return sum(partner_iou(m, got > THRESH) >= iou_min for m in r), len(r)


def _box(m, pad=2):
    ys, xs = np.nonzero(m)
    b = np.zeros_like(m)
    b[max(0, ys.min() - pad):ys.max() + 1 + pad, max(0, xs.min() - pad):xs.max() + 1 + pad] = True
    return b


def assert_same_regions(got, ref, what, min_regions=3):
    n = len(regions(ref))
    assert n >= min_regions, f"{what}: the reference has {n} text regions (< {min_regions}): a degenerate test"
    shifted = np.roll(ref, 3, axis=0)
    assert regions_differ(ref, shifted), f"{what}: vacuous region check (accepts the map shifted by 3 px)"
    assert regions_differ(ref, np.zeros_like(ref)), f"{what}: vacuous region check (accepts an empty map)"
    why = regions_differ(ref, got)
    assert why is None, f"{what}: {why}"
    return n


# ------------------------------------------------------------------ text lines

def text_lines():
    """Text-line crops (uint8 RGB) from onnxruntime's det map of each image, boxes unclipped as rapidocr."""
    crops = []
    for name, gray in gray_images().items():
        x = det_input(gray)
        prob = ort_run(DET, {"x": x})[0][0, 0]
        sy, sx = gray.shape[0] / prob.shape[0], gray.shape[1] / prob.shape[1]
        for m in regions(prob):
            ys, xs = np.nonzero(m)
            y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
            w, h = x1 - x0, y1 - y0
            d = w * h * UNCLIP / (2 * (w + h))
            y0, y1 = int(max(0, (y0 - d) * sy)), int(min(gray.shape[0], np.ceil((y1 + d) * sy)))
            x0, x1 = int(max(0, (x0 - d) * sx)), int(min(gray.shape[1], np.ceil((x1 + d) * sx)))
            if y1 - y0 >= 8 and x1 - x0 >= 8:
                crops.append((f"{name}@{x0},{y0}", rgb(gray)[y0:y1, x0:x1]))
    return crops


def rec_batch(crops, height=48):
    """rapidocr's rec preprocessing: height 48, width by aspect, batch width 48 x max(320/48, max ratio)."""
    ratio = max([320 / 48] + [c.shape[1] / c.shape[0] for _, c in crops])
    W = int(np.ceil(height * ratio))
    batch = np.zeros((len(crops), 3, height, W), np.float32)
    for i, (_, c) in enumerate(crops):
        w = min(W, int(np.ceil(height * c.shape[1] / c.shape[0])))
        batch[i, :, :, :w] = normalize(resize_u8(c, height, w))
    return batch


def cls_batch(crops, shape=(48, 192)):
    h, W = shape
    batch = np.zeros((len(crops), 3, h, W), np.float32)
    for i, (_, c) in enumerate(crops):
        w = min(W, int(np.ceil(h * c.shape[1] / c.shape[0])))
        batch[i, :, :, :w] = normalize(resize_u8(c, h, w))
    return batch


def charset():
    meta = {p.key: p.value for p in onnx.load(REC, load_external_data=False).metadata_props}
    assert "character" in meta, f"{REC}: no 'character' metadata (the recogniser's dictionary)"
    return ["<blank>"] + meta["character"].splitlines() + [" "]  # rapidocr's CTCLabelDecode order


def ctc_greedy(p):
    """The greedy CTC decoding of one line's probabilities [T, classes]: the argmax per step and which steps
    it keeps (not blank, not a repeat of the step before)."""
    row = p.argmax(axis=-1)
    keep = np.ones(len(row), bool)
    keep[1:] = row[1:] != row[:-1]
    return row, keep & (row != 0)


def ctc_score(probs):
    """rapidocr's line score per row: the mean probability of the characters the greedy decoding keeps
    (0 for an empty line); its pipeline drops lines under text_score 0.5."""
    out = []
    for p in probs:
        row, keep = ctc_greedy(p)
        conf = p.max(axis=-1)[keep]
        out.append(float(conf.mean()) if conf.size else 0.0)
    return out


def ctc_decode(probs, chars):
    out = []
    for p in probs:
        row, keep = ctc_greedy(p)
        out.append("".join(chars[i] for i in row[keep]))
    return out


# ------------------------------------------------------------------ tests

PRECISIONS = ["fp32", "fp16", "int8"]  # int8 on the CPU backend: the INT8 graph on the CPU reference


def other(image):
    return "page" if image == "text" else "text"


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("image", ["text", "page"])
def test_det(image, precision, tmp_path):
    """INT8 (issue #14): calibrated on the other text image and skimage's coffee photo, never the test
    image; >= 95% of the reference's text regions have a partner at IoU >= 0.7."""
    from skimage import data
    x = det_input(gray_images()[image])
    ref = ort_run(DET, {"x": x})[0]
    calib = [{"x": det_input(gray_images()[other(image)])}, {"x": det_input(data.coffee())}]
    got = kiln_run(DET, {"x": x}, tmp_path, precision, calib)[0]
    what = f"PP-OCRv4 det {image} {list(x.shape)} {precision}"
    assert np.isfinite(got).all(), f"{what}: NaN/Inf in kiln output"
    if precision == "int8":
        rel_l2 = float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30))  # reported; regions decide
        m, n = regions_matched(ref[0, 0], got[0, 0], 0.7)
        assert n >= 3, f"{what}: the reference has {n} text regions (< 3): a degenerate test"
        assert regions_matched(ref[0, 0], np.roll(ref[0, 0], 8, axis=0), 0.7)[0] < 0.95 * n, \
            f"{what}: vacuous region match (accepts the map shifted by 8 px)"
        print(f"{what}: {m}/{n} text regions matched at IoU >= 0.7; rel L2 {rel_l2:.2e}")
        assert m >= 0.95 * n, f"{what}: {m}/{n} text regions matched at IoU >= 0.7 (< 95%)"
        return
    if precision == "fp32":
        stats = assert_close(got, ref, what, **FP32)
    else:
        stats = assert_det_fp16(got, ref, x, tmp_path, what)
    n = assert_same_regions(got[0, 0], ref[0, 0], what)
    print(f"{what}: rel L2 {stats['rel_l2']:.2e}, max abs {stats['max_abs']:.2e}; {n} text regions, the same")


def assert_det_fp16(got, ref, x, tmp_path, what):
    """The issue's FP16 bound, rel L2 <= 1e-2, where ideal FP16 storage can meet it; where it cannot (on
    skimage's text() ideal storage itself gives 1.63e-2, kiln 1.67e-2 on the CPU reference as built,
    2026-12-06), rel L2 <= 1.25x ideal storage, as for rec. Ideal storage is measured on the model with its
    BatchNorms folded as kiln folds them (`kiln simplify`): rounding the raw BatchNorm variances (up to 9.8e7)
    to float16 overflows and gives rel L2 1.0."""
    folded = str(tmp_path / "det_folded.onnx")
    kiln("simplify", DET, folded)
    ideal = ideal_fp16_outputs(folded, {"x": x}, threads=os.cpu_count() or 1)[0]
    if FP16_VS_IDEAL * rel_l2(ideal, ref) <= 1e-2:
        return assert_close(got, ref, what, max_rel_l2=1e-2, elementwise=False)
    return assert_fp16_within_ideal(got, ref, ideal, what)


@pytest.fixture(scope="module")
def lines():
    crops = text_lines()
    assert len(crops) >= 3, f"onnxruntime's det found {len(crops)} text lines (< 3): a degenerate test"
    return crops


# INT8 rec: each line runs through a plan calibrated on the other folds' lines (both images in every fold,
# never the line itself), with a whole-model target of 0.03: the rec model's output is a softmax, whose rel L2
# a few flipped near-ties dominate (docs/PRECISION.md, "PP-OCRv4 rec").
REC_FOLDS = 3
REC_INT8_FLAGS = ["--int8-model-rel-l2", "0.03"]


def rec_int8_folds(lines, tmp_path):
    """INT8 rec probabilities for every line (line i in fold i % REC_FOLDS)."""
    x = rec_batch(lines)  # the whole test batch's width, so every plan sees the FP32 reference run's shapes
    out = [None] * len(lines)
    for fold in range(REC_FOLDS):
        idx = [i for i in range(len(lines)) if i % REC_FOLDS == fold]
        calib = [{"x": rec_batch([("calib", c)])} for i, (_, c) in enumerate(lines) if i % REC_FOLDS != fold]
        sub = tmp_path / f"fold{fold}"
        sub.mkdir()
        got = kiln_run(REC, {"x": x[idx]}, sub, "int8", calib, REC_INT8_FLAGS)[0]
        for j, i in enumerate(idx):
            out[i] = got[j]
    return np.stack(out)


def decided_lines(ref_text, ideal_text):
    """The lines whose FP32 text ideal FP16 storage keeps (tests/fp16_ideal.py: weights and activations
    rounded to float16, FP32 compute, in onnxruntime): the others hinge on a near-tie that any 16-bit
    rounding flips (top-2 probability margins of 0.003-0.004 on skimage's images)."""
    return [i for i, (r, e) in enumerate(zip(ref_text, ideal_text)) if r == e]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_rec(lines, precision, tmp_path):
    """FP16: rel L2 <= 1.25x that of ideal FP16 storage; the decoded text identical to
    onnxruntime's on every line whose text ideal FP16 storage keeps. INT8 (issue #14): the decoded text
    identical on >= 90% of the text lines rapidocr reports (score >= 0.5) whose text ideal FP16 storage
    keeps; calibrated across folds, never on the line itself."""
    x = rec_batch(lines)
    chars = charset()
    ref = ort_run(REC, {"x": x})[0]
    ref_text = ctc_decode(ref, chars)
    n_chars = sum(len(t) for t in ref_text)
    assert sum(bool(t) for t in ref_text) >= 2 and n_chars >= 10, \
        f"PP-OCRv4 rec: onnxruntime decodes {ref_text}: too little text for a test"
    ideal = ideal_fp16_outputs(REC, {"x": x}, threads=os.cpu_count() or 1)[0]
    ideal_text = ctc_decode(ideal, chars)
    decided = decided_lines(ref_text, ideal_text)
    if precision == "int8":
        got = rec_int8_folds(lines, tmp_path)
    else:
        got = kiln_run(REC, {"x": x}, tmp_path, precision)[0]
    what = f"PP-OCRv4 rec {list(x.shape)} {precision}"
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, expected {ref.shape}"
    assert np.isfinite(got).all(), f"{what}: NaN/Inf in kiln output"
    got_text = ctc_decode(got, chars)
    for i, ((name, _), r, g) in enumerate(zip(lines, ref_text, got_text)):
        print(f"  {name}: onnxruntime {r!r}" + ("" if r == g else f", kiln {g!r}") +
              ("" if i in decided else f" (ideal FP16 storage: {ideal_text[i]!r})"))
    same = [i for i in range(len(lines)) if ref_text[i] == got_text[i]]
    storage = rel_l2(ideal, ref)
    print(f"{what}: {len(same)}/{len(lines)} lines identical ({len(set(same) & set(decided))}/{len(decided)} of "
          f"those ideal FP16 storage keeps); probabilities rel L2 {rel_l2(got, ref):.2e}, ideal FP16 storage "
          f"{storage:.2e}")
    if precision == "int8":
        reported = [i for i, sc in enumerate(ctc_score(ref)) if sc >= 0.5 and i in decided]
        kept = [i for i in reported if i in same]
        print(f"{what}: {len(kept)}/{len(reported)} of the lines rapidocr reports (score >= 0.5) that ideal FP16 "
              "storage keeps decode identically")
        assert len(reported) >= 5, f"{what}: only {len(reported)} decided, reported lines: a degenerate test"
        assert len(kept) >= 0.9 * len(reported), f"{what}: {len(kept)}/{len(reported)} lines identical (< 90%)"
        return
    if precision == "fp32":
        assert_close(got, ref, what, **FP32)
        differ = sorted(set(range(len(lines))) - set(same))
        assert not differ, f"{what}: lines decode differently: {[lines[i][0] for i in differ]}"
        return
    assert_fp16_within_ideal(got, ref, ideal, what)
    assert len(decided) >= 0.8 * len(lines), f"{what}: ideal FP16 storage keeps only {len(decided)} lines"
    differ = [i for i in decided if i not in same]
    assert not differ, f"{what}: {len(differ)} lines decode differently, first {lines[differ[0]][0]}: " \
                       f"{ref_text[differ[0]]!r} vs {got_text[differ[0]]!r}"


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_cls(lines, precision, tmp_path):
    both = list(lines) + [(name + " rot180", c[::-1, ::-1]) for name, c in lines]
    x = cls_batch(both)
    ref = ort_run(CLS, {"x": x})[0]
    got = kiln_run(CLS, {"x": x}, tmp_path, precision)[0]
    what = f"ppocr mobile cls {list(x.shape)} {precision}"
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, expected {ref.shape}"
    ref_top, got_top = ref.argmax(axis=1), got.argmax(axis=1)
    assert len(np.unique(ref_top)) == 2, f"{what}: onnxruntime's argmax is {ref_top.tolist()}: one class, degenerate"
    if precision == "fp32":
        stats = assert_close(got, ref, what, **FP32)
    else:
        stats = assert_close(got, ref, what, max_rel_l2=1e-2, elementwise=False)
    bad = np.flatnonzero(ref_top != got_top)
    assert not len(bad), (f"{what}: argmax differs on {len(bad)} of {len(both)} lines (first {both[bad[0]][0]}: "
                          f"onnxruntime {ref[bad[0]].tolist()}, kiln {got[bad[0]].tolist()})")
    upright = int((ref_top[:len(lines)] == 0).sum()) + int((ref_top[len(lines):] == 1).sum())
    print(f"{what}: argmax identical on {len(both)} lines (onnxruntime right about the rotation on "
          f"{upright}/{len(both)}); rel L2 {stats['rel_l2']:.2e}")
