// Build pass (after the layout passes): epilogues that fuse_gpu could not take because a Reshape stood
// between the op and its product or convolution, and which only after layout_nhwc and permute_chains is a
// Reshape that keeps the data's order:
// - a residual Add after a matrix product, through Reshapes to the product's own dims, goes into the
// product's
//   epilogue (kiln.FusedMatMul's Z, cuBLASLt's C with beta 1). ConvNeXt's blocks (timm's and torchvision's)
//   permute the MLP's output back to NCHW before the residual. Plain MatMuls with constant 2-D weights become
//   FusedMatMuls; a FusedMatMul must have no residual and no activation yet (the epilogue adds Z before its
//   activation).
// - an activation (Relu, Sigmoid, erf GELU, LeakyRelu) of a convolution's output, through any Reshapes (the
//   activation is elementwise), becomes the convolution's epilogue: SegFormer's Mix-FFN runs its depthwise
//   convolution on the tokens viewed as an image and applies GELU to the tokens. The convolution must have no
//   activation yet.
// Each was a pass over the activations. Only the main graph.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunReshapeEpilogue(Model& model, PassContext& ctx);

}  // namespace kiln
