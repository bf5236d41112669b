// Common-subexpression elimination, per graph:
//   - identical constants (initializers that are not graph inputs, same type,
//     dims and bytes) become one;
//   - nodes with the same op, domain, inputs and attributes (tensor attributes
//     compared by value) compute the same thing: later ones go and their users
//     read the first one's outputs.
// Random ops and nodes with subgraph attributes are never merged, nor nodes
// whose outputs are graph outputs.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunCse(Model& model, PassContext& ctx);

}  // namespace kiln
