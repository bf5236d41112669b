// Dead-code elimination: removes nodes none of whose outputs is used or is a
// graph output (in every graph, subgraphs included), then values nothing
// uses, unused initializers among them. Graph inputs always stay.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunDeadCodeElimination(Model& model, PassContext& ctx);

}  // namespace kiln
