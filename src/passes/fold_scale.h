// Simplifier pass: a per-channel constant scale after a product folds into the product's weights. A layer
// scale (ConvNeXt's `gamma * mlp(x)`, DeiT-III's, CaiT's, PoolFormer's), y = Mul(g, P) with g constant and
// varying along one axis only, where P's values along that axis are the output channels of
//   MatMul(x, W) [→ Add(b)]       (W constant [K, C]: the last axis), or
//   Conv(x, W[, b]) [→ Add(b)]     (W constant [C, ...]: axis 1),
// optionally through one Transpose (torchvision's ConvNeXt scales after permuting back to NCHW), becomes the
// product with W·g and b·g (new initializers: W may be shared). The Mul was one pass over the activations,
// and it stood between the product and its residual Add, which fuse_gpu then takes into the product's
// epilogue. Scalars stay (an attention's query scale is the attention passes' to find); so do scales whose
// bias is a scalar or broadcasts along another axis.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunFoldScale(Model& model, PassContext& ctx);

}  // namespace kiln
