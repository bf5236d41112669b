// Build-time attention fusion for the CUDA engine (run by RunBuildPasses after
// the simplifier, before fuse_gpu and the precision pass). Rewrites the
// exporters' scaled dot-product attention into kiln.Attention
// (src/ops/kiln_attention.cc, geometry in src/ops/attention_layout.h):
//
//   s = MatMul([Mul|Div](Q, c1), [Mul|Div](Transpose(K), c2))
//   p = Softmax([Add]([Where](cond, [Mul|Div](s, c3), m), bias), axis = last)
//   Y = MatMul(p, V)                ⇒ Y = kiln.Attention(Q, K, V [, bias], scale = c1·c2·c3)
//
// The Where is a mask (GPT-2's causal mask: torch.where(causal, w, finfo.min)):
// m is a one-element constant so negative that s + m == m (-inf, or <= -1e30
// in float32; <= -6e4 in 16-bit types); it becomes part of the bias,
// Where(cond, 0, m) [+ bias], computed by new nodes before the fused one.
// A NaN guard after the Softmax, MatMul(Where(IsNaN(p), 0, p), V) (torch's
// SDPA decomposition in dynamo exports: fully masked rows give zeros), is
// kept as Where(IsNaN(Y), 0, Y) after the fused node, which equals it when V
// is finite.
//
// Every bracketed op is optional; c1..c3 are one-element constants of the
// tensor's type (Div contributes 1/c). Transpose(K) must swap K's last two
// axes (K in "bhsd") — or, for the "bshd" layout, turn [B, S, H, D] (3-D:
// [S, H, D]) into [B, H, D, S] while Q and V are Transposes of [B, S, H, D]
// tensors to [B, H, S, D]: those Transposes are absorbed, and so is a
// Transpose of Y back to [B, S, H, D] (otherwise one is added after the fused
// node). For "sbhd" (torch 2's nn.MultiheadAttention), Q, K and V are each
// Reshape([N, S, D] → [B, H, S, D]) of Transpose([S, N, D], [1, 0, 2]): both
// are absorbed, the [S, N, D] source is regrouped to [S, B, H, D] by a
// Reshape (no data moves), and a Transpose of Y to [S, B, H, D] is absorbed;
// Kᵀ may also be the dynamo exporter's Reshape(Transpose([S, N, D], [1, 2, 0]),
// [B, H, D, S]). Q, K, V are 3-D or 4-D of one float type with static head sizes of at
// most kMaxAttentionHeadDim (the CUDA kernels' limit); their batch and head
// dims must be provably equal (no broadcasting); the bias must broadcast to
// the scores without growing them. Every intermediate has one use and is not
// a graph output. The fused node takes the chain's last node's place and its
// output value. Only the main graph is rewritten. Adds opset "kiln" = 1.
#pragma once

#include <cstdint>

#include "passes/pass.h"

namespace kiln {

constexpr int64_t kMaxAttentionHeadDim = 256;

Status RunFuseAttention(Model& model, PassContext& ctx);

}  // namespace kiln
