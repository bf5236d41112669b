// Views a generated pointwise kernel reads its inputs through: Transposes,
// Slices and Expands the fusion pass (src/passes/fuse_pointwise.h) absorbed into a
// kiln.Pointwise node instead of running them. Each stays in the node's body,
// right after the body input it reads (so the CPU reference still runs it);
// the kernel indexes the input through the view instead (strides and a base
// offset the runtime computes, ops/pointwise_abi.h PointwiseStrides). The pass
// and the generators decide what is a view with the same function.
#pragma once

#include <cstdint>

#include "ir/graph.h"
#include "ops/pointwise_abi.h"

namespace kiln::codegen {

// Node n as a view of its input (of known rank): a Transpose (its perm, or the
// axes reversed), a Slice whose bounds are constants (attributes before
// opset 10; constant inputs, axes and steps optional, from 10) over distinct
// axes with valid steps, or an Expand to a constant shape. False for anything
// else.
bool ViewOpOf(const Node& n, int64_t opset, PwViewOp* op);

// The views body input `in` is read through: the chain of view nodes from it,
// each the only use of the value before it, and the value the rest of the
// body reads (`in` itself when there are none).
struct BodyView {
  PwView view;
  const Value* value = nullptr;
};
BodyView AbsorbedView(const Value& in, int64_t opset);

}  // namespace kiln::codegen
