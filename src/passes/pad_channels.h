// Build-time rewrite for the CUDA engine (run by RunBuildPasses after
// layout_nhwc): a channels-last convolution with fewer than 8 input channels
// (the RGB stem of every CNN) reads them padded with zeros to 8.
//
//   Y = kiln.FusedConvNhwc(X[N,H,W,C], W[K,R,S,C], ...)      (C < 8, group 1, H·W >= 1024)
//     ⇒ Y = kiln.FusedConvNhwc(Pad(X, C → 8), W zero-padded to [K,R,S,8], ...)
//
// The zero channels add nothing, so Y is the same. cuDNN's FP16 NHWC tensor-core
// kernels want 16-byte channel rows; with 3 channels it ran ResNet-50's 7×7 stem
// in 0.34 ms of a 3.0 ms profile at batch 32 on an H100, MobileNetV2's 3×3 stem in
// 0.32 of 1.7 ms (TensorRT pads the same way). Needs a constant W.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunPadConvChannels(Model& model, PassContext& ctx);

}  // namespace kiln
