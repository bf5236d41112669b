// Deep copy of a Model's IR (tensor data shares copy-on-write storage, so a
// clone is cheap). The runtime clones the engine's graph per Context to infer
// concrete shapes without touching the shared Engine.
#pragma once

#include <memory>

#include "ir/graph.h"

namespace kiln {

std::unique_ptr<Model> CloneModel(const Model& model);

}  // namespace kiln
