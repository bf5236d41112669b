// Shared helpers of the reduce op family (see reduce_util.h).
#include "ops/reduce_util.h"

#include <string>

namespace kiln {
namespace reduce {

AxisView ViewAround(const std::vector<int64_t>& dims, int64_t axis) {
  AxisView v;
  for (int64_t d = 0; d < static_cast<int64_t>(dims.size()); ++d) {
    int64_t x = dims[static_cast<size_t>(d)];
    if (d < axis)
      v.outer *= x;
    else if (d == axis)
      v.n = x;
    else
      v.inner *= x;
  }
  return v;
}

Status SoftmaxView(const NodeContext& ctx, const std::vector<int64_t>& dims, reduce::AxisView* view) {
  const int64_t rank = static_cast<int64_t>(dims.size());
  const bool legacy = ctx.opset() < 13;
  int64_t axis = 0;
  if (rank == 0) {
    *view = reduce::AxisView{};
    return Status::Ok();
  }
  KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", legacy ? 1 : -1), rank, &axis));
  if (!legacy) {
    *view = reduce::ViewAround(dims, axis);
    return Status::Ok();
  }
  reduce::AxisView v;
  v.outer = 1;
  v.n = 1;
  for (int64_t d = 0; d < rank; ++d) (d < axis ? v.outer : v.n) *= dims[static_cast<size_t>(d)];
  *view = v;
  return Status::Ok();
}

AxesSpec InferAxes(const InferContext& ctx, int64_t input_since) {
  AxesSpec spec;
  spec.known = true;
  if (ctx.opset() < input_since) {
    spec.axes = ctx.attr_ints("axes");
  } else if (ctx.num_inputs() > 1 && ctx.has_input(1)) {
    const Tensor* t = ctx.input_data(1);
    if (!t) {
      spec.known = false;
      return spec;
    }
    spec.axes = t->ToInt64s();
  }
  spec.noop = spec.axes.empty() && ctx.opset() >= input_since && ctx.attr_int("noop_with_empty_axes", 0) != 0;
  return spec;
}

Status RunAxes(const RunContext& ctx, int64_t input_since, AxesSpec* spec) {
  spec->known = true;
  spec->axes.clear();
  if (ctx.opset() < input_since) {
    spec->axes = ctx.attr_ints("axes");
  } else if (ctx.num_inputs() > 1 && ctx.has_input(1)) {
    const Tensor& t = ctx.input(1);
    if (t.dtype() != DataType::kInt64 && t.dtype() != DataType::kInt32)
      return ctx.Error("axes must be int64");
    if (t.rank() > 1) return ctx.Error("axes must be 1-D");
    spec->axes = t.ToInt64s();
  }
  spec->noop =
      spec->axes.empty() && ctx.opset() >= input_since && ctx.attr_int("noop_with_empty_axes", 0) != 0;
  return Status::Ok();
}

Status AxesMask(const NodeContext& ctx, const std::vector<int64_t>& axes, int64_t rank,
                std::vector<bool>* mask) {
  mask->assign(static_cast<size_t>(rank), axes.empty());
  for (int64_t a : axes) {
    int64_t n = 0;
    KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, a, rank, &n));
    (*mask)[static_cast<size_t>(n)] = true;
  }
  return Status::Ok();
}

Shape ReducedShape(const Shape& in, const std::vector<bool>& mask, bool keepdims) {
  std::vector<Dim> dims;
  for (size_t d = 0; d < mask.size(); ++d) {
    if (!mask[d])
      dims.push_back(in[d]);
    else if (keepdims)
      dims.push_back(Dim(1));
  }
  return Shape(std::move(dims));
}

std::vector<int64_t> ReducedDims(const std::vector<int64_t>& in, const std::vector<bool>& mask,
                                 bool keepdims) {
  std::vector<int64_t> dims;
  for (size_t d = 0; d < mask.size(); ++d) {
    if (!mask[d])
      dims.push_back(in[d]);
    else if (keepdims)
      dims.push_back(1);
  }
  return dims;
}

}  // namespace reduce
}  // namespace kiln
