// Activations applied after a library call that cannot fuse them (the legacy
// cuDNN conv fuses only ReLU): one in-place elementwise pass, math in float.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "core/dtype.h"
#include "kiln/status.h"

namespace kiln {
class Node;
}

namespace kiln::cuda {

// kGelu: the erf form.
enum class Activation { kNone, kRelu, kClip, kSigmoid, kSwish, kHardSwish, kHardSigmoid, kGelu, kLeakyRelu };

struct ActivationSpec {
  Activation kind = Activation::kNone;
  float lo = 0.f, hi = 0.f;          // kClip bounds
  // kHardSigmoid: min(max(alpha·v + beta, 0), 1); kLeakyRelu: v < 0 ? alpha·v : v.
  float alpha = 0.2f, beta = 0.5f;
};

// FusedConv's activation attributes (src/ops/kiln_fused.cc) as the device epilogue's; conv.cc.
Expected<ActivationSpec> ReadFusedActivation(const Node& n);

// y[i] = act(y[i]) for n elements of a float32/float16/bfloat16 buffer.
Status LaunchActivation(DataType dt, void* y, int64_t n, const ActivationSpec& act, cudaStream_t stream);

}  // namespace kiln::cuda
