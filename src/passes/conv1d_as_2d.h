// Build pass (run by RunBuildPasses before layout_nhwc, for the channels-last CUDA builds): a 1-D
// convolution becomes the 2-D one of height 1, between two views (Reshapes, no copies):
//
//   Conv(x [N, C, W], w [K, C/g, k])  ⇒  Reshape(Conv(Reshape(x, [0, 0, 1, -1]), w [K, C/g, 1, k]), [0, 0,
//   -1])
//
// with kernel_shape [1, k], strides [1, s], dilations [1, d], pads [0, b, 0, e] (and a kiln.FusedConv's
// residual Z viewed the same way; its bias and activation stay). layout_nhwc then runs it channels-last like
// any 2-D convolution, on cuDNN's NHWC kernels or kiln's depthwise kernel. NCW 1-D convolutions ran on
// cuDNN's NCHW path: Whisper-tiny's two encoder convolutions (80 → 384 and 384 → 384 channels, k 3, 3000
// frames) took 0.34 of the encoder's 0.39 ms at batch 1 on an H100. Every output element is the same sum of
// the same products. Needs: Conv or kiln.FusedConv, rank-3 X and Y, a constant rank-3 W, a float type;
// auto_pad NOTSET or VALID (the SAME forms pad the height too). Only the main graph.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunConv1dAs2d(Model& model, PassContext& ctx);

}  // namespace kiln
