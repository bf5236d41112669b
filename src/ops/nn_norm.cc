// Normalisations over statistics of the input: BatchNormalization (inference
// and training mode), InstanceNormalization, LayerNormalization,
// GroupNormalization (opset 18: scale/bias per group; 21: per channel) and
// RMSNormalization. Statistics are accumulated in double; outputs are rounded
// to the tensor type.
#include <cmath>

#include "ops/nn_common.h"
#include "ops/op_table.h"

namespace kiln {
namespace nn {
namespace {

// Values of a float tensor of any float type, as doubles.
std::vector<double> ToDoubles(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = t.ScalarAt(static_cast<int64_t>(i));
  return v;
}

// A tensor of type dt from doubles (float types only; checked by callers).
Tensor FromDoubles(DataType dt, const std::vector<int64_t>& dims, const std::vector<double>& v) {
  Tensor t(dt, dims);
  DispatchFloat(dt, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.mutable_data<T>();
    for (size_t i = 0; i < v.size(); ++i) p[i] = FromCompute<T>(static_cast<compute_t<T>>(v[i]));
  });
  return t;
}

// Rounds v to the precision of dt (for two-stage float16 computations).
double RoundTo(DataType dt, double v) {
  switch (dt) {
    case DataType::kFloat:
      return static_cast<float>(v);
    case DataType::kFloat16:
      return static_cast<float>(Half(static_cast<float>(v)));
    case DataType::kBFloat16:
      return static_cast<float>(BFloat16(static_cast<float>(v)));
    default:
      return v;
  }
}

Status CheckFloat(const NodeContext& ctx, const Tensor& t, const char* what) {
  if (t.dtype() != DataType::kFloat && t.dtype() != DataType::kDouble && t.dtype() != DataType::kFloat16 &&
      t.dtype() != DataType::kBFloat16)
    return ctx.UnsupportedError(std::string(what) + " must be float, double, float16 or bfloat16");
  return Status::Ok();
}

// Per-channel parameter of [N, C, ...] ops: C values.
Status CheckPerChannel(const NodeContext& ctx, const Tensor& t, int64_t c, const char* what) {
  KILN_RETURN_IF_ERROR(CheckFloat(ctx, t, what));
  if (t.numel() != c) return ctx.Error(std::string(what) + " must have " + std::to_string(c) + " values");
  return Status::Ok();
}

// Mean and (population) variance of each of `rows` rows of `len` values.
void RowStats(const std::vector<double>& x, int64_t rows, int64_t len, std::vector<double>* mean,
              std::vector<double>* var) {
  mean->assign(static_cast<size_t>(rows), 0.0);
  var->assign(static_cast<size_t>(rows), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const double* p = x.data() + r * len;
    double s = 0;
    for (int64_t i = 0; i < len; ++i) s += p[i];
    const double m = len ? s / static_cast<double>(len) : 0.0;
    double v = 0;
    for (int64_t i = 0; i < len; ++i) v += (p[i] - m) * (p[i] - m);
    (*mean)[static_cast<size_t>(r)] = m;
    (*var)[static_cast<size_t>(r)] = len ? v / static_cast<double>(len) : 0.0;
  }
}

// Shape of Mean / InvStdDev of LayerNormalization: X.shape[:axis] + 1s.
std::vector<int64_t> StatDims(const std::vector<int64_t>& dims, int64_t axis) {
  std::vector<int64_t> d = dims;
  for (size_t i = static_cast<size_t>(axis); i < d.size(); ++i) d[i] = 1;
  return d;
}

// Strides of a parameter unidirectionally broadcast to x's dims.
Status ParamStrides(const NodeContext& ctx, const Tensor& p, const std::vector<int64_t>& xdims,
                    const char* what, std::vector<int64_t>* strides) {
  if (p.rank() > static_cast<int>(xdims.size()))
    return ctx.Error(std::string(what) + " has a larger rank than X");
  for (int i = 0; i < p.rank(); ++i) {
    const int64_t d = p.dim(i),
                  xd = xdims[xdims.size() - static_cast<size_t>(p.rank()) + static_cast<size_t>(i)];
    if (d != xd && d != 1)
      return ctx.Error(std::string(what) + " " + p.shape().ToString() + " does not broadcast to X");
  }
  *strides = BroadcastStrides(p.dims(), xdims);
  return Status::Ok();
}

}  // namespace
}  // namespace nn

