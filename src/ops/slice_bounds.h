// The clamping of one ONNX Slice axis (negative bounds count from the end,
// bounds beyond the dim clamp to it), shared by the Slice reference
// (shape_layout.cc) and the generated pointwise kernels' views of sliced
// inputs (pointwise_abi.h), which must pick exactly the same elements.
#pragma once

#include <algorithm>
#include <cstdint>

namespace kiln {

// Clamped start and element count of one sliced dim of size `dim`.
inline void ClampSlice(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t* first,
                       int64_t* count) {
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    *count = end > start ? (end - start - 1) / step + 1 : 0;
  } else {
    start = std::clamp<int64_t>(start, 0, dim - 1);
    end = std::clamp<int64_t>(end, -1, dim - 1);
    *count = start > end ? (start - end - 1) / (-step) + 1 : 0;
  }
  *first = start;
}

}  // namespace kiln
