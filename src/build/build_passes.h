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

// `precision` (optional) receives the fp16 precision report: one line per node
// that stayed FP32, with the reason.
Status RunBuildPasses(Model& model, const BuildOptions& options, std::vector<std::string>* notes,
                      std::vector<std::string>* precision = nullptr);

}  // namespace kiln
