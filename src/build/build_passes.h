// The graph work the builder does before choosing kernels: the simplifier's
// pass pipeline, GPU fusion (passes/fuse_gpu.h) and, for --fp16, the precision
// pass.
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"
#include "passes/pass.h"
#include "kiln/engine.h"

namespace kiln {

// Whether the build runs convolutions channels-last (layout_nhwc): --layout
// nhwc, or auto with --fp16.
bool UsesNhwc(const BuildOptions& options);

// The FP16 precision pass of an --fp16 build (FP32 islands as options say;
// measured ranges from calib_inputs); `precision` (optional) receives one line
// per node that stays FP32 and why (INT8 layers are reported by int8.h).
Status ConvertToFp16WithReport(Model& model, const BuildOptions& options, PassContext& ctx,
                               std::vector<std::string>* precision);

// `precision` (optional) receives the fp16 precision report: one line per node
// that stayed FP32, with the reason.
Status RunBuildPasses(Model& model, const BuildOptions& options, std::vector<std::string>* notes,
                      std::vector<std::string>* precision = nullptr);

}  // namespace kiln
