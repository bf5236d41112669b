// Build-time rewrite for the CUDA engine (run by RunBuildPasses after
// layout_nhwc, before pad_channels): a channels-last convolution with fewer
// than 8 input channels and a window larger than 1x1 (the RGB stem of every
// CNN) becomes one matrix product over its windows:
//
//   Y = kiln.FusedConvNhwc(X[N,H,W,C], W[K,R,S,C], B?, Z?)     (C < 8, group 1, H·W >= 1024)
//     ⇒ A = kiln.Im2Col(X)                  [N,OH,OW,P], P = R·S·C rounded up to 8
//       Y = kiln.FusedConvNhwc(A, W'[K,1,1,P], B?, Z?)   W' = W's rows, zero-padded
//
// and the 1x1 product runs as one cuBLASLt GEMM with its bias/ReLU epilogue. A HardSwish or HardSigmoid
// that reads only Y joins the product's activation (fuse_gpu keeps them out of dense convolutions).
// When X is the NHWC Transpose of an NCHW tensor (the model's input, after
// layout_nhwc), Im2Col reads that tensor (channels_last = 0) and the Transpose
// goes when nothing else reads it. cuDNN ran these convolutions far below the
// rest: MobileNetV2's 3x3 stem (8 padded channels) took 0.29-0.41 ms of a
// 1.9 ms profile at batch 32 on an H100, with 0.1 ms more for the Pad and
// Transpose before it. Needs a constant W; Im2Col reads the convolution's
// window attributes (auto_pad included) as Conv does.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunStemIm2Col(Model& model, PassContext& ctx);

}  // namespace kiln
