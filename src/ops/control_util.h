// Helpers shared by the control-flow, sequence and optional ops: the common
// type of values that may differ (If branches, loop-carried values, sequence
// elements) and slicing / stacking / concatenating tensors along an axis.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"
#include "kiln/status.h"
#include "ops/op_context.h"

namespace kiln {
namespace ctrl {

// The shape both a and b fit: equal dims stay, differing dims become unknown,
// differing ranks give an unknown rank.
Shape CommonShape(const Shape& a, const Shape& b);
// The type both a and b fit. An unknown type on either side gives the other
// side's kind with unknown element type and shape. Kinds or element types
// that clash are an error (`what` names the values in the message).
Expected<TypeInfo> CommonType(const TypeInfo& a, const TypeInfo& b, const std::string& what);

// Type of an RtValue (for empty sequences the element type is unknown).
TypeInfo TypeOfValue(const RtValue& v);

// Elements [start, start+len) of t along axis (same rank).
Tensor SliceAxis(const Tensor& t, int axis, int64_t start, int64_t len);
// Element `index` of t along axis, with that axis removed.
Tensor TakeAxis(const Tensor& t, int axis, int64_t index);
// Concatenation of tensors along axis. All must share dtype and every dim but
// `axis`; the error message says which differs.
Expected<Tensor> ConcatAxis(const std::vector<Tensor>& parts, int axis);
// Stacks equally-shaped tensors along a new axis (0 <= axis <= rank).
Expected<Tensor> StackAxis(const std::vector<Tensor>& parts, int axis);

// Reads a scalar (or 1-element) bool/numeric tensor as a bool.
bool TensorTruth(const Tensor& t);

}  // namespace ctrl
}  // namespace kiln
