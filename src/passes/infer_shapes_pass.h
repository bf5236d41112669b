// The simplifier's shape inference step: InferShapes over the whole model,
// tolerating ops kiln cannot infer (their outputs stay unknown), so the later
// passes see fresh types, small constant results (Value::data) and symbolic
// shape contents (Value::sym_data). Graph inputs with a default initializer
// are treated as run-time values, never as constants. Types declared in the
// model for node outputs (value_info, graph outputs) are dropped first: the
// passes prove rewrites from what inference derives from the graph inputs
// and constants, never from declarations that may be stale (RunSimplify puts
// the declared graph output types back where inference knows less).
#pragma once

#include "passes/pass.h"

namespace kiln {

// Never sets ctx.changed: it annotates, it does not rewrite.
Status RunShapeInference(Model& model, PassContext& ctx);

}  // namespace kiln
