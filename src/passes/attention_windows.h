// Build pass (run by RunBuildPasses before fuse_attention): attention written
// at rank 5, [B, G, H, S, D] with G a group of windows (MaxViT's block and
// grid attention, window-attention code that keeps the window axis apart):
//
//   P = Softmax([bias +] [c ·] MatMul(Q, Kᵀ)),  Y = MatMul(P, V)
//
// with Q, Kᵀ and V each a source value seen through Transposes that keep
// axes 0 and 1 in place and scalar-constant Mul/Div. The window axis is folded
// into the batch: each source is read as [B·G, ·, ·, ·] (a Reshape, no data
// moves), the Transposes become one rank-4 Transpose, the scalars one Mul,
// and the chain runs at rank 4, where fuse_attention makes it one
// kiln.Attention and attention_views absorbs the head Transposes. Y goes back
// to rank 5 by a Reshape (after its own axes-0/1-keeping Transpose, if it has
// one, which then also becomes rank 4). Conditions: Q, Kᵀ, V share B and G
// (no broadcasting); each source's axes 2..4 and Y's axes 1..4 are known; a
// bias has 1s in its B and G positions; every intermediate has one use.
// Only the main graph.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunAttentionWindows(Model& model, PassContext& ctx);

}  // namespace kiln
