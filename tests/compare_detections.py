"""Detection comparison for the model tests: match boxes, then compare what matched.

Index-by-index comparison of a detector's outputs is the wrong test: two
correct engines differ in float rounding, and a detector turns rounding into
discrete differences (a near-tie in TopK or NMS swaps two proposals, a box
coordinate a hair from an integer pastes its mask one pixel wider, a score at
the threshold or at the detections-per-image cap is kept by one and dropped by
the other). So detections are compared as sets:

1. Matching: greedy per label, reference detections in descending score order,
   each taking the unmatched detection of the same label with the highest box
   IoU, if that IoU is >= box_iou. (After per-class NMS at IoU u, same-label
   boxes of one result overlap by at most u; 1 - IoU is a metric, so two boxes
   that both reach box_iou t with a third overlap by at least 2t - 1. For
   t > (1 + u) / 2, 0.75 for torchvision's u = 0.5, at most one candidate
   qualifies and the matching does not depend on the order.)
2. Matched pairs: |score - reference score| <= score_rtol * reference score +
   score_atol (random-weight classifiers over 91 classes give scores of ~0.014,
   so the tolerance is relative), and masks (if given) with soft IoU
   sum(min(a, b)) / sum(max(a, b)) >= mask_iou (1 - soft IoU is the L1 error
   relative to the masks' mass; it needs no threshold on the probabilities,
   which random-weight masks sit right at).
3. Confident detections (score >= min_score, on either side) that found no
   partner, and matched pairs whose masks differ, may each be at most
   max_miss_fraction of the confident reference detections.

As in compare_outputs.py, a comparison first proves it can fail: the reference
must hold min_detections confident detections, and the same criterion must
reject an empty result and the reference mutated (boxes shifted by 5% of
their size, labels rotated among the detections, scores +5%, masks shifted by
two pixels).
"""
import numpy as np


def box_iou(a, b):
    """IoU matrix [len(a), len(b)] of boxes (x1, y1, x2, y2)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def soft_mask_iou(a, b):
    """sum(min) / sum(max) of two non-negative masks; 1.0 when both are empty."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    union = np.maximum(a, b).sum()
    return float(np.minimum(a, b).sum() / union) if union > 0 else 1.0


def _dets(d):
    boxes = np.asarray(d["boxes"], np.float64).reshape(-1, 4)
    out = {"boxes": boxes, "scores": np.asarray(d["scores"], np.float64).reshape(-1),
           "labels": np.asarray(d["labels"]).reshape(-1)}
    n = len(boxes)
    if not len(out["scores"]) == len(out["labels"]) == n:
        raise ValueError(f"{n} boxes, {len(out['scores'])} scores and {len(out['labels'])} labels")
    if d.get("masks") is not None:
        masks = np.asarray(d["masks"])
        if len(masks) != n:
            raise ValueError(f"{n} boxes but {len(masks)} masks")
        out["masks"] = masks.reshape(n, int(np.prod(masks.shape[1:])))
    return out


def match(ref, got, box_iou_min=0.9):
    """Greedy per-label matching: list of (ref index, got index, IoU)."""
    ref, got = _dets(ref), _dets(got)
    iou = box_iou(ref["boxes"], got["boxes"])
    same = ref["labels"][:, None] == got["labels"][None, :]
    iou = np.where(same, iou, -1.0)
    taken = np.zeros(len(got["boxes"]), bool)
    pairs = []
    for i in np.argsort(-ref["scores"], kind="stable"):
        if not len(taken):
            break
        cand = np.where(taken, -1.0, iou[i])
        j = int(np.argmax(cand))
        if cand[j] >= box_iou_min:
            taken[j] = True
            pairs.append((int(i), j, float(cand[j])))
    return pairs


def score_tolerance(score, score_rtol=1e-3, score_atol=1e-5):
    return score_rtol * np.abs(score) + score_atol


def confident_floor(scores, thresh, cap, score_rtol=1e-3, score_atol=1e-5):
    """Scores below this may be in one result and not the other: at the score threshold, and, when
    the reference is full, at the cap (the 100th and 101st detections can trade places)."""
    floor = float(np.min(scores)) if len(scores) >= cap else thresh
    return floor + 2 * score_tolerance(floor, score_rtol, score_atol)


