// Build pass (run by RunBuildPasses after gather_transpose, before
// fuse_attention): a matrix product with constant weights whose result is only
// read in column blocks by Slices along its last axis becomes one product per
// block, each with the matching columns of the weights (and of a Gemm's bias):
//
//   Slice(MatMul(A, W), [s], [e], axes = [-1])  ⇒  MatMul(A, W[:, s:e])
//
// torch's nn.MultiheadAttention's packed in_proj (three Slices) then feeds
// attention with no copy of the projection: three copy kernels go, two
// products come. A MatMul whose only reader is the Add of a per-column
// constant (a Linear's bias, as torch exports it for 3-D inputs; the Slices
// then read the Add) splits with its bias: MatMul(A, W[:, s:e]) + b[s:e].
// Each output element is the same dot product (and bias) as before, so
// results are bit for bit the same. A Split reader (GPT-2's c_attn) is left
// alone: one copy kernel against two more products is not a clear gain
// without measuring it. Needs: MatMul with a constant 2-D B, or Gemm
// (transA = 0) with constant B and C; every use of the product is such a
// Slice (constant bounds, step 1), at least two of them; the product is not a
// graph output. Only the main graph.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunSplitProjection(Model& model, PassContext& ctx);

}  // namespace kiln
