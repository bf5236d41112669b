// No-op removal: nodes that provably return their input unchanged go, their
// users reading the input (graph output names kept, see BypassNode):
//   Cast/CastLike to the input's type; Reshape, Expand, Flatten, Squeeze,
//   Unsqueeze, Tile, Slice (unit steps) whose output shape provably equals the
//   input's; Transpose with the identity permutation; Pad with constant zero
//   pads; Concat of one input; Split into one output; x+0, 0+x, x-0, x*1, 1*x,
//   x/1 with a constant 0/1 that does not broadcast x to a larger shape.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunEliminateNop(Model& model, PassContext& ctx);

}  // namespace kiln
