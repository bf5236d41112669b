// Resize (opset 10-19) and Upsample (opset 1-10): nearest / linear / cubic
// interpolation, one axis at a time (the filters are separable), computed in
// double as the ONNX reference does, then rounded (integers) and clamped to
// the output type's range. Supports every coordinate_transformation_mode,
// nearest_mode, cubic_coeff_a, exclude_outside, tf_crop_and_resize's roi and
// extrapolation_value, `axes`, keep_aspect_ratio_policy and antialias.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ops/op_table.h"
#include "ops/unary_util.h"

namespace kiln {
namespace ops {
namespace {

struct ResizeAttrs {
  std::string mode = "nearest";  // nearest | linear | cubic
  std::string coord = "half_pixel";
  std::string nearest_mode = "round_prefer_floor";
  double cubic_a = -0.75;
  bool exclude_outside = false;
  double extrapolation_value = 0.0;
  bool antialias = false;
  std::string policy = "stretch";
  std::vector<int64_t> axes;  // empty: every axis
};

// Upsample and Resize-10 take (X, scales) and work as asymmetric + floor.
bool IsLegacy(const NodeContext& ctx) { return ctx.node().op_type == "Upsample" || ctx.opset() < 11; }

Expected<ResizeAttrs> ReadAttrs(const NodeContext& ctx) {
  ResizeAttrs a;
  a.mode = ctx.attr_string("mode", "nearest");
  if (a.mode == "bilinear") a.mode = "linear";  // Upsample-1
  if (a.mode == "trilinear") a.mode = "linear";
  if (a.mode != "nearest" && a.mode != "linear" && a.mode != "cubic")
    return ctx.Error("unknown mode '" + a.mode + "'");
  if (IsLegacy(ctx)) {
    a.coord = "asymmetric";
    a.nearest_mode = "floor";
    return a;
  }
  a.coord = ctx.attr_string("coordinate_transformation_mode", "half_pixel");
  static const char* kCoord[] = {"half_pixel",          "pytorch_half_pixel", "align_corners",
                                 "asymmetric",          "tf_crop_and_resize", "half_pixel_symmetric",
                                 "tf_half_pixel_for_nn"};
  if (std::find(std::begin(kCoord), std::end(kCoord), a.coord) == std::end(kCoord))
    return ctx.Error("unknown coordinate_transformation_mode '" + a.coord + "'");
  a.nearest_mode = ctx.attr_string("nearest_mode", "round_prefer_floor");
  if (a.nearest_mode != "round_prefer_floor" && a.nearest_mode != "round_prefer_ceil" &&
      a.nearest_mode != "floor" && a.nearest_mode != "ceil")
    return ctx.Error("unknown nearest_mode '" + a.nearest_mode + "'");
  a.cubic_a = ctx.attr_float("cubic_coeff_a", -0.75f);
  a.exclude_outside = ctx.attr_int("exclude_outside", 0) != 0;
  a.extrapolation_value = ctx.attr_float("extrapolation_value", 0.0f);
  a.antialias = ctx.attr_int("antialias", 0) != 0;
  a.policy = ctx.attr_string("keep_aspect_ratio_policy", "stretch");
  if (a.policy != "stretch" && a.policy != "not_larger" && a.policy != "not_smaller")
    return ctx.Error("unknown keep_aspect_ratio_policy '" + a.policy + "'");
  a.axes = ctx.attr_ints("axes");
  return a;
}

// Axes the scales/sizes/roi entries refer to, normalized; every axis by default.
Expected<std::vector<int64_t>> ResolveAxes(const NodeContext& ctx, const ResizeAttrs& a, int64_t rank) {
  std::vector<int64_t> axes;
  if (a.axes.empty()) {
    for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
    return axes;
  }
  for (int64_t ax : a.axes) {
    int64_t n;
    KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ax, rank, &n));
    if (std::find(axes.begin(), axes.end(), n) != axes.end()) return ctx.Error("axes has duplicates");
    axes.push_back(n);
  }
  return axes;
}

// Per-axis plan of a concrete resize: scale factor, output size and roi.
struct AxisPlan {
  double scale = 1.0;
  int64_t out = 0;
  double roi_start = 0.0, roi_end = 1.0;
};

std::vector<double> TensorDoubles(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = FloatElement(t, i);
  return v;
}

// Fills plans from scales (float) or sizes (int64) given per entry of `axes`.
Status PlanFromScalesOrSizes(const NodeContext& ctx, const ResizeAttrs& a, const std::vector<int64_t>& in,
                             const std::vector<int64_t>& axes, const std::vector<double>* scales,
                             const std::vector<int64_t>* sizes, std::vector<AxisPlan>* plans) {
  const size_t rank = in.size();
  plans->assign(rank, AxisPlan{});
  for (size_t d = 0; d < rank; ++d) plans->at(d).out = in[d];
  if (scales) {
    if (scales->size() != axes.size())
      return ctx.Error("scales has " + std::to_string(scales->size()) + " entries, expected " +
                       std::to_string(axes.size()));
    for (size_t i = 0; i < axes.size(); ++i) {
      double s = (*scales)[i];
      if (!(s > 0)) return ctx.Error("scales must be positive");
      AxisPlan& p = plans->at(static_cast<size_t>(axes[i]));
      p.scale = s;
      p.out = static_cast<int64_t>(std::floor(s * static_cast<double>(in[static_cast<size_t>(axes[i])])));
    }
    return Status::Ok();
  }
  if (sizes->size() != axes.size())
    return ctx.Error("sizes has " + std::to_string(sizes->size()) + " entries, expected " +
                     std::to_string(axes.size()));
  std::vector<double> ratio(axes.size());
  for (size_t i = 0; i < axes.size(); ++i) {
    int64_t in_d = in[static_cast<size_t>(axes[i])];
    if ((*sizes)[i] < 0) return ctx.Error("sizes must be non-negative");
    ratio[i] = in_d == 0 ? 1.0 : static_cast<double>((*sizes)[i]) / static_cast<double>(in_d);
  }
  if (a.policy != "stretch" && !axes.empty()) {
    double s = a.policy == "not_larger" ? *std::min_element(ratio.begin(), ratio.end())
                                        : *std::max_element(ratio.begin(), ratio.end());
    for (size_t i = 0; i < axes.size(); ++i) {
      AxisPlan& p = plans->at(static_cast<size_t>(axes[i]));
      p.scale = s;
      p.out = static_cast<int64_t>(s * static_cast<double>(in[static_cast<size_t>(axes[i])]) + 0.5);
    }
    return Status::Ok();
  }
  for (size_t i = 0; i < axes.size(); ++i) {
    AxisPlan& p = plans->at(static_cast<size_t>(axes[i]));
    p.scale = ratio[i];
    p.out = (*sizes)[i];
  }
  return Status::Ok();
}

// ---- interpolation weights ----

std::vector<double> NearestCoeffs(double ratio, const std::string& mode) {
  if (ratio == std::floor(ratio)) return {0, 1};
  if (mode == "round_prefer_floor") return {ratio <= 0.5 ? 1.0 : 0.0, ratio > 0.5 ? 1.0 : 0.0};
  if (mode == "round_prefer_ceil") return {ratio < 0.5 ? 1.0 : 0.0, ratio >= 0.5 ? 1.0 : 0.0};
  if (mode == "floor") return {1, 0};
  return {0, 1};  // ceil
}

std::vector<double> LinearCoeffs(double ratio, double scale, bool antialias) {
  if (!antialias) return {1 - ratio, ratio};
  scale = std::min(scale, 1.0);
  int64_t start = static_cast<int64_t>(std::floor(-1.0 / scale) + 1);
  int64_t footprint = 2 - 2 * start;
  std::vector<double> c(static_cast<size_t>(footprint));
  double sum = 0;
  for (int64_t i = 0; i < footprint; ++i) {
    double arg = (static_cast<double>(start + i) - ratio) * scale;
    c[static_cast<size_t>(i)] = std::clamp(1 - std::fabs(arg), 0.0, 1.0);
    sum += c[static_cast<size_t>(i)];
  }
  for (double& v : c) v /= sum;
  return c;
}

std::vector<double> CubicCoeffs(double ratio, double scale, double A, bool antialias) {
  if (!antialias) {
    double r1 = ratio + 1, q = 1 - ratio, q1 = q + 1;
    return {((A * r1 - 5 * A) * r1 + 8 * A) * r1 - 4 * A, ((A + 2) * ratio - (A + 3)) * ratio * ratio + 1,
            ((A + 2) * q - (A + 3)) * q * q + 1, ((A * q1 - 5 * A) * q1 + 8 * A) * q1 - 4 * A};
  }
  scale = std::min(scale, 1.0);
  auto coeff = [A](double x) {
    x = std::fabs(x);
    double x2 = x * x, x3 = x * x2;
    if (x <= 1) return (A + 2) * x3 - (A + 3) * x2 + 1;
    if (x < 2) return A * x3 - 5 * A * x2 + 8 * A * x - 4 * A;
    return 0.0;
  };
  int64_t i_start = static_cast<int64_t>(std::floor(-2.0 / scale) + 1);
  int64_t i_end = 2 - i_start;
  std::vector<double> c;
  double sum = 0;
  for (int64_t i = i_start; i < i_end; ++i) {
    c.push_back(coeff(scale * (static_cast<double>(i) - ratio)));
    sum += c.back();
  }
  for (double& v : c) v /= sum;
  return c;
}

// Source coordinate of output index y along one axis.
double SourceCoord(const std::string& coord, double y, const AxisPlan& p, int64_t in) {
  const double in_w = static_cast<double>(in);
  const double out_w = p.scale * in_w;  // may be fractional
  if (coord == "align_corners") return out_w == 1 ? 0.0 : y * (in_w - 1) / (out_w - 1);
  if (coord == "asymmetric") return y / p.scale;
  if (coord == "tf_crop_and_resize") {
    double x = out_w == 1 ? (p.roi_end - p.roi_start) * (in_w - 1) / 2
                          : y * (p.roi_end - p.roi_start) * (in_w - 1) / (out_w - 1);
    return x + p.roi_start * (in_w - 1);
  }
  if (coord == "pytorch_half_pixel") return out_w == 1 ? -0.5 : (y + 0.5) / p.scale - 0.5;
  if (coord == "half_pixel_symmetric") {
    double adjustment = static_cast<double>(p.out) / out_w;
    double offset = in_w / 2 * (1 - adjustment);
    return offset + (y + 0.5) / p.scale - 0.5;
  }
  if (coord == "tf_half_pixel_for_nn") return (y + 0.5) / p.scale;
  return (y + 0.5) / p.scale - 0.5;  // half_pixel
}

// Resizes `data` (dims `dims`) along `axis` in place of a new buffer.
void ResizeAxis(std::vector<double>& data, std::vector<int64_t>& dims, size_t axis, const AxisPlan& p,
                const ResizeAttrs& a) {
  const int64_t in = dims[axis];
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < axis; ++d) outer *= dims[d];
  for (size_t d = axis + 1; d < dims.size(); ++d) inner *= dims[d];
  std::vector<double> out(static_cast<size_t>(outer * p.out * inner));
  for (int64_t y = 0; y < p.out; ++y) {
    double x = SourceCoord(a.coord, static_cast<double>(y), p, in);
    const bool extrapolate = a.coord == "tf_crop_and_resize" && (x < 0 || x > static_cast<double>(in - 1));
    double xi = std::floor(x);
    double ratio = x == xi ? 1.0 : x - xi;
    std::vector<double> c = a.mode == "nearest"  ? NearestCoeffs(ratio, a.nearest_mode)
                            : a.mode == "linear" ? LinearCoeffs(ratio, p.scale, a.antialias)
                                                 : CubicCoeffs(ratio, p.scale, a.cubic_a, a.antialias);
    const int64_t n = static_cast<int64_t>(c.size());
    // The n source indices nearest to x = base + ratio (ratio in (0, 1]), ties to the smaller, as the
    // reference picks them. They come from the same floor as `ratio`: onnx's reference finds them
    // from x + pad, which can round to an integer when x is not one (x = 3 + 4e-16 in 7 -> 17
    // half_pixel gives x + 1 == 4.0) and then weights the wrong pair: linear gave in[2] for in[3]
    // there, unlike onnxruntime and torch, and moved a pasted Mask R-CNN mask row.
    const int64_t base = static_cast<int64_t>(xi) - (x == xi ? 1 : 0);
    const int64_t start = n % 2 == 0 ? base - n / 2 + 1 : (ratio <= 0.5 ? base : base + 1) - (n - 1) / 2;
    std::vector<int64_t> idx(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) idx[static_cast<size_t>(j)] = start + j;
    if (a.exclude_outside) {
      double sum = 0;
      for (int64_t j = 0; j < n; ++j) {
        if (idx[static_cast<size_t>(j)] < 0 || idx[static_cast<size_t>(j)] >= in)
          c[static_cast<size_t>(j)] = 0;
        sum += c[static_cast<size_t>(j)];
      }
      if (sum != 0)
        for (double& v : c) v /= sum;
    }
    for (int64_t& i : idx) i = std::clamp<int64_t>(i, 0, in - 1);
    for (int64_t o = 0; o < outer; ++o) {
      const double* src = data.data() + o * in * inner;
      double* dst = out.data() + (o * p.out + y) * inner;
      for (int64_t k = 0; k < inner; ++k) {
        if (extrapolate) {
          dst[k] = a.extrapolation_value;
          continue;
        }
        double acc = 0;
        for (int64_t j = 0; j < n; ++j)
          acc += c[static_cast<size_t>(j)] * src[idx[static_cast<size_t>(j)] * inner + k];
        dst[k] = acc;
      }
    }
  }
  data = std::move(out);
  dims[axis] = p.out;
}

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

