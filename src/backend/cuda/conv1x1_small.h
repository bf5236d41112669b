// Channels-last 1x1 convolutions of few input channels (C ≤ 64: MobileNet's
// expansions, 16 → 96 at 112² and the like) as our own kernel, with the whole
// FusedConv epilogue: Y[p, n] = act(Σ_c X[p, c] · W[n, c] + B[n] + Z[p, n]).
// cuBLASLt runs them far from the memory bound (a product over K = 16 is
// nearly all reads and writes) and fuses only ReLU, so ReLU6 cost a second
// pass over the output: MobileNetV2's first expansion took 0.113 ms at batch
// 32 on an H100 for ~90 MB of traffic. One thread per VEC output channels of
// one pixel (16 bytes), the pixel's C inputs read as 16-byte packs, W in
// shared memory as FP32, FP32 accumulation. Few pixels (≤ 32: SE gates' 1x1
// convolutions on pooled [N,1,1,C] at batch 1-32, MobileNetV3's and
// EfficientNet's; any C, K) run a second kernel: a warp per output channel
// reading W's row once, 16 bytes a lane. conv.cc times either against
// cuBLASLt's product plus the activation pass and keeps the faster.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/activation.h"
#include "core/dtype.h"
#include "kiln/status.h"

namespace kiln::cuda {

struct Conv1x1Shape {
  int64_t pixels = 0;    // N·H·W
  int64_t c = 0, k = 0;  // input and output channels; W is [K, C]
};

// Whether a kernel takes this shape and type: float32/float16/bfloat16, C a multiple of the 16-byte vector;
// then 1-32 pixels (any K), or K a multiple of the vector too, C ≤ 64 and K·C ≤ 12288 (W in 48 KB of shared
// memory); fewer than 2^31 elements.
bool SmallConv1x1Fits(DataType dt, const Conv1x1Shape& s);

// b, z may be null.
Status LaunchSmallConv1x1(DataType dt, const Conv1x1Shape& s, const void* x, const void* w, const void* b,
                          const void* z, void* y, const ActivationSpec& act, cudaStream_t stream);

}  // namespace kiln::cuda
