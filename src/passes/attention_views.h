// Build pass (run by RunBuildPasses after the other attention passes):
// kiln.Attention reads Q, K, V and writes Y through strides, each in its own
// layout ("bhsd", "bshd", "sbhd"; the "layouts" attribute,
// ops/attention_layout.h). So a Transpose that only turns one of them from
// one layout into another is a copy the op does not need:
//
//   V = Transpose(V0, [0, 2, 1, 3])     V0 [B, S, H, D] ("bshd") → "bhsd"
//   O = Transpose(Y, [0, 2, 1, 3])      Y "bhsd" → O [B, S, H, D]
//
// The op reads V0 as "bshd" and writes O as "bshd" instead (Llama's V head
// split and its output merge; GPT-2's and T5's alike). A Transpose is taken
// when its only reader is the op (an input), or it is Y's only reader (the
// output), it is in the main graph and not a graph output's producer of a
// value the op also needs, and its permutation maps one layout onto the
// other for the tensor's rank.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunAttentionViews(Model& model, PassContext& ctx);

}  // namespace kiln
