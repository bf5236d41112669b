"""tests/compare_detections.py: the detection comparison must reject wrong detections."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from compare_detections import (assert_detections_match, box_iou, compare_detections,  # noqa: E402
                                detections_can_fail, match, soft_mask_iou)

SIZE = 64


def detections(n=40, seed=0, masks=True):
    """n detections on a SIZE x SIZE image, three labels, scores in (0.3, 0.9), soft masks in their boxes."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, SIZE - 20, (n, 2))
    wh = rng.uniform(4, 20, (n, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    d = {"boxes": boxes, "scores": np.sort(rng.uniform(0.3, 0.9, n))[::-1].astype(np.float32),
         "labels": rng.integers(1, 4, n).astype(np.int64)}
    if masks:
        m = np.zeros((n, 1, SIZE, SIZE), np.float32)
        for i, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
            m[i, 0, y1:y2 + 1, x1:x2 + 1] = rng.uniform(0.2, 1.0, (y2 - y1 + 1, x2 - x1 + 1))
        d["masks"] = m
    return d


def take(d, idx):
    return {k: np.asarray(v)[idx] for k, v in d.items()}


def check(ref, got, **tol):
    return compare_detections(ref, got, **tol)[0]


def test_box_iou_by_hand():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [10, 10, 20, 20], [0, 0, 5, 10]])
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 50 / 150, 0.0, 0.5]])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 4)
    assert soft_mask_iou(np.array([1.0, 0.5, 0.0]), np.array([0.5, 0.5, 0.5])) == pytest.approx(1.0 / 2.0)
    assert soft_mask_iou(np.zeros(4), np.zeros(4)) == 1.0


def test_same_detections_in_any_order_match():
    ref = detections()
    got = take(ref, np.random.default_rng(1).permutation(40))
    got["boxes"] = got["boxes"] + 1e-3
    got["scores"] = got["scores"] + 1e-5
    ok, msg, stats = compare_detections(ref, got, box_iou=0.99)
    assert ok, msg
    assert stats["matched"] == 40 and stats["min_mask_iou"] == 1.0
    assert detections_can_fail(ref, min_detections=30, box_iou=0.99) is None


def test_matching_is_per_label():
    ref = detections()
    got = dict(ref, labels=ref["labels"] % 3 + 1)  # every label changed
    assert match(ref, got) == []
    pairs = match(ref, ref)
    assert sorted(i for i, _, _ in pairs) == list(range(40)) and all(i == j for i, j, _ in pairs)


def test_shifted_boxes_are_rejected():
    ref = detections()
    for shift in (0.05, 0.2):
        wh = np.concatenate([ref["boxes"][:, 2:] - ref["boxes"][:, :2]] * 2, axis=1)
        assert not check(ref, dict(ref, boxes=ref["boxes"] + shift * wh))
    # A few pixels on a 4-20 px box is a different box at IoU 0.99 (and at 0.9 for most of them).
    assert not check(ref, dict(ref, boxes=ref["boxes"] + np.array([2, 0, 2, 0])), box_iou=0.99)


def test_swapped_labels_are_rejected():
    ref = detections()
    i, j = [int(k) for k in np.flatnonzero(ref["labels"] != ref["labels"][0])[:1]] + [0]
    labels = ref["labels"].copy()
    labels[[i, j]] = labels[[j, i]]  # one pair swapped: two misses each way, one allowed
    ok, msg, _ = compare_detections(ref, dict(ref, labels=labels))
    assert not ok and "no match" in msg
    assert not check(ref, dict(ref, labels=np.roll(ref["labels"], 1)))


def test_wrong_scores_and_masks_are_rejected():
    ref = detections()
    assert not check(ref, dict(ref, scores=ref["scores"] * 1.05))
    assert not check(ref, dict(ref, scores=ref["scores"] * (1 + 2e-3)))
    assert check(ref, dict(ref, scores=ref["scores"] * (1 + 5e-4)))
    small = dict(ref, scores=ref["scores"] * 0.03)  # ~0.014, a random-weight 91-class softmax
    assert not check(small, dict(small, scores=small["scores"] * 1.05))
    assert not check(ref, dict(ref, masks=np.roll(ref["masks"], 2, axis=-1)))
    assert not check(ref, dict(ref, masks=ref["masks"] * 0.95))
    assert not check(ref, dict(ref, masks=ref["masks"][::-1]))  # masks of other detections
    with_none = {k: v for k, v in ref.items() if k != "masks"}
    assert not check(ref, with_none)


def test_a_few_discrete_differences_are_allowed_many_are_not():
    ref = detections()  # 40 confident: floor(3% of 40) = 1 miss allowed
    assert check(ref, take(ref, np.arange(1, 40)))  # one detection dropped (e.g. at an NMS near-tie)
    assert not check(ref, take(ref, np.arange(2, 40)))
    one_mask = ref["masks"].copy()
    one_mask[5] = np.roll(one_mask[5], 1, axis=-1)  # a mask pasted one pixel off (a box edge near an integer)
    assert check(ref, dict(ref, masks=one_mask))
    one_mask[6] = np.roll(one_mask[6], 1, axis=-1)
    assert not check(ref, dict(ref, masks=one_mask))
    extra = detections(3, seed=7)
    more = {k: np.concatenate([ref[k], extra[k]]) for k in ref}
    assert not check(ref, more)  # three confident detections the reference does not have


def test_unconfident_detections_may_differ():
    ref = detections()
    low = ref["scores"] < 0.5
    assert low.sum() >= 5
    got = take(ref, np.flatnonzero(~low))
    assert not check(ref, got)
    assert check(ref, got, min_score=0.5)
    assert check(ref, got, min_score=0.5 + 1e-6) and check(got, ref, min_score=0.5)


def test_vacuous_comparisons_are_reported():
    ref = detections()
    assert "fewer than 50" in detections_can_fail(ref, min_detections=50)
    assert "5% of their size" in detections_can_fail(ref, box_iou=0.5)
    assert "labels rotated" in detections_can_fail(dict(ref, labels=np.ones(40, np.int64)))
    assert "scores" in detections_can_fail(ref, score_atol=0.1)
    assert "scores" in detections_can_fail(ref, score_rtol=0.1)
    assert "masks shifted" in detections_can_fail(ref, mask_iou=0.0)
    assert "empty result" in detections_can_fail(ref, max_miss_fraction=1.0)
    one_label = dict(ref, labels=np.ones(40, np.int64))
    with pytest.raises(AssertionError, match="vacuous"):
        assert_detections_match(one_label, one_label, "one label")
    assert_detections_match(ref, ref, "same")