namespace ops {

// ---- BatchNormalization ----

Status InferBatchNormalization(InferContext& ctx) {
  const DataType dt = ctx.input_dtype(0);
  ctx.set_output(0, dt, ctx.input_shape(0));
  const Shape& xs = ctx.input_shape(0);
  const Dim c = xs.rank_known() && xs.rank() >= 2 ? xs[1] : Dim::Unknown();
  for (size_t i = 1; i < ctx.num_outputs(); ++i) {
    if (!ctx.has_output(i)) continue;
    const DataType pt = ctx.input_dtype(i < 3 ? 3 : 4);
    ctx.set_output(i, pt == DataType::kUndefined ? dt : pt, Shape({c}));
  }
  return Status::Ok();
}

Status RunBatchNormalization(RunContext& ctx) {
  const Tensor& x = ctx.input(0);
  KILN_RETURN_IF_ERROR(nn::CheckFloat(ctx, x, "X"));
  if (x.rank() < 2) return ctx.Error("X must have rank >= 2 ([N, C, ...])");
  for (size_t i = 1; i < 5; ++i)
    if (!ctx.has_input(i)) return ctx.Error("inputs scale, B, input_mean and input_var are required");
  const int64_t n = x.dim(0), c = x.dim(1), inner = x.numel() / std::max<int64_t>(1, n * c);
  for (size_t i = 1; i < 5; ++i)
    KILN_RETURN_IF_ERROR(nn::CheckPerChannel(ctx, ctx.input(i), c, "scale, B, mean and var"));
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  const double momentum = ctx.attr_float("momentum", 0.9f);
  bool training;
  if (ctx.opset() >= 14) {
    training = ctx.attr_int("training_mode", 0) != 0;
  } else if (ctx.opset() >= 7) {
    training = ctx.num_outputs() > 1 && ctx.wants_output(1);
  } else {
    training = ctx.attr_int("is_test", 0) == 0 && ctx.num_outputs() > 1;
  }
  const std::vector<double> xv = nn::ToDoubles(x), scale = nn::ToDoubles(ctx.input(1)),
                            bias = nn::ToDoubles(ctx.input(2));
  std::vector<double> mean = nn::ToDoubles(ctx.input(3)), var = nn::ToDoubles(ctx.input(4));
  std::vector<double> batch_mean(static_cast<size_t>(c), 0.0), batch_var(static_cast<size_t>(c), 0.0);
  if (training) {
    const double count = static_cast<double>(n * inner);
    for (int64_t ch = 0; ch < c; ++ch) {
      double s = 0, ss = 0;
      for (int64_t b = 0; b < n; ++b)
        for (int64_t i = 0; i < inner; ++i) s += xv[static_cast<size_t>((b * c + ch) * inner + i)];
      const double m = count > 0 ? s / count : 0.0;
      for (int64_t b = 0; b < n; ++b)
        for (int64_t i = 0; i < inner; ++i) {
          const double d = xv[static_cast<size_t>((b * c + ch) * inner + i)] - m;
          ss += d * d;
        }
      batch_mean[static_cast<size_t>(ch)] = m;
      batch_var[static_cast<size_t>(ch)] = count > 0 ? ss / count : 0.0;
    }
  }
  const std::vector<double>& use_mean = training ? batch_mean : mean;
  const std::vector<double>& use_var = training ? batch_var : var;
  std::vector<double> y(xv.size());
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t ch = 0; ch < c; ++ch) {
      const size_t k = static_cast<size_t>(ch);
      const double sd = std::sqrt(use_var[k] + eps);
      for (int64_t i = 0; i < inner; ++i) {
        const size_t idx = static_cast<size_t>((b * c + ch) * inner + i);
        y[idx] = scale[k] * (xv[idx] - use_mean[k]) / sd + bias[k];
      }
    }
  }
  ctx.set_output(0, nn::FromDoubles(x.dtype(), x.dims(), y));
  if (training) {
    std::vector<double> run_mean(mean.size()), run_var(var.size());
    for (size_t k = 0; k < mean.size(); ++k) {
      run_mean[k] = mean[k] * momentum + batch_mean[k] * (1 - momentum);
      run_var[k] = var[k] * momentum + batch_var[k] * (1 - momentum);
    }
    const std::vector<int64_t> cd = {c};
    const std::vector<double>* outs[] = {&run_mean, &run_var, &batch_mean, &batch_var};
    for (size_t i = 1; i < ctx.num_outputs() && i <= 4; ++i)
      if (ctx.wants_output(i))
        ctx.set_output(i, nn::FromDoubles(ctx.input(i < 2 ? 3 : 4).dtype(), cd, *outs[i - 1]));
  }
  return Status::Ok();
}

// ---- InstanceNormalization ----

Status InferInstanceNormalization(InferContext& ctx) { return InferSameAsInput(ctx); }

