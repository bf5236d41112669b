// Build pass (run by RunBuildPasses before and after the attention passes):
// a Shape node reading a Transpose reads the Transpose's input instead, its
// dims gathered in the permutation's order (host shape arithmetic; Shape's
// start/end pick the permuted entries), and a Transpose left without readers
// goes. Exporters read the dims of transposed Q/K/V (GPT-2's
// `query.size(-2)`, Llama's rotary key): such a read gave the Transpose a
// second use, so the attention fusion, which removes the Transposes of its
// chain, left the whole attention unfused. Only the main graph.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunTransposeShapes(Model& model, PassContext& ctx);

}  // namespace kiln
