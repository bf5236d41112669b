// Deep copy of a Model's IR (tensor data shares copy-on-write storage, so a
// clone is cheap). The runtime clones the engine's graph per Context to infer
// concrete shapes without touching the shared Engine.
#pragma once

#include <memory>
#include <unordered_map>

#include "ir/graph.h"

namespace kiln {

std::unique_ptr<Model> CloneModel(const Model& model);

// A copy of `a` for a node of `owner`: subgraphs are deep-copied with `owner`
// as their parent. Values they read from enclosing scopes are taken from
// `map` (filled with the copies made so far) and kept as they are when absent.
Attribute CloneAttribute(const Attribute& a, Graph& owner, std::unordered_map<const Value*, Value*>& map);

}  // namespace kiln
