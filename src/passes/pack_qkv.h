// Build pass (run by RunBuildPasses after the attention passes, before the FP8
// rewrite and fuse_gpu): the projections that make two or more of one
// kiln.Attention's Q, K and V from the same input become one product, and the
// op reads each as a range of heads of it (its "head_ranges" attribute,
// ops/attention_layout.h):
//
//   Q = Reshape(MatMul(x, Wq) [+ bq], [.., Hq, D])      P = MatMul(x, [Wq Wk Wv]) [+ [bq bk bv]]
//   K = Reshape(MatMul(x, Wk) [+ bk], [.., Hk, D])  ⇒   R = Reshape(P, [.., Hq+Hk+Hv, D])
//   V = Reshape(MatMul(x, Wv) [+ bv], [.., Hv, D])      Attention(R, R, R, head_ranges =
//   Attention(Q, K, V)                                    [0, Hq, Hq, Hk, Hq+Hk, Hv])
//
// BERT, RoBERTa, ViT (after split_projection), CLIP, Whisper and T5 write Q, K
// and V so; grouped-query heads (Hk = Hv < Hq) and cross-attention (K and V
// from one input, Q from another) pack the same way. One product of N =
// Nq+Nk+Nv fills the GPU better than three (and, at batch 1, launches one
// kernel instead of three); the FP8 rewrite after it gives the packed weight
// one scale. Each output element is the same dot product (plus the same bias)
// as before, so results are bit for bit the same on the CPU reference.
//
// GPT-2's form, one product split by a Split whose outputs are Q, K and V
// (through their head Reshapes), needs no new product: the op reads the
// Split's input reshaped to [.., heads, D] as head ranges and the Split's copy
// goes.
//
// Needs, per packed input: a MatMul with a constant 2-D weight [K, N] or a Gemm
// (transA 0; equal alpha, beta, transB) with a constant weight and an optional
// constant bias of N elements,
// the MatMul optionally followed by an Add of a constant of N elements, then a
// Reshape that splits the last axis into [heads, D] (D equal across the pack;
// its shape a constant, or the product's leading dims provably kept); each
// value read only by the next step; the op's layout for it "bshd" or "sbhd"
// (heads next to D). Only the main graph.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunPackQkv(Model& model, PassContext& ctx);

}  // namespace kiln
