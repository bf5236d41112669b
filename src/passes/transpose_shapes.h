// Build pass (run by RunBuildPasses after the attention passes): a Transpose
// whose only readers are Shape nodes moves no data anyone needs. Exporters
// read the dims of transposed Q/K/V (GPT-2's key, Llama's rotary key), and
// once the attention passes have made the op read the untransposed tensor,
// those Shape reads are all that keep the copy alive. Each such Shape reads
// the Transpose's input instead, its dims gathered in the permutation's order
// (host shape arithmetic), and the Transpose goes. Only the main graph.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunTransposeShapes(Model& model, PassContext& ctx);

}  // namespace kiln
