// Build-time fusion for the CUDA engine (run by RunBuildPasses after the
// simplifier, before the precision pass). Rewrites, into kiln's internal ops
// (src/ops/defs/kiln.def):
//   Conv → Relu                        ⇒ FusedConv(X, W, B, activation=Relu)
//   Conv → Add(·, Z) [→ Relu]          ⇒ FusedConv(X, W, B, Z [, activation=Relu])
//   MatMul(A, B const) → Add(bias) [→ Relu] ⇒ FusedMatMul(A, B, bias [, activation=Relu])
//     (A of rank >= 2; B of rank >= 2 whose batch dims are all 1: weights)
// Conditions: every intermediate value has exactly one use and is not a graph
// output; Z has exactly the conv output's shape (known or identical symbolic
// dims, no broadcasting) and type; the bias is a constant holding one value
// per column of B (shape [N], or [1,..,1,N] no longer than the product's rank).
// When both inputs of a residual Add are fusable conv outputs, the later conv
// takes the Add (the other becomes Z). The fused node takes the place of the
// chain's last node and produces its output value, so graph output names and
// the topological order are kept. Only the main graph is rewritten (the GPU
// engine runs no subgraphs). Adds opset "kiln" = 1 to the model when it fuses.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunFuseForGpu(Model& model, PassContext& ctx);

}  // namespace kiln
