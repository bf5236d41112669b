"""tests/compare_outputs.py: the comparison the model tests use must be able to fail."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from compare_outputs import assert_close, can_fail, compare  # noqa: E402


def logits(batch=4, classes=20, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, classes)).astype(np.float32)


def test_tiny_outputs_are_compared_relative_to_their_size():
    ref = logits() * 1e-9  # an untuned-BatchNorm mobilenet's outputs
    assert not compare(ref, np.zeros_like(ref))[0]
    assert not compare(ref, -ref)[0]
    assert compare(ref, ref * (1 + 1e-6))[0]


def test_wrong_answers_fail():
    ref = logits()
    for wrong in (np.zeros_like(ref), -ref, logits(seed=1), ref * 1.05):
        with pytest.raises(AssertionError):
            assert_close(wrong, ref, "out")
    assert_close(ref + 1e-7, ref, "out")


def test_loose_tolerances_are_vacuous():
    ref = logits()
    assert can_fail(ref) is None
    assert "all-zeros" in can_fail(ref, atol=10)
    assert "5%" in can_fail(ref, rtol=0.2, atol=0.2)
    assert can_fail(ref, max_rel_l2=1e-2, elementwise=False) is None
    assert can_fail(ref, max_rel_l2=0.1, elementwise=False) is not None


def test_degenerate_references_fail():
    with pytest.raises(AssertionError, match="no finite non-zero"):
        assert_close(np.zeros((2, 3)), np.zeros((2, 3)), "zeros")
    same = np.tile(logits(1), (4, 1))  # the output ignores the input
    with pytest.raises(AssertionError, match="barely depends on the input"):
        assert_close(same, same, "constant")
    one_class = logits(16, 20)
    one_class[:, 3] += 100  # top-1 is class 3 for every input
    with pytest.raises(AssertionError, match="one class"):
        assert_close(one_class, one_class, "one class")


def test_exact_types_and_special_values():
    a = np.array([1, 2, 3], np.int64)
    assert compare(a, a)[0]
    assert not compare(a, np.array([1, 2, 4], np.int64))[0]
    f = np.array([np.nan, np.inf, 1.0], np.float32)
    assert compare(f, f.copy())[0]
    assert not compare(f, np.array([0.0, np.inf, 1.0], np.float32))[0]


def test_fp16_within_ideal_storage_can_fail():
    """tests/fp16_ideal.py's bound: 1.25x the error of ideal FP16 storage, also where that error is near 5%
    (then the 5%-perturbation check cannot apply; zeros and twice the storage error still fail)."""
    from fp16_ideal import assert_fp16_within_ideal
    ref = logits(8, 50)
    noise = logits(8, 50, seed=2)
    for size in (1e-3, 0.1):  # a well-behaved net; a random-weight net that amplifies storage noise
        step = size * np.linalg.norm(ref) / np.linalg.norm(noise)
        ideal = ref + step * noise
        st = assert_fp16_within_ideal(ref + 1.1 * step * logits(8, 50, seed=3), ref, ideal, "out")
        assert st["ideal_fp16_rel_l2"] == pytest.approx(size, rel=1e-6)
        for wrong in (np.zeros_like(ref), ref + 2 * step * noise):
            with pytest.raises(AssertionError):
                assert_fp16_within_ideal(wrong, ref, ideal, "out")
