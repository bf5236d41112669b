// The graph work the builder does before choosing kernels: the simplifier's
// pass pipeline, GPU fusion (passes/fuse_gpu.h) and, for --fp16, the precision
// pass.
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/engine.h"

namespace kiln {

// Whether the build runs convolutions channels-last (layout_nhwc): --layout
// nhwc, or auto with --fp16.
bool UsesNhwc(const BuildOptions& options);

Status RunBuildPasses(Model& model, const BuildOptions& options, std::vector<std::string>* notes);

}  // namespace kiln
