// GridSample's per-sample arithmetic, shared by the CPU reference
// (src/ops/unary_grid.cc) and the CUDA kernel (src/backend/cuda/grid_sample.cu)
// so that both sample the same taps: the grid coordinate denormalized in
// float32 (as the ONNX reference does), nearest rounding half to even, the
// border/reflection rules for coordinates and for tap indices, and the cubic
// (Keys, a = -0.75) weights.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/host_device.h"

namespace kiln {

enum class GridPad { kZeros, kBorder, kReflection };

// Reflects x into [lo, hi] (PyTorch's reflect_coordinates).
KILN_HOST_DEVICE inline double GridReflect(double x, double lo, double hi) {
  const double rng = hi - lo;
  if (!(rng > 0)) return lo;
  if (x < lo) {
    double dx = lo - x;
    int64_t n = static_cast<int64_t>(dx / rng);
    double r = dx - static_cast<double>(n) * rng;
    return n % 2 == 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    double dx = x - hi;
    int64_t n = static_cast<int64_t>(dx / rng);
    double r = dx - static_cast<double>(n) * rng;
    return n % 2 == 0 ? hi - r : lo + r;
  }
  return x;
}

KILN_HOST_DEVICE inline void GridCubicCoeffs(double t, double c[4]) {
  const double A = -0.75;
  t = std::fabs(t);
  c[0] = ((A * (t + 1) - 5 * A) * (t + 1) + 8 * A) * (t + 1) - 4 * A;
  c[1] = ((A + 2) * t - (A + 3)) * t * t + 1;
  c[2] = ((A + 2) * (1 - t) - (A + 3)) * (1 - t) * (1 - t) + 1;
  c[3] = ((A * (2 - t) - 5 * A) * (2 - t) + 8 * A) * (2 - t) - 4 * A;
}

// Round half to even (float), -0.3 → -0 as IEEE rounds.
KILN_HOST_DEVICE inline float GridRoundHalfEven(float v) {
  if (!std::isfinite(v)) return v;
  float r = std::floor(v);
  float diff = v - r;
  if (diff > 0.5f || (diff == 0.5f && std::fmod(r, 2.0f) != 0.0f)) r += 1.0f;
  return r == 0.0f ? std::copysign(r, v) : r;
}

// The borders coordinates are reflected between along a dim of `len`.
KILN_HOST_DEVICE inline double GridLo(bool align) { return align ? 0.0 : -0.5; }
KILN_HOST_DEVICE inline double GridHi(bool align, int64_t len) {
  return align ? static_cast<double>(len - 1) : static_cast<double>(len) - 0.5;
}

// Source coordinate along a dim of `len` for normalized grid value g, after
// the padding rule (a float32 value, as the reference keeps it).
KILN_HOST_DEVICE inline double GridSourceCoord(float g, int64_t len, bool align, bool nearest, GridPad pad) {
  const float flen = static_cast<float>(len);
  float v = align ? (g + 1.0f) / 2.0f * (flen - 1.0f) : ((g + 1.0f) * flen - 1.0f) / 2.0f;
  if (nearest) v = GridRoundHalfEven(v);
  double dv = v;
  const double lo = GridLo(align), hi = GridHi(align, len);
  if (dv < lo || dv > hi) {
    if (pad == GridPad::kBorder) dv = dv < 0.0 ? 0.0 : dv > static_cast<double>(len - 1) ? static_cast<double>(len - 1) : dv;
    else if (pad == GridPad::kReflection) dv = GridReflect(dv, lo, hi);
  }
  return static_cast<float>(dv);
}

// Index of tap i along a dim of `len` under the padding rule; -1 when the
// tap reads zero (zeros padding, outside).
KILN_HOST_DEVICE inline int64_t GridTapIndex(int64_t i, int64_t len, bool align, GridPad pad) {
  if (pad == GridPad::kZeros) return i < 0 || i >= len ? -1 : i;
  if (pad == GridPad::kReflection)
    i = static_cast<int64_t>(GridReflect(static_cast<double>(i), GridLo(align), GridHi(align, len)));
  return i < 0 ? 0 : i > len - 1 ? len - 1 : i;
}

}  // namespace kiln
