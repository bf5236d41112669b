// Build pass (run by RunBuildPasses after gather_transpose, before
// fuse_attention): a matrix product with constant weights whose result is only
// read in column blocks — Slices along its last axis, or a Split along it —
// becomes one product per block, each with the matching columns of the
// weights (and of a Gemm's bias):
//
//   Slice(MatMul(A, W), [s], [e], axes = [-1])  ⇒  MatMul(A, W[:, s:e])
//   Split(Gemm(A, W, C), axis = -1)             ⇒  Gemm(A, W_i, C_i) per output
//
// The packed QKV projections (GPT-2's c_attn then Split, torch's
// nn.MultiheadAttention's in_proj then three Slices) then feed attention with
// no copy of the projection; each output element is the same dot product as
// before, so results are bit for bit the same. Needs: MatMul with a constant
// 2-D B, or Gemm (transA = 0) with constant B and C; every use of the product
// is such a Slice (constant bounds, step 1) or Split (constant sizes, or equal
// parts); the product is not a graph output. Only the main graph.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunSplitProjection(Model& model, PassContext& ctx);

}  // namespace kiln
