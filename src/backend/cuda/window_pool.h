// 2-D MaxPool / AveragePool for the windows cuDNN cannot express: pads that differ before and after,
// ceil_mode windows that reach past the padded input, dilations (pool.cc uses cuDNN for the others).
// GoogLeNet's ceil_mode MaxPools (112 → 56 with kernel 3, stride 2, no pads) failed to build on the GPU
// before (2026-12-07). One thread per output element (channels fastest when channels-last), the CPU
// reference's rules (src/ops/nn_pool.cc): the max over the taps inside X (the first tap wins over a NaN after
// it, a NaN first stays), the mean over the taps inside X, or with count_include_pad over those inside the
// padded X.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"
#include "kiln/status.h"

namespace kiln::cuda {

struct WindowPool2d {
  int64_t n = 0, c = 0, h = 0, w = 0, oh = 0, ow = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pt = 0, pl = 0, pb = 0, pr = 0;  // pads: top, left, bottom, right
  bool max = true, count_include_pad = false, channels_last = false;
};

// float32 / float16 / bfloat16 X and Y.
Status LaunchWindowPool2d(DataType dt, const WindowPool2d& g, const void* x, void* y, cudaStream_t stream);

}  // namespace kiln::cuda
