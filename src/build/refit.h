// Refit on the IR (include/kiln/refit.h): the new model through the build
// passes, then its weights matched to the built model's and swapped in.
// Weights are the constants no node produces; values folded from them (shape
// arithmetic, small constant subgraphs) are folded again afterwards.
#pragma once

#include <memory>
#include <string>

#include "ir/graph.h"
#include "kiln/engine.h"

namespace kiln {

// `onnx_path` loaded, shapes inferred and the build passes of `options` run:
// what the builder had before choosing kernels.
Expected<std::unique_ptr<Model>> LoadForRefit(const std::string& onnx_path, const BuildOptions& options);
// Replaces every weight of `built` (subgraphs too) by the same weight of
// `fresh` after checking that the two graphs have the same inputs, outputs,
// nodes, attributes and weights (names, dtypes, dims); then re-infers shapes
// so folded values follow. On a mismatch nothing changes and the error names
// the first difference; `fresh_label` names the new model in it.
Status RefitModel(Model& built, const Model& fresh, const std::string& fresh_label);

}  // namespace kiln
