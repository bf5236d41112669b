// Folding an inference-mode BatchNormalization into the op before it, when
// that op's output has no other user and every parameter is constant:
//   Conv(x, W, b) → BN          ⇒ Conv(x, W·s, (b − mean)·s + beta)
//   Gemm(A, B, C) → BN (2-D)     ⇒ Gemm(A, B·s, (beta_g·C − mean)·s + beta)
//   MatMul(x, W) [→ Add(c)] → BN, x and W 2-D ⇒ Gemm(x, W·s, (c − mean)·s + beta)
// with s = scale / sqrt(var + epsilon) per output channel, computed in double
// and rounded once to the weights' type. The BN's output keeps its name.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunFuseBatchNorm(Model& model, PassContext& ctx);

}  // namespace kiln
