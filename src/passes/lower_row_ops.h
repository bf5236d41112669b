// Build pass, before fuse_pointwise: a LayerNormalization or Softmax over the
// last axis that has a neighbour the generated kernels can fuse (the residual
// Add before a norm, the bias Add or scale Mul before a Softmax, a Cast or an
// activation after either) becomes its primitive ops, computed in float32
// (Casts at 16-bit edges):
//   LayerNormalization: mean = ReduceMean(x); d = x - mean;
//                       y = d / Sqrt(ReduceMean(d * d) + epsilon) * scale + bias
//   Softmax:            e = Exp(x - ReduceMax(x)); y = e / ReduceSum(e)
// so fuse_pointwise makes one row kernel of the op and its neighbours (a
// residual Add + LayerNorm, or a relative-position bias + Softmax, in one pass
// over memory; statistics in FP32). An op with no fusable neighbour keeps its
// own kernel, as does a norm whose Mean/InvStdDev outputs are used.
#pragma once

#include "ir/graph.h"
#include "passes/pass.h"

namespace kiln {

Status RunLowerRowOps(Model& model, PassContext& ctx);

}  // namespace kiln
