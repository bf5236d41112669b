"""Output comparison for the Python tests, the same criterion as src/reference/compare.h.

    per element   |got - ref| <= rtol * |ref| + atol * rms(ref)
    and, if set,  ||got - ref|| / ||ref|| <= max_rel_l2

Every comparison first proves it can fail (mutation testing built into the
check): the same tolerance must reject an all-zeros result and the reference
perturbed by 5%, and the reference must not be degenerate (no finite non-zero
element; for a batch of two or more inputs, outputs that do not depend on the
input; for classifiers over many inputs, one class for (nearly) all of them).
"""
import numpy as np


def rms(a):
    a = np.asarray(a, dtype=np.float64)
    f = a[np.isfinite(a)]
    return float(np.sqrt(np.mean(f * f))) if f.size else 0.0


def _exact(a):
    return not np.issubdtype(np.asarray(a).dtype, np.floating)


def compare(ref, got, rtol=1e-4, atol=1e-5, max_rel_l2=None, elementwise=True):
    """(ok, message, stats) for `got` against the oracle's `ref`."""
    ref, got = np.asarray(ref), np.asarray(got)
    if ref.shape != got.shape:
        return False, f"shape {got.shape}, expected {ref.shape}", {}
    if _exact(ref) or _exact(got):
        if ref.dtype != got.dtype:
            return False, f"dtype {got.dtype}, expected {ref.dtype}", {}
        bad = np.argwhere(ref != got)
        if len(bad):
            i = tuple(bad[0])
            return False, f"{len(bad)} elements differ; first at {list(i)}: expected {ref[i]}, got {got[i]}", {}
        return True, "", {}
    r, g = ref.astype(np.float64), got.astype(np.float64)
    finite = np.isfinite(r) & np.isfinite(g)
    special_ok = np.all((np.isnan(r) & np.isnan(g)) | (r == g) | finite)
    scale = rms(r)
    d = np.where(finite, np.abs(g - r), 0.0)
    bound = rtol * np.abs(np.where(finite, r, 0.0)) + atol * scale
    ref_norm = float(np.linalg.norm(np.where(finite, r, 0.0)))
    rel_l2 = float(np.linalg.norm(d)) / ref_norm if ref_norm > 0 else (0.0 if not d.any() else np.inf)
    stats = {"max_abs": float(d.max(initial=0.0)), "rel_l2": rel_l2, "ref_rms": scale}
    over = (d > bound) if elementwise else np.zeros_like(d, dtype=bool)
    ok = bool(special_ok and not over.any() and (max_rel_l2 is None or rel_l2 <= max_rel_l2))
    if ok:
        return True, "", stats
    if not special_ok:
        msg = "NaN/Inf where the reference has none (or the other way round)"
    elif over.any():
        i = np.unravel_index(np.argmax(d - bound), d.shape)
        msg = (f"{int(over.sum())} of {d.size} elements differ; worst at {list(i)}: expected {r[i]:.7g}, "
               f"got {g[i]:.7g}")
    else:
        msg = f"rel L2 {rel_l2:.3e} is over {max_rel_l2}"
    tol = (f"rtol {rtol} / atol {atol}·rms" if elementwise else "") + \
          (f" rel L2 {max_rel_l2}" if max_rel_l2 is not None else "")
    return False, f"{msg} (tolerance {tol.strip()}; max abs {stats['max_abs']:.3g}, rel L2 {rel_l2:.3g}, " \
                  f"reference RMS {scale:.3g})", stats


def can_fail(ref, rtol=1e-4, atol=1e-5, max_rel_l2=None, elementwise=True):
    """None when a comparison against `ref` with this tolerance could fail, else why not."""
    ref = np.asarray(ref)
    if ref.size == 0:
        return None
    zeros = np.zeros_like(ref)
    if _exact(ref):
        return "the reference is all zeros: an all-zeros result would pass" if not ref.any() else None
    scale = rms(ref)
    if not scale > 0:
        return "the reference has no finite non-zero element"
    tol = dict(rtol=rtol, atol=atol, max_rel_l2=max_rel_l2, elementwise=elementwise)
    if compare(ref, zeros, **tol)[0]:
        return f"the tolerance accepts an all-zeros result (reference RMS {scale:.3g})"
    r = ref.astype(np.float64)
    sign = np.where(np.arange(r.size).reshape(r.shape) % 2 == 0, 1.0, -1.0)
    perturbed = np.where(np.isfinite(r), r + sign * 0.05 * np.maximum(np.abs(r), scale), r)
    if compare(ref, perturbed, **tol)[0]:
        return "the tolerance accepts the reference perturbed by 5%"
    return None


def input_dependence(ref, batch_axis=0):
    """Spread across the batch relative to the output's RMS (0: the output ignores its input)."""
    ref = np.asarray(ref, dtype=np.float64)
    if ref.ndim == 0 or ref.shape[batch_axis] < 2:
        return None
    centred = ref - ref.mean(axis=batch_axis, keepdims=True)
    scale = rms(ref)
    return rms(centred) / scale if scale > 0 else 0.0


def assert_not_degenerate(ref, name, batch_axis=0, min_spread=1e-3):
    """Fails when `ref` cannot tell a working model from a broken one."""
    ref = np.asarray(ref)
    if _exact(ref):
        assert ref.size == 0 or ref.any(), f"{name}: the reference is all zeros: a degenerate test"
        return
    assert rms(ref) > 0, f"{name}: the reference has no finite non-zero element: a degenerate test"
    spread = input_dependence(ref, batch_axis)
    assert spread is None or spread > min_spread, (
        f"{name}: the reference barely depends on the input (spread across the batch {spread:.2e} of its RMS): "
        "a degenerate test")
    if ref.ndim == 2 and ref.shape[0] >= 8 and ref.shape[1] >= 10:
        top = ref.argmax(axis=1)
        common = int(np.bincount(top).max())
        assert common <= 0.9 * top.size, (f"{name}: the reference's top-1 is one class on {common}/{top.size} "
                                          "inputs: a degenerate test")


def assert_close(got, ref, name, rtol=1e-4, atol=1e-5, max_rel_l2=None, elementwise=True, batch_axis=0):
    """The reference is meaningful, the tolerance can fail, and `got` is within it. Returns the stats."""
    assert_not_degenerate(ref, name, batch_axis)
    why = can_fail(ref, rtol, atol, max_rel_l2, elementwise)
    assert why is None, f"{name}: vacuous comparison: {why}"
    ok, msg, stats = compare(ref, got, rtol, atol, max_rel_l2, elementwise)
    assert ok, f"{name}: {msg}"
    return stats
