// Resize's plan (see resize_plan.h).
#include "ops/resize_plan.h"

#include <algorithm>
#include <cmath>

#include "ops/op_util.h"
#include "ops/unary_util.h"

namespace kiln {
namespace ops {



bool IsLegacyResize(const NodeContext& ctx) { return ctx.node().op_type == "Upsample" || ctx.opset() < 11; }

Expected<ResizeAttrs> ReadResizeAttrs(const NodeContext& ctx) {
  ResizeAttrs a;
  a.mode = ctx.attr_string("mode", "nearest");
  if (a.mode == "bilinear") a.mode = "linear";  // Upsample-1
  if (a.mode == "trilinear") a.mode = "linear";
  if (a.mode != "nearest" && a.mode != "linear" && a.mode != "cubic")
    return ctx.Error("unknown mode '" + a.mode + "'");
  if (IsLegacyResize(ctx)) {
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

Expected<std::vector<int64_t>> ResolveResizeAxes(const NodeContext& ctx, const ResizeAttrs& a, int64_t rank) {
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



std::vector<double> TensorDoubles(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = FloatElement(t, i);
  return v;
}

Expected<int64_t> ScaledDim(const NodeContext& ctx, double dim, int64_t axis) {
  constexpr double kMaxDim = static_cast<double>(int64_t{1} << 40);
  if (!(dim >= 0 && dim <= kMaxDim))
    return ctx.Error("scales make output dim " + std::to_string(axis) + " " + std::to_string(dim) +
                     ", which is not a valid size");
  return static_cast<int64_t>(dim);
}

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
      KILN_ASSIGN_OR_RETURN(p.out,
                            ScaledDim(ctx, std::floor(s * static_cast<double>(in[static_cast<size_t>(axes[i])])), axes[i]));
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
      KILN_ASSIGN_OR_RETURN(p.out,
                            ScaledDim(ctx, s * static_cast<double>(in[static_cast<size_t>(axes[i])]) + 0.5, axes[i]));
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

namespace {

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

// The taps of output index y along one axis (the reference's ResizeAxis).
AxisTaps ResizeTaps(int64_t axis, int64_t in, const AxisPlan& p, const ResizeAttrs& a) {
  AxisTaps t;
  t.axis = axis;
  t.in = in;
  t.out = p.out;
  for (int64_t y = 0; y < p.out; ++y) {
    double x = SourceCoord(a.coord, static_cast<double>(y), p, in);
    const bool extrapolate = a.coord == "tf_crop_and_resize" && (x < 0 || x > static_cast<double>(in - 1));
    double xi = std::floor(x);
    double ratio = x == xi ? 1.0 : x - xi;
    std::vector<double> c = a.mode == "nearest"  ? NearestCoeffs(ratio, a.nearest_mode)
                            : a.mode == "linear" ? LinearCoeffs(ratio, p.scale, a.antialias)
                                                 : CubicCoeffs(ratio, p.scale, a.cubic_a, a.antialias);
    const int64_t n = static_cast<int64_t>(c.size());
    if (y == 0) {
      t.n = n;
      t.index.reserve(static_cast<size_t>(n * p.out));
      t.weight.reserve(static_cast<size_t>(n * p.out));
    }
    // The n source indices nearest to x = base + ratio (ratio in (0, 1]), ties to the smaller, as the
    // reference picks them. They come from the same floor as `ratio`: onnx's reference finds them
    // from x + pad, which can round to an integer when x is not one (x = 3 + 4e-16 in 7 -> 17
    // half_pixel gives x + 1 == 4.0) and then weights the wrong pair: linear gave in[2] for in[3]
    // there, unlike onnxruntime and torch, and moved a pasted Mask R-CNN mask row.
    const int64_t base = static_cast<int64_t>(xi) - (x == xi ? 1 : 0);
    const int64_t start = n % 2 == 0 ? base - n / 2 + 1 : (ratio <= 0.5 ? base : base + 1) - (n - 1) / 2;
    if (a.exclude_outside) {
      double sum = 0;
      for (int64_t j = 0; j < n; ++j) {
        if (start + j < 0 || start + j >= in) c[static_cast<size_t>(j)] = 0;
        sum += c[static_cast<size_t>(j)];
      }
      if (sum != 0)
        for (double& v : c) v /= sum;
    }
    for (int64_t j = 0; j < n; ++j) {
      t.index.push_back(std::clamp<int64_t>(start + j, 0, in - 1));
      t.weight.push_back(c[static_cast<size_t>(j)]);
    }
    t.extrapolate.push_back(extrapolate ? 1 : 0);
  }
  return t;
}

}  // namespace

Expected<ResizePlan> PlanResize(const NodeContext& ctx, const std::vector<int64_t>& x_dims, const Tensor* roi,
                                const Tensor* scales, const Tensor* sizes) {
  KILN_ASSIGN_OR_RETURN(ResizeAttrs a, ReadResizeAttrs(ctx));
  const int64_t rank = static_cast<int64_t>(x_dims.size());
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> axes, ResolveResizeAxes(ctx, a, rank));
  if (roi && roi->numel() == 0) roi = nullptr;
  if (scales && scales->numel() == 0) scales = nullptr;
  if (sizes && sizes->numel() == 0) sizes = nullptr;
  std::vector<double> scale_values;
  if (IsLegacyResize(ctx)) {
    sizes = nullptr;
    roi = nullptr;
    if (scales) {
      scale_values = TensorDoubles(*scales);
    } else {
      std::vector<float> f = ctx.attr_floats("scales");
      if (f.empty() && ctx.has_attr("height_scale"))
        f = {1.0f, 1.0f, ctx.attr_float("height_scale", 1.0f), ctx.attr_float("width_scale", 1.0f)};
      scale_values.assign(f.begin(), f.end());
    }
  } else {
    if (scales && sizes) return ctx.Error("only one of scales and sizes may be given");
    if (!scales && !sizes) return ctx.Error("one of scales and sizes must be given");
    if (scales) scale_values = TensorDoubles(*scales);
  }
  std::vector<int64_t> size_values = sizes ? sizes->ToInt64s() : std::vector<int64_t>{};
  std::vector<AxisPlan> plans;
  KILN_RETURN_IF_ERROR(PlanFromScalesOrSizes(ctx, a, x_dims, axes, sizes ? nullptr : &scale_values,
                                             sizes ? &size_values : nullptr, &plans));
  if (roi && a.coord == "tf_crop_and_resize") {
    std::vector<double> r = TensorDoubles(*roi);
    if (r.size() != 2 * axes.size())
      return ctx.Error("roi has " + std::to_string(r.size()) + " entries, expected " + std::to_string(2 * axes.size()));
    for (size_t i = 0; i < axes.size(); ++i) {
      plans[static_cast<size_t>(axes[i])].roi_start = r[i];
      plans[static_cast<size_t>(axes[i])].roi_end = r[axes.size() + i];
    }
  } else if (a.coord == "tf_crop_and_resize") {
    return ctx.Error("tf_crop_and_resize needs roi");
  }
  if (a.mode == "nearest" && a.antialias) return ctx.Error("antialias is not supported with mode nearest");

  ResizePlan plan;
  plan.attrs = a;
  std::vector<int64_t> dims = x_dims;
  for (int64_t ax : axes) {
    const AxisPlan& p = plans[static_cast<size_t>(ax)];
    const int64_t in = dims[static_cast<size_t>(ax)];
    bool identity = std::fabs(p.scale - 1.0) <= 1e-9 && p.out == in && std::fabs(p.roi_start) <= 1e-9 &&
                    std::fabs(p.roi_end - 1.0) <= 1e-9;
    if (identity) continue;
    if (in == 0 && p.out > 0)
      return ctx.Error("cannot resize an empty axis " + std::to_string(ax) + " to " + std::to_string(p.out));
    plan.axes.push_back(ResizeTaps(ax, in, p, a));
    dims[static_cast<size_t>(ax)] = p.out;
  }
  for (size_t d = 0; d < dims.size(); ++d) dims[d] = plans[d].out;
  plan.out_dims = dims;
  return plan;
}

}  // namespace ops
}  // namespace kiln
