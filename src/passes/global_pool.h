// Simplifier pass: a mean over every spatial axis of an [N, C, spatial...] tensor (2-D or 3-D spatial: rank 4
// or 5) is a global average pool. ReduceMean(x, axes = [2 .. r-1]) → GlobalAveragePool(x), and with
// keepdims = 0 → Reshape(·, [0, -1]). Rank 3 stays: the last-axis mean of [B, S, H] is a LayerNorm's.
// timm's squeeze-and-excitation gates (`x.mean((2, 3), keepdim=True)`: EfficientNet, MobileNetV3, RegNetY)
// and heads (ShuffleNetV2's `x.mean([2, 3])`) write the mean; torchvision's AdaptiveAvgPool2d writes the
// pool. As a pool it runs channels-last (layout_nhwc; the global pool kernel reads NHWC in place), where the
// mean needed the activation map transposed back to NCHW first, and gate_mul sees the gate it fuses. Float
// types only (the pool's); the mean of every element of each [N, C] plane either way.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunGlobalPool(Model& model, PassContext& ctx);

}  // namespace kiln
