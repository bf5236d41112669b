// x.expand_as(y) read by an elementwise op that also reads y: the op
// broadcasts anyway, so it reads x. Op(Cast*(Expand(x, Shape(y))), y) →
// Op(Cast*(x), y): broadcast(Expand(x, Shape(y)), y) is broadcast(x, y), so the
// op's output is unchanged, and the Expand (a full-size copy) and the Shape go.
// DistilBERT's mask is `(mask == 0).view(b, 1, 1, k).expand_as(scores)` before
// masked_fill: without its Expand, attention fusion sees a [b, 1, 1, k] mask
// and scores used by the Softmax path alone. Only broadcasting elementwise ops
// (Add, Where, Equal, ...), single-use links, and Casts in between.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunDropExpandAs(Model& model, PassContext& ctx);

}  // namespace kiln
