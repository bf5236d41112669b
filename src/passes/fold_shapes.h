// Shape-subgraph folding. Shape inference computes the contents of shape
// arithmetic (Shape → Gather → Unsqueeze → Concat ...) where dims are known
// (Value::data) and keeps them symbolic where they are not
// (Value::sym_data, e.g. {batch, 3}). This pass
//   - turns every node whose outputs inference fully computed into
//     initializers (e.g. Shape of a tensor of known shape), and
//   - gives a Reshape whose target is only symbolically known a constant
//     target using 0 (copy the input dim) and -1 (infer one dim), when the
//     output dims are provably expressible that way, so
//     Reshape(x, Concat(Shape(x)[0], 12, 64)) becomes Reshape(x, [0, 12, 64])
//     and dead-code elimination drops the shape chain.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunFoldShapes(Model& model, PassContext& ctx);

namespace passes {
// The constant Reshape target (with 0 = copy input dim i, -1 = infer) that
// turns a tensor of shape `in` into one of shape `out`, when every output dim
// is provably right; nullopt otherwise. `allow_zero_copy` is false when the
// Reshape has allowzero=1 (0 then means an empty dim). A -1 next to a copied
// dim would fail on an empty input (0/0), so it needs `infer_at` to name its
// position: where the original target provably held -1 too (or -2: never).
std::optional<std::vector<int64_t>> ReshapeTarget(const Shape& in, const Shape& out, bool allow_zero_copy,
                                                  int infer_at = -2);
}  // namespace passes

}  // namespace kiln
