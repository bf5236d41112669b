// Constant folding: a node whose inputs are all constants runs once on the
// CPU reference and its outputs become initializers (Constant nodes become
// initializers directly). Never folds random ops, nodes with subgraphs or
// non-tensor results, nor outputs larger than PassContext::max_fold_bytes
// (those stay, with a warning naming the node).
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunConstantFold(Model& model, PassContext& ctx);

// Folds one node of `g` as RunConstantFold does (every input a constant); true when it was folded (the node
// removed, its outputs initializers).
bool FoldConstantNode(Model& model, Graph& g, Node& n, PassContext& ctx);

}  // namespace kiln