// Reads scales / sizes / roi of a concrete node (Resize 10-19, Upsample).
struct ResizeInputs {
  const Tensor* scales = nullptr;
  const Tensor* sizes = nullptr;
  const Tensor* roi = nullptr;
};

}  // namespace

Status RunResize(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(RequireTensorInputs(ctx, {0}));
  KILN_ASSIGN_OR_RETURN(ResizeAttrs a, ReadAttrs(ctx));
  const Tensor& x = ctx.input(0);
  const int64_t rank = x.rank();
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> axes, ResolveAxes(ctx, a, rank));
  ResizeInputs in;
  std::vector<double> attr_scales;
  if (IsLegacy(ctx)) {
    if (ctx.has_input(1))
      in.scales = &ctx.input(1);
    else
      attr_scales = [&] {
        std::vector<float> f = ctx.attr_floats("scales");
        if (f.empty() && ctx.has_attr("height_scale"))
          f = {1.0f, 1.0f, ctx.attr_float("height_scale", 1.0f), ctx.attr_float("width_scale", 1.0f)};
        return std::vector<double>(f.begin(), f.end());
      }();
  } else {
    if (ctx.has_input(1) && ctx.input(1).numel() > 0) in.roi = &ctx.input(1);
    if (ctx.has_input(2) && ctx.input(2).numel() > 0) in.scales = &ctx.input(2);
    if (ctx.has_input(3) && ctx.input(3).numel() > 0) in.sizes = &ctx.input(3);
    if (in.scales && in.sizes) return ctx.Error("only one of scales and sizes may be given");
    if (!in.scales && !in.sizes) return ctx.Error("one of scales and sizes must be given");
  }
  std::vector<double> scales = in.scales ? TensorDoubles(*in.scales) : attr_scales;
  std::vector<int64_t> sizes = in.sizes ? in.sizes->ToInt64s() : std::vector<int64_t>{};
  std::vector<AxisPlan> plans;
  KILN_RETURN_IF_ERROR(PlanFromScalesOrSizes(ctx, a, x.dims(), axes, in.sizes ? nullptr : &scales,
                                             in.sizes ? &sizes : nullptr, &plans));
  if (in.roi && a.coord == "tf_crop_and_resize") {
    std::vector<double> roi = TensorDoubles(*in.roi);
    if (roi.size() != 2 * axes.size())
      return ctx.Error("roi has " + std::to_string(roi.size()) + " entries, expected " +
                       std::to_string(2 * axes.size()));
    for (size_t i = 0; i < axes.size(); ++i) {
      plans[static_cast<size_t>(axes[i])].roi_start = roi[i];
      plans[static_cast<size_t>(axes[i])].roi_end = roi[axes.size() + i];
    }
  } else if (a.coord == "tf_crop_and_resize") {
    return ctx.Error("tf_crop_and_resize needs roi");
  }
  if (a.mode == "nearest" && a.antialias) return ctx.Error("antialias is not supported with mode nearest");

  std::vector<int64_t> dims = x.dims();
  std::vector<double> data(static_cast<size_t>(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) data[static_cast<size_t>(i)] = FloatElement(x, i);
  for (int64_t ax : axes) {
    const AxisPlan& p = plans[static_cast<size_t>(ax)];
    bool identity = std::fabs(p.scale - 1.0) <= 1e-9 && p.out == dims[static_cast<size_t>(ax)] &&
                    std::fabs(p.roi_start) <= 1e-9 && std::fabs(p.roi_end - 1.0) <= 1e-9;
    if (identity) continue;
    if (dims[static_cast<size_t>(ax)] == 0 && p.out > 0)
      return ctx.Error("cannot resize an empty axis " + std::to_string(ax) + " to " + std::to_string(p.out));
    ResizeAxis(data, dims, static_cast<size_t>(ax), p, a);
  }
  for (size_t d = 0; d < dims.size(); ++d) dims[d] = plans[d].out;
  Tensor y(x.dtype(), dims);
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
  KILN_ASSIGN_OR_RETURN(ResizeAttrs a, ReadAttrs(ctx));
  const Shape& xs = ctx.input_shape(0);
  const DataType dt = ctx.input_dtype(0);
  const bool legacy = IsLegacy(ctx);
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
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> axes, ResolveAxes(ctx, a, rank));
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
      if (d.known())
        d = Dim(static_cast<int64_t>(std::floor(s * static_cast<double>(d.value()))));
      else if (s >= 1 && s == std::floor(s) && s < 1e6)
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
