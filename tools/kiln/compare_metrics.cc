// Per-value metrics of `kiln compare` (see compare_metrics.h).
#include "compare_metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace kiln::cli {
namespace {

double MaxRel(const Tensor& ref, const Tensor& got) {
  double m = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    double r = ref.ScalarAt(i), g = got.ScalarAt(i);
    if (std::isfinite(r) && std::isfinite(g) && r != 0) m = std::max(m, std::fabs(g - r) / std::fabs(r));
  }
  return m;
}

// Indices of row `row`'s k largest values, largest first.
std::vector<int64_t> TopK(const Tensor& t, int64_t row, int64_t cols, int64_t k) {
  std::vector<int64_t> idx(static_cast<size_t>(cols));
  std::iota(idx.begin(), idx.end(), 0);
  auto at = [&](int64_t c) { return t.ScalarAt(row * cols + c); };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int64_t a, int64_t b) { return at(a) > at(b); });
  idx.resize(static_cast<size_t>(k));
  return idx;
}

}  // namespace

ValueMetrics MeasureValue(const Tensor& ref, const Tensor& got, const Tolerance& tol) {
  ValueMetrics m;
  m.cmp = CompareTensors(ref, got, tol);
  Status can_fail = CheckCanFail(ref, tol);
  if (!can_fail.ok()) m.vacuous = can_fail.message();
  if (ref.dims() != got.dims() || !IsFloatingPoint(ref.dtype()) || !IsFloatingPoint(got.dtype())) return m;
  m.max_rel = MaxRel(ref, got);
  if (ref.rank() != 2 || ref.dim(1) < 2) return m;
  m.classifier = true;
  m.rows = ref.dim(0);
  const int64_t cols = ref.dim(1), k = std::min<int64_t>(5, cols);
  for (int64_t r = 0; r < m.rows; ++r) {
    int64_t want = TopK(ref, r, cols, 1)[0];
    std::vector<int64_t> top = TopK(got, r, cols, k);
    m.top1 += top[0] == want;
    m.top5 += std::find(top.begin(), top.end(), want) != top.end();
  }
  return m;
}

std::string RangeNote(const ValueMetrics& m) {
  constexpr double kHalfMinNormal = 6.103515625e-05;  // 2^-14
  if (m.cmp.ok || !(m.cmp.ref_rms > 0) || m.cmp.ref_rms >= kHalfMinNormal) return "";
  return fmt::format(
      "the reference's RMS {:.3g} is below float16's smallest normal number (6.1e-05): a reduced-precision "
      "engine flushes such values toward zero (random weights that vanish through the network?); compare "
      "trained weights, or without --fp16",
      m.cmp.ref_rms);
}

std::string FormatMetrics(const ValueMetrics& m) {
  std::string s =
      fmt::format("max abs {:.3g}, max rel {:.3g}, rel L2 {:.3g}", m.cmp.max_abs, m.max_rel, m.cmp.rel_l2);
  if (m.classifier) s += fmt::format(", top-1 {}/{}, top-5 {}/{}", m.top1, m.rows, m.top5, m.rows);
  return s;
}

}  // namespace kiln::cli
