// What `kiln compare` reports per value: the project's one comparison
// (reference/compare.h) plus max relative error and, for classifier logits
// (2-D [N, C], C >= 2, floating point), top-1/top-5 agreement.
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "reference/compare.h"

namespace kiln::cli {

struct ValueMetrics {
  Comparison cmp;           // ok, max_abs, rel_l2, message
  double max_rel = 0;       // max |got - ref| / |ref| over finite elements with ref != 0
  bool classifier = false;  // [N, C] logits: the top-k fields are set
  int64_t rows = 0;
  int64_t top1 = 0;     // rows whose argmax agrees
  int64_t top5 = 0;     // rows where the reference's argmax is in kiln's top 5 (top C when C < 5)
  std::string vacuous;  // non-empty: why this comparison could not have failed (CheckCanFail)
};

// `ref` is the reference's tensor, `got` kiln's.
ValueMetrics MeasureValue(const Tensor& ref, const Tensor& got, const Tolerance& tol);

// For a failed comparison of a reduced-precision run (FP16, INT8, FP8): why it may be the reference's range
// rather than a kernel, when the reference's RMS is below float16's smallest normal number (random weights
// that vanish through a deep network do this: MobileNetV2 from bench/suite.py gives RMS 5e-10); else empty.
std::string RangeNote(const ValueMetrics& m);

// "max abs 1.2e-06, max rel 3.4e-05, rel L2 2.1e-07[, top-1 8/8, top-5 8/8]".
std::string FormatMetrics(const ValueMetrics& m);

}  // namespace kiln::cli
