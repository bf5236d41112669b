// Build pass (run by RunBuildPasses after the attention passes, before
// pack_qkv): a constant scalar Mul (or Div) on kiln.Attention's Q or K input,
// seen through the views between them (Reshape, Transpose, Squeeze,
// Unsqueeze: scaling commutes with them), goes into the op's `scale`:
// softmax(s · (c·Q)·Kᵀ) = softmax((s·c) · Q·Kᵀ). transformers' BART family
// (BART, mBART, Marian, Pegasus, M2M100, Whisper) scale the query projection
// before splitting heads, `q_proj(x) * scaling`; OpenAI's Whisper scales Q and
// K by d^-0.25 each. That Mul was an elementwise kernel over Q, and it kept Q's
// projection out of the packed Q/K/V product. Single uses along the way.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunAttentionScale(Model& model, PassContext& ctx);

}  // namespace kiln
