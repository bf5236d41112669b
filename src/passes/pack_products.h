// Build pass (run by RunBuildPasses before fuse_pointwise, with pointwise
// fusion on): matrix products of one input by constant weights whose outputs
// only generated elementwise kernels read, and which one such kernel joins,
//   gate = MatMul(x, Wg), up = MatMul(x, Wu), y = SiLU(gate) · up,
// become one product MatMul(x, [Wg | Wu]) read through constant column Slices,
// which fuse_pointwise's kernel reads in place (absorbed views): one launch
// and one wider GEMM instead of two. Gated MLPs write this (Llama, Mistral,
// Qwen, Gemma, T5 v1.1's gated GELU). Second form: products each viewed as
// heads, Reshape(·, [0, .., 0, H_i, D]), each view read by one generated
// kernel (Llama's Q and K, rotated by their RoPE kernels) become one product
// viewed as [.., ΣH_i, D], each kernel reading its heads through a Slice it
// absorbs; a view that a kiln.Attention alone reads (Llama's V) joins as a
// head range of the packed view (attribute head_ranges). Plain MatMuls only (fuse_gpu leaves these: no bias,
// residual or activation to take), 2-D weights of one type.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunPackProducts(Model& model, PassContext& ctx);

}  // namespace kiln
