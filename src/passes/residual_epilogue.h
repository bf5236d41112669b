// Build pass (after the layout passes): a residual Add after a matrix product, reached through Reshapes that
// keep the product's dims, goes into the product's epilogue (kiln.FusedMatMul's Z, cuBLASLt's C with beta 1).
// fuse_gpu takes a residual Add that reads the product directly; ConvNeXt's blocks (timm's and torchvision's)
// permute the MLP's output back to NCHW before the residual, and only after layout_nhwc and permute_chains is
// that permutation a Reshape to the same dims. The Add was a pass reading two activations and writing one.
// Plain MatMuls with constant 2-D weights become FusedMatMuls; a FusedMatMul must have no residual and no
// activation yet (the epilogue adds Z before its activation). Only the main graph.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunResidualEpilogue(Model& model, PassContext& ctx);

}  // namespace kiln