Status RunInstanceNormalization(RunContext& ctx) {
  const Tensor& x = ctx.input(0);
  KILN_RETURN_IF_ERROR(nn::CheckFloat(ctx, x, "input"));
  if (x.rank() < 3) return ctx.Error("input must have rank >= 3 ([N, C, spatial...])");
  const int64_t n = x.dim(0), c = x.dim(1), inner = nn::Product(nn::SpatialDims(x));
  KILN_RETURN_IF_ERROR(nn::CheckPerChannel(ctx, ctx.input(1), c, "scale"));
  KILN_RETURN_IF_ERROR(nn::CheckPerChannel(ctx, ctx.input(2), c, "B"));
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  const std::vector<double> xv = nn::ToDoubles(x), scale = nn::ToDoubles(ctx.input(1)),
                            bias = nn::ToDoubles(ctx.input(2));
  std::vector<double> mean, var, y(xv.size());
  nn::RowStats(xv, n * c, inner, &mean, &var);
  for (int64_t r = 0; r < n * c; ++r) {
    const size_t ch = static_cast<size_t>(r % c);
    const double sd = std::sqrt(var[static_cast<size_t>(r)] + eps);
    for (int64_t i = 0; i < inner; ++i) {
      const size_t idx = static_cast<size_t>(r * inner + i);
      y[idx] = scale[ch] * (xv[idx] - mean[static_cast<size_t>(r)]) / sd + bias[ch];
    }
  }
  ctx.set_output(0, nn::FromDoubles(x.dtype(), x.dims(), y));
  return Status::Ok();
}

// ---- LayerNormalization / RMSNormalization ----

Status InferLayerNormalization(InferContext& ctx) {
  ctx.set_output(0, ctx.input_dtype(0), ctx.input_shape(0));
  const DataType stash = static_cast<DataType>(ctx.attr_int("stash_type", 1));
  const Shape& xs = ctx.input_shape(0);
  Shape stat;
  if (xs.rank_known()) {
    int64_t axis;
    KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", -1), xs.rank(), &axis));
    std::vector<Dim> d = xs.dims();
    for (size_t i = static_cast<size_t>(axis); i < d.size(); ++i) d[i] = Dim(1);
    stat = Shape(std::move(d));
  }
  for (size_t i = 1; i < 3 && i < ctx.num_outputs(); ++i)
    if (ctx.has_output(i)) ctx.set_output(i, stash, stat);
  return Status::Ok();
}

// Shared by LayerNormalization (rms == false) and RMSNormalization.
Status RunAxisNorm(RunContext& ctx, bool rms) {
  const Tensor& x = ctx.input(0);
  const Tensor& scale = ctx.input(1);
  KILN_RETURN_IF_ERROR(nn::CheckFloat(ctx, x, "X"));
  KILN_RETURN_IF_ERROR(nn::CheckFloat(ctx, scale, "scale"));
  int64_t axis;
  KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", -1), x.rank(), &axis));
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  const std::vector<int64_t>& dims = x.dims();
  int64_t inner = 1;
  for (size_t i = static_cast<size_t>(axis); i < dims.size(); ++i) inner *= dims[i];
  const int64_t rows = inner ? x.numel() / inner : 0;
  const bool has_bias = !rms && ctx.has_input(2);
  std::vector<int64_t> sstr, bstr(dims.size(), 0);
  KILN_RETURN_IF_ERROR(nn::ParamStrides(ctx, scale, dims, "scale", &sstr));
  if (has_bias) {
    KILN_RETURN_IF_ERROR(nn::CheckFloat(ctx, ctx.input(2), "B"));
    KILN_RETURN_IF_ERROR(nn::ParamStrides(ctx, ctx.input(2), dims, "B", &bstr));
  }
  const std::vector<double> xv = nn::ToDoubles(x), sv = nn::ToDoubles(scale);
  const std::vector<double> bv = has_bias ? nn::ToDoubles(ctx.input(2)) : std::vector<double>{0.0};
  std::vector<double> mean(static_cast<size_t>(rows), 0.0), inv(static_cast<size_t>(rows), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const double* p = xv.data() + r * inner;
    double m = 0, v = 0;
    if (!rms) {
      for (int64_t i = 0; i < inner; ++i) m += p[i];
      m /= static_cast<double>(inner);
    }
    for (int64_t i = 0; i < inner; ++i) v += (p[i] - m) * (p[i] - m);
    v /= static_cast<double>(inner);
    mean[static_cast<size_t>(r)] = m;
    inv[static_cast<size_t>(r)] = 1.0 / std::sqrt(v + eps);
  }
  // Stage 1 (normalise) is rounded to X's type, stage 2 (scale, shift) is in
  // the output type.
  const DataType out_type = rms ? scale.dtype() : x.dtype();
  std::vector<double> y(xv.size());
  ForEachBroadcast(dims, {Strides(dims), sstr, bstr}, [&](const std::vector<int64_t>& off) {
    const size_t i = static_cast<size_t>(off[0]);
    const size_t r = static_cast<size_t>(off[0] / inner);
    const double normalized = nn::RoundTo(x.dtype(), (xv[i] - mean[r]) * inv[r]);
    y[i] = normalized * sv[static_cast<size_t>(off[1])] + (has_bias ? bv[static_cast<size_t>(off[2])] : 0.0);
  });
  ctx.set_output(0, nn::FromDoubles(out_type, dims, y));
  if (!rms) {
    const DataType stash = static_cast<DataType>(ctx.attr_int("stash_type", 1));
    if (!DispatchFloat(stash, [](auto) {})) return ctx.UnsupportedError("stash_type must be a float type");
    if (ctx.num_outputs() > 1 && ctx.wants_output(1))
      ctx.set_output(1, nn::FromDoubles(stash, nn::StatDims(dims, axis), mean));
    if (ctx.num_outputs() > 2 && ctx.wants_output(2))
      ctx.set_output(2, nn::FromDoubles(stash, nn::StatDims(dims, axis), inv));
  }
  return Status::Ok();
}

