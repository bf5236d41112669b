// Bias folding, when the op's output has no other user:
//   Conv(x, W[, b]) → Add(c) with c constant and per-output-channel
//     ([M,1,..,1], [1,M,1,..,1], or one element) ⇒ Conv(x, W, b + c);
//   MatMul(A, B) → Add(c) with A and B 2-D and c of shape [N], [1,N] or one
//     element ⇒ Gemm(A, B, c).
// The Add's output keeps its name.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunFuseBias(Model& model, PassContext& ctx);

}  // namespace kiln
