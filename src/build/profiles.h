// The optimization profiles of a build (BuildOptions::profiles).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/engine.h"

namespace kiln {

// Validates the given profiles (each names a model input, same rank, 0 <= min
// <= opt <= max, fixed dims kept). With `fix_dynamic`, an input with dynamic
// dims and no profile gets one fixed at its dims with 1 for the dynamic ones
// (and a note); without it, such inputs take any shape (the CPU backend).
Status ResolveProfiles(const Graph& g, bool fix_dynamic, std::map<std::string, ShapeRange>* profiles,
                       std::vector<std::string>* notes);

}  // namespace kiln
