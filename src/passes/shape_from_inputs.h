// Build pass (run by RunBuildPasses before the attention passes): a Shape node
// whose input's dims (the entries its start/end pick) are each a constant or a
// dim of a graph input named by the same symbol reads the graph inputs'
// shapes instead: Gather(Concat(Shape(input)..., constants), indices), host
// shape arithmetic. Exporters read the dims of intermediate tensors (GPT-2's
// `query.size(-2)` on the transposed query, `x.size()[:-1]` before a view);
// such a read is a second use of the tensor, which keeps fusions that rewrite
// its producer (attention, Q/K/V packing) from applying. Dims that are
// expressions ("batch*seq") or unknown leave the Shape as it is. Only the main
// graph; a Shape of a graph input is left alone.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunShapeFromInputs(Model& model, PassContext& ctx);

}  // namespace kiln
