// Helpers of the reduce op family: axes from attribute or input, output shapes
// of reductions, and the outer × axis × inner view of a tensor around one axis.
#pragma once

#include <optional>
#include <vector>

#include "ops/op_util.h"

namespace kiln {
namespace reduce {

// A tensor seen as [outer, n, inner] around one axis: element (o, k, i) is at
// (o * n + k) * inner + i.
struct AxisView {
  int64_t outer = 1;
  int64_t n = 1;
  int64_t inner = 1;
  int64_t at(int64_t o, int64_t k, int64_t i) const { return (o * n + k) * inner + i; }
};
AxisView ViewAround(const std::vector<int64_t>& dims, int64_t axis);
// Softmax / LogSoftmax / Hardmax's view: around `axis` from opset 13, before
// it the input coerced to 2-D at `axis` (inner = 1).
Status SoftmaxView(const NodeContext& ctx, const std::vector<int64_t>& dims, AxisView* view);

// Where a reduction's axes come from: attribute "axes" up to (not including)
// opset `input_since`, input 1 from then on.
struct AxesSpec {
  bool known = false;         // false: axes come from a non-constant input
  std::vector<int64_t> axes;  // as given (may be negative); empty = none given
  bool noop = false;          // noop_with_empty_axes and no axes: reduce nothing
};
// Axes at inference time (input data when constant).
AxesSpec InferAxes(const InferContext& ctx, int64_t input_since);
// Axes at run time; errors on a bad axes tensor.
Status RunAxes(const RunContext& ctx, int64_t input_since, AxesSpec* spec);

// Normalised, de-duplicated axes as a mask over `rank` dims. Empty `axes`
// means all axes. Errors name the node.
Status AxesMask(const NodeContext& ctx, const std::vector<int64_t>& axes, int64_t rank,
                std::vector<bool>* mask);

// Output shape of reducing `in` over `mask`.
Shape ReducedShape(const Shape& in, const std::vector<bool>& mask, bool keepdims);
std::vector<int64_t> ReducedDims(const std::vector<int64_t>& in, const std::vector<bool>& mask,
                                 bool keepdims);

}  // namespace reduce
}  // namespace kiln