def compare_detections(ref, got, box_iou=0.9, score_rtol=1e-3, score_atol=1e-5, mask_iou=0.99, min_score=0.0,
                       max_miss_fraction=0.03):
    """(ok, message, stats) for the detections `got` against the oracle's `ref`.

    ref, got: dicts with boxes [N,4] (x1, y1, x2, y2), scores [N], labels [N] and
    optionally masks [N,...] (per-detection probabilities, any trailing shape).
    """
    r, g = _dets(ref), _dets(got)
    pairs = match(r, g, box_iou)
    matched_r = {i for i, _, _ in pairs}
    matched_g = {j for _, j, _ in pairs}
    conf_r = np.flatnonzero(r["scores"] >= min_score)
    conf_g = np.flatnonzero(g["scores"] >= min_score)
    missing = [int(i) for i in conf_r if i not in matched_r]
    extra = [int(j) for j in conf_g if j not in matched_g]
    score_err = np.array([abs(r["scores"][i] - g["scores"][j]) for i, j, _ in pairs])
    bad_scores = [(i, j) for (i, j, _), e in zip(pairs, score_err)
                  if e > score_tolerance(r["scores"][i], score_rtol, score_atol)]
    mask_ious = []
    if "masks" in r or "masks" in g:
        if not ("masks" in r and "masks" in g):
            return False, "masks on one side only", {}
        if r["masks"].shape[1:] != g["masks"].shape[1:]:
            return False, f"mask size {g['masks'].shape[1:]}, expected {r['masks'].shape[1:]}", {}
        mask_ious = [soft_mask_iou(r["masks"][i], g["masks"][j]) for i, j, _ in pairs]
    bad_masks = [(i, j, m) for (i, j, _), m in zip(pairs, mask_ious) if m < mask_iou]
    n = len(conf_r)
    allowed = int(np.floor(max_miss_fraction * n))
    stats = {
        "confident": n, "matched": len(pairs), "missing": len(missing), "extra": len(extra),
        "allowed": allowed,
        "min_box_iou": min((p[2] for p in pairs), default=1.0),
        "max_score_err": float(score_err.max(initial=0.0)),
        "min_mask_iou": min(mask_ious, default=1.0),
        "bad_masks": len(bad_masks),
    }
    problems = []
    if len(missing) > allowed:
        i = missing[0]
        problems.append(f"{len(missing)} confident reference detections have no match (first: #{i} label "
                        f"{r['labels'][i]} score {r['scores'][i]:.4f} box {np.round(r['boxes'][i], 2).tolist()})")
    if len(extra) > allowed:
        j = extra[0]
        problems.append(f"{len(extra)} confident detections match nothing in the reference (first: #{j} label "
                        f"{g['labels'][j]} score {g['scores'][j]:.4f} box {np.round(g['boxes'][j], 2).tolist()})")
    if bad_scores:
        i, j = bad_scores[0]
        problems.append(f"{len(bad_scores)} matched scores differ by more than {score_rtol}·score + {score_atol} "
                        f"(first: reference "
                        f"#{i} {r['scores'][i]:.6f}, got #{j} {g['scores'][j]:.6f})")
    if len(bad_masks) > allowed:
        i, j, m = min(bad_masks, key=lambda t: t[2])
        problems.append(f"{len(bad_masks)} matched masks have soft IoU < {mask_iou} (worst: reference #{i} vs "
                        f"#{j}, {m:.4f})")
    if problems:
        return False, "; ".join(problems) + (f" (of {n} confident reference detections, {len(pairs)} matched at "
                                             f"box IoU >= {box_iou}; {allowed} misses allowed)"), stats
    return True, "", stats


def _mutations(ref):
    """Wrong answers a comparison must reject: (what, detections)."""
    r = _dets(ref)
    boxes, scores, labels = r["boxes"], r["scores"], r["labels"]
    wh = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)
    out = [("an empty result", {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "labels": labels[:0],
                                "masks": None if "masks" not in r else r["masks"][:0]}),
           ("boxes shifted by 5% of their size", dict(r, boxes=boxes + 0.05 * wh)),
           ("labels rotated among the detections", dict(r, labels=np.roll(labels, 1))),
           ("scores +5%", dict(r, scores=scores * 1.05))]
    if "masks" in r:
        m = np.asarray(ref["masks"])  # in its own shape: [N, 1, H, W] shifts along W
        out.append(("masks shifted by two pixels", dict(r, masks=np.roll(m, 2, axis=-1))))
    return out


def detections_can_fail(ref, min_detections=1, one_class=False, **tol):
    """None when comparing against `ref` with this criterion could fail, else why not.

    one_class: the detector has one foreground class (Keypoint R-CNN), so its labels cannot be wrong and
    the rotated-labels mutation is not asked for (for other detectors one label is a degenerate reference)."""
    r = _dets(ref)
    n = int((r["scores"] >= tol.get("min_score", 0.0)).sum())
    if n < min_detections:
        return f"the reference has {n} confident detections, fewer than {min_detections}"
    for what, wrong in _mutations(ref):
        if one_class and what.startswith("labels"):
            continue
        if compare_detections(ref, wrong, **tol)[0]:
            return f"the criterion accepts {what}"
    return None


def assert_detections_match(got, ref, name, min_detections=10, one_class=False, **tol):
    """The reference has enough detections, the criterion can fail, and `got` meets it. Returns the stats."""
    why = detections_can_fail(ref, min_detections, one_class, **tol)
    assert why is None, f"{name}: vacuous comparison: {why}"
    ok, msg, stats = compare_detections(ref, got, **tol)
    assert ok, f"{name}: {msg}"
    return stats
