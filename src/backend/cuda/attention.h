// kiln.Attention on the GPU (src/ops/kiln_attention.cc has the semantics,
// src/ops/attention_layout.h the geometry). attention.cc holds the op: cuDNN's
// fused flash attention (cudnn-frontend SDPA) for float16/bfloat16 when cuDNN
// supports the geometry, else our kernel here, which runs every case the
// fusion pass makes (any float type, head sizes up to 256, any bias
// broadcast): one warp per query row, keys in chunks of 32 with an online
// softmax, FP32 scores and accumulation. Short sequences have a kernel of their own (below).
#pragma once

#include <cuda_runtime.h>

#include "core/dtype.h"
#include "kiln/status.h"
#include "ops/attention_layout.h"

namespace kiln::cuda {

constexpr int64_t kAttentionKernelMaxHeadDim = 256;

struct AttentionArgs {
  AttentionShape g;
  AttentionStrides q, k, v, y;
  BiasStrides bias;
  float scale = 1.f;
};

// bias may be null. float32 / float16 / bfloat16 / float64.
Status LaunchAttention(DataType dt, const AttentionArgs& a, const void* q, const void* k, const void* v,
                       const void* bias, void* y, cudaStream_t stream);

// The short-sequence kernel (attention.cu): one block per (batch, head) with K and V in shared memory, for at
// most 64 keys and Q·K and V head sizes both 32 or 64 (float32 / float16 / bfloat16). attention.cc times it
// against cuDNN's flash attention where both run.
bool SmallAttentionFits(DataType dt, const AttentionArgs& a);
Status LaunchSmallAttention(DataType dt, const AttentionArgs& a, const void* q, const void* k, const void* v,
                            const void* bias, void* y, cudaStream_t stream);

}  // namespace kiln::cuda
