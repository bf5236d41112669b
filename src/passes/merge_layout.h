// Merging consecutive layout ops (A feeding B, A's output a plain tensor):
//   Transpose∘Transpose → one Transpose with the composed permutation, or
//     nothing when it is the identity;
//   Unsqueeze∘Squeeze / Squeeze∘Unsqueeze on the same axes → nothing;
//   Unsqueeze∘Unsqueeze → one Unsqueeze; Squeeze∘Squeeze → one Squeeze;
//   Reshape∘(Reshape|Flatten|Squeeze|Unsqueeze) → one Reshape (a 0 in the
//     target that copied a dim of A's output is resolved or kept only where
//     A's input has the same dim);
//   (Flatten|Squeeze|Unsqueeze)∘(Reshape|Flatten) → one Reshape when the
//     output shape is expressible with known dims, 0 and one -1;
//   any of these chains that gives back A's input's shape → nothing.
// B then reads A's input; A goes when nothing else uses it (dead-code
// elimination).
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunMergeLayout(Model& model, PassContext& ctx);

}  // namespace kiln
