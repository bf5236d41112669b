// Build pass, before fuse_pointwise: a LayerNormalization over the last axis
// that has a neighbour the generated kernels can fuse (the residual Add before
// it, a Cast or an activation after it) becomes its primitive ops, computed in
// float32 (Casts at 16-bit edges):
//   mean = ReduceMean(x); d = x - mean; var = ReduceMean(d * d);
//   y = d / Sqrt(var + epsilon) * scale + bias
// so fuse_pointwise makes one row kernel of the norm and its neighbours (a
// residual Add + LayerNorm in one pass over memory; statistics in FP32, as
// the op's stash_type asks). A LayerNormalization with no fusable neighbour
// keeps its own kernel, as do ones whose Mean/InvStdDev outputs are used.
#pragma once

#include "ir/graph.h"
#include "passes/pass.h"

namespace kiln {

Status RunLowerLayerNorm(Model& model, PassContext& ctx);

}  // namespace kiln
