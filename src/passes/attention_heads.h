// Build pass (run by RunBuildPasses right after fuse_attention): BART-style
// attention (HF BART, Whisper, CLIP, Marian, Pegasus) splits heads with
// copies on both sides of a 3-D attention:
//
//   X = Reshape(P, [B, S, H, D])                     P: a projection [B, S, E]
//   Q = Reshape(Transpose(X, [0, 2, 1, 3]), [B·H, S, D])        (and K, V)
//   Y = kiln.Attention(Q, K, V)                      layout "bhsd", 3-D
//   O = Reshape(Transpose(Reshape(Y, [B, H, S, D]), [0, 2, 1, 3]), [B, S, E])
//
// The attention reads the [B, S, H, D] views instead (layout "bshd", 4-D) and
// writes O's [B, S, H, D] view directly: the four Transposes (full copies of
// Q, K, V and Y) and their Reshapes go. A query scaled before its Reshape,
// Reshape(Mul(P, c), ..) with a one-element constant c (HF's
// q_proj(x) * scaling), folds c into the attention's scale. The bias, if
// any, must not depend on B·H (rank ≤ 2, or 3-D with a leading 1). Every
// intermediate has one use. Only the main graph.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunAttentionHeads(Model& model, PassContext& ctx);

}  // namespace kiln
