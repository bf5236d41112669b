// Identity and inference-mode Dropout removal: users read the input directly.
// When the removed node's output is a graph output, the input's producer
// produces it instead, so graph output names never change. Dropout goes only
// when it is an identity: training_mode absent or constant false (opset 12+),
// and its mask output unused.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunEliminateIdentity(Model& model, PassContext& ctx);

}  // namespace kiln
