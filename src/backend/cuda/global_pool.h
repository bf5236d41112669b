// GlobalAveragePool / GlobalMaxPool on channels-last tensors (kiln.PoolNhwc):
// X [N, H·W, C] → Y [N, C]. Our own kernel because cuDNN's pooling ran the SE
// blocks' global pools at 34 µs each on EfficientNetV2-S at batch 32 (H100,
// FP16; [32, 24, 24, 512] is 19 MB, 6 µs of bandwidth): a block owns up to 32
// 16-byte vectors of channels of one image (scalars when C or the pointers do not
// allow vectors), its rows of threads split the pixels, and the rows combine in
// shared memory. FP32 accumulation; NaN propagates through the max.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "core/dtype.h"
#include "kiln/status.h"

namespace kiln::cuda {

// float32 / float16 / bfloat16.
Status LaunchGlobalPoolNhwc(DataType dt, bool max, int64_t n, int64_t pixels, int64_t c, const void* x, void* y,
                            cudaStream_t stream);

}  // namespace kiln::cuda
