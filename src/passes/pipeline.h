// The simplifier's pass pipeline (onnx-simplifier's job): the passes in the
// order they run, and RunSimplify, which runs them to a fixpoint. Used by
// `kiln simplify` and by the GPU builder before its precision pass; it has no
// CLI dependencies.
#pragma once

#include <vector>

#include "passes/pass.h"

namespace kiln {

// In order. Names are what `--skip NAME` takes.
const std::vector<Pass>& SimplifyPipeline();

// Runs SimplifyPipeline until no pass changes the model (at most
// kMaxSimplifyRounds rounds), skipping the passes named in ctx.skip (an
// unknown name is an error). Sets ctx.changed when anything changed; adds
// the passes' warnings to ctx.warnings. Every pass must leave the model
// verifier-clean: a pass that does not is reported as an internal error
// naming it.
Status RunSimplify(Model& model, PassContext& ctx);

constexpr int kMaxSimplifyRounds = 16;

}  // namespace kiln
