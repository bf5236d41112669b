// Resize (opset 10-19) and Upsample (opset 1-10): nearest / linear / cubic
// interpolation, one axis at a time (the filters are separable), computed in
// double as the ONNX reference does, then rounded (integers) and clamped to
// the output type's range. Supports every coordinate_transformation_mode,
// nearest_mode, cubic_coeff_a, exclude_outside, tf_crop_and_resize's roi and
// extrapolation_value, `axes`, keep_aspect_ratio_policy and antialias; the
// taps come from ops/resize_plan.h, which the CUDA kernel shares.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ops/op_table.h"
#include "ops/resize_plan.h"
#include "ops/unary_util.h"

namespace kiln {
namespace ops {
namespace {

// Converts the double result to T as the reference's saturate_cast does:
// integers round half to even and clamp; floats clamp to the finite range.
template <class T>
T SaturateTo(double v) {
  if constexpr (std::is_integral_v<T>) {
    if (std::isnan(v)) return T(0);
    v = RoundHalfToEven(v);
    v = std::clamp(v, static_cast<double>(std::numeric_limits<T>::lowest()),
                   static_cast<double>(std::numeric_limits<T>::max()));
    if (v >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
    return static_cast<T>(v);
  } else {
    double max = std::is_same_v<T, Half>       ? 65504.0
                 : std::is_same_v<T, BFloat16> ? 3.3895313892515355e38
                 : std::is_same_v<T, float>    ? static_cast<double>(std::numeric_limits<float>::max())
                                               : std::numeric_limits<double>::max();
    if (!std::isnan(v)) v = std::clamp(v, -max, max);
    return FromCompute<T>(static_cast<compute_t<T>>(v));
  }
}

// Applies one axis's taps to `data` (dims `dims`), as a new buffer.
void ApplyTaps(std::vector<double>& data, std::vector<int64_t>& dims, const AxisTaps& t, double extrapolation) {
  const size_t axis = static_cast<size_t>(t.axis);
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < axis; ++d) outer *= dims[d];
  for (size_t d = axis + 1; d < dims.size(); ++d) inner *= dims[d];
  std::vector<double> out(static_cast<size_t>(outer * t.out * inner));
  for (int64_t y = 0; y < t.out; ++y) {
    const int64_t* idx = t.index.data() + y * t.n;
    const double* w = t.weight.data() + y * t.n;
    for (int64_t o = 0; o < outer; ++o) {
      const double* src = data.data() + o * t.in * inner;
      double* dst = out.data() + (o * t.out + y) * inner;
      for (int64_t k = 0; k < inner; ++k) {
        if (t.extrapolate[static_cast<size_t>(y)]) {
          dst[k] = extrapolation;
          continue;
        }
        double acc = 0;
        for (int64_t j = 0; j < t.n; ++j) acc += w[j] * src[idx[j] * inner + k];
        dst[k] = acc;
      }
    }
  }
  data = std::move(out);
  dims[axis] = t.out;
}

}  // namespace

Status RunResize(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(RequireTensorInputs(ctx, {0}));
  const Tensor& x = ctx.input(0);
  const bool legacy = IsLegacyResize(ctx);
  auto optional = [&](size_t i) { return ctx.has_input(i) ? &ctx.input(i) : nullptr; };
  KILN_ASSIGN_OR_RETURN(ResizePlan plan, PlanResize(ctx, x.dims(), legacy ? nullptr : optional(1),
                                                    optional(legacy ? 1 : 2), legacy ? nullptr : optional(3)));
  std::vector<int64_t> dims = x.dims();
  std::vector<double> data(static_cast<size_t>(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) data[static_cast<size_t>(i)] = FloatElement(x, i);
  for (const AxisTaps& t : plan.axes) ApplyTaps(data, dims, t, plan.attrs.extrapolation_value);
  Tensor y(x.dtype(), plan.out_dims);
  bool ok = DispatchNumeric(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* out = y.mutable_data<T>();
    for (int64_t i = 0; i < y.numel(); ++i) out[i] = SaturateTo<T>(data[static_cast<size_t>(i)]);
  });
  if (!ok)
    return ctx.UnsupportedError("element type " + std::string(DataTypeName(x.dtype())) + " is not supported");
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

Status InferResize(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(ResizeAttrs a, ReadResizeAttrs(ctx));
  const Shape& xs = ctx.input_shape(0);
  const DataType dt = ctx.input_dtype(0);
  const bool legacy = IsLegacyResize(ctx);
  const size_t scales_i = legacy ? 1 : 2;
  const Tensor* scales = ctx.has_input(scales_i) ? ctx.input_data(scales_i) : nullptr;
  const Tensor* sizes = !legacy && ctx.has_input(3) ? ctx.input_data(3) : nullptr;
  if (scales && scales->numel() == 0) scales = nullptr;
  if (sizes && sizes->numel() == 0) sizes = nullptr;
  std::vector<double> attr_scales;
  if (legacy && !ctx.has_input(1)) {
    std::vector<float> f = ctx.attr_floats("scales");
    attr_scales.assign(f.begin(), f.end());
  }
  if (!xs.rank_known()) {
    ctx.set_output(0, dt, Shape::Unranked());
    return Status::Ok();
  }
  const int64_t rank = xs.rank();
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> axes, ResolveResizeAxes(ctx, a, rank));
  std::vector<Dim> out = xs.dims();
  auto concrete = xs.concrete();
  if (concrete && (scales || sizes || !attr_scales.empty())) {
    std::vector<double> sv = scales ? TensorDoubles(*scales) : attr_scales;
    std::vector<int64_t> zv = sizes ? sizes->ToInt64s() : std::vector<int64_t>{};
    std::vector<AxisPlan> plans;
    KILN_RETURN_IF_ERROR(
        PlanFromScalesOrSizes(ctx, a, *concrete, axes, sizes ? nullptr : &sv, sizes ? &zv : nullptr, &plans));
    for (size_t d = 0; d < plans.size(); ++d) out[d] = Dim(plans[d].out);
  } else if (sizes && a.policy == "stretch") {
    std::vector<int64_t> zv = sizes->ToInt64s();
    if (zv.size() != axes.size()) return ctx.Error("sizes does not match the axes");
    for (size_t i = 0; i < axes.size(); ++i) out[static_cast<size_t>(axes[i])] = Dim(zv[i]);
  } else if (scales || !attr_scales.empty()) {
    std::vector<double> sv = scales ? TensorDoubles(*scales) : attr_scales;
    if (sv.size() != axes.size()) return ctx.Error("scales does not match the axes");
    for (size_t i = 0; i < axes.size(); ++i) {
      Dim& d = out[static_cast<size_t>(axes[i])];
      double s = sv[i];
      if (d.known()) {
        KILN_ASSIGN_OR_RETURN(int64_t v, ScaledDim(ctx, std::floor(s * static_cast<double>(d.value())), axes[i]));
        d = Dim(v);
      } else if (s >= 1 && s == std::floor(s) && s < 1e6)
        d = s == 1 ? d : d * Dim(static_cast<int64_t>(s));
      else
        d = Dim::Unknown();
    }
  } else if (const auto* sym = !legacy && ctx.has_input(3) ? ctx.input_sym(3) : nullptr;
             sym && sym->size() == axes.size() && a.policy == "stretch") {
    for (size_t i = 0; i < axes.size(); ++i) out[static_cast<size_t>(axes[i])] = (*sym)[i];
  } else {
    for (int64_t ax : axes) out[static_cast<size_t>(ax)] = Dim::Unknown();
  }
  ctx.set_output(0, dt, Shape(std::move(out)));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
