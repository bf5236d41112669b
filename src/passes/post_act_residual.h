// Build pass (after the layout passes): a residual Add of an activated convolution's output, y = act(conv(x)
// + b) + z, becomes the convolution's epilogue in that order (kiln.FusedConv[Nhwc] with Z and
// residual_after_activation = 1); fuse_gpu's epilogue adds Z before the activation (ResNet's order). YOLO's
// bottlenecks (x + SiLU(conv)), CSPDarknet's (x + LeakyReLU(conv)) and EfficientNetV2's first stage write the
// activation first; each Add was a pass reading two activation maps and writing one. Dense convolutions only
// (cuDNN's graph puts Z after the activation; kiln's depthwise kernels and the 1x1 products add it before),
// with an activation and no Z yet, whose output only the Add reads. Only the main graph.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunPostActResidual(Model& model, PassContext& ctx);

}  // namespace kiln
