// Build pass (run by RunBuildPasses after attention_heads): torch's
// nn.MultiheadAttention with batch_first=True (torchvision's ViT, DETR-style
// and most hand-written encoders) turns its input sequence-first, projects it
// there, and turns the result back:
//
//   T   = Transpose(x, [1, 0, 2])                    x: [B, S, E]
//   P_i = rows_i(T)                                  [S, B, E_i], i = q, k, v
//   Y   = kiln.Attention(Reshape(P_q), Reshape(P_k), Reshape(P_v))
//         "bshd" on [S, B·H, D] (TorchScript) or "sbhd" on [S, B, H, D] (torch 2)
//   Z   = rows_o(Reshape(Y, [S·B, E] | [S, B, E]))   out_proj
//   F   = Transpose(Reshape(Z, [S, B, E]), [1, 0, 2]) (no Reshape when Z is 3-D)
//
// rows_* are chains of row-wise nodes: MatMul by a constant 2-D weight, Gemm
// (2-D, constant B and C, no transA), and Add/Sub/Mul/Div by a constant of at
// most one dim (a bias or a scale over the last axis). Each row of their
// output depends only on the same row of their input, so the order of the
// rows does not matter, and the same computes batch-first:
//
//   P_i' = rows_i(x) [B, S, E_i];  Y' = kiln.Attention "bshd" on the
//   [B, S, H, D] views of P_i';  F = Reshape(rows_o(Reshape(Y', ..)), [B, S, E])
//
// Both Transposes (each a full copy of the activations) go. Conditions: T's
// only readers are the three chains; every other intermediate has one use and
// is not a graph output; head sizes and E_i are known; the attention has no
// bias or one of rank <= 2 (it does not depend on batch or heads); when Z is
// 2-D, S is known (the new Reshape is [-1, S, E]). Only the main graph.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunBatchFirstAttention(Model& model, PassContext& ctx);

}  // namespace kiln