Status RunLayerNormalization(RunContext& ctx) { return RunAxisNorm(ctx, false); }

Status InferRMSNormalization(InferContext& ctx) {
  const DataType dt = ctx.input_dtype(1) != DataType::kUndefined ? ctx.input_dtype(1) : ctx.input_dtype(0);
  ctx.set_output(0, dt, ctx.input_shape(0));
  return Status::Ok();
}

Status RunRMSNormalization(RunContext& ctx) { return RunAxisNorm(ctx, true); }

// ---- GroupNormalization ----

Status InferGroupNormalization(InferContext& ctx) { return InferSameAsInput(ctx); }

Status RunGroupNormalization(RunContext& ctx) {
  const Tensor& x = ctx.input(0);
  KILN_RETURN_IF_ERROR(nn::CheckFloat(ctx, x, "X"));
  if (x.rank() < 2) return ctx.Error("X must have rank >= 2 ([N, C, ...])");
  if (!ctx.has_attr("num_groups")) return ctx.Error("num_groups is required");
  const int64_t groups = ctx.attr_int("num_groups", 1);
  const int64_t n = x.dim(0), c = x.dim(1), inner = x.numel() / std::max<int64_t>(1, n * c);
  if (groups <= 0 || c % groups != 0) return ctx.Error("num_groups must divide the channel count");
  const Tensor& scale = ctx.input(1);
  const Tensor& bias = ctx.input(2);
  KILN_RETURN_IF_ERROR(nn::CheckFloat(ctx, scale, "scale"));
  KILN_RETURN_IF_ERROR(nn::CheckFloat(ctx, bias, "bias"));
  // Opset 21 gives one scale/bias per channel, opset 18 one per group; both
  // forms are accepted (they coincide when groups == channels).
  const int64_t cg = c / groups;
  auto per_channel = [&](const Tensor& t) -> Expected<bool> {
    if (t.numel() == c) return true;
    if (t.numel() == groups) return false;
    return ctx.Error("scale and bias must have " + std::to_string(c) + " (per channel) or " +
                     std::to_string(groups) + " (per group) values");
  };
  KILN_ASSIGN_OR_RETURN(const bool scale_pc, per_channel(scale));
  KILN_ASSIGN_OR_RETURN(const bool bias_pc, per_channel(bias));
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  const std::vector<double> xv = nn::ToDoubles(x), sv = nn::ToDoubles(scale), bv = nn::ToDoubles(bias);
  std::vector<double> mean, var, y(xv.size());
  nn::RowStats(xv, n * groups, cg * inner, &mean, &var);
  for (int64_t r = 0; r < n * groups; ++r) {
    const double sd = std::sqrt(var[static_cast<size_t>(r)] + eps);
    const int64_t g = r % groups;
    for (int64_t k = 0; k < cg; ++k) {
      const int64_t ch = g * cg + k;
      const double s = sv[static_cast<size_t>(scale_pc ? ch : g)],
                   b = bv[static_cast<size_t>(bias_pc ? ch : g)];
      for (int64_t i = 0; i < inner; ++i) {
        const size_t idx = static_cast<size_t>((r * cg + k) * inner + i);
        y[idx] = nn::RoundTo(x.dtype(), (xv[idx] - mean[static_cast<size_t>(r)]) / sd) * s + b;
      }
    }
  }
  ctx.set_output(0, nn::FromDoubles(x.dtype(), x.dims(), y));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
