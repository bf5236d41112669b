// Constant folding: a node whose inputs are all constants runs once on the
// CPU reference and its outputs become initializers (Constant nodes become
// initializers directly). Never folds random ops, nodes with subgraphs or
// non-tensor results, nor outputs larger than PassContext::max_fold_bytes
// (those stay, with a warning naming the node).
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunConstantFold(Model& model, PassContext& ctx);

}  // namespace kiln
