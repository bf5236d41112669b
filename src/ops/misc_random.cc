// Random ops: RandomUniform, RandomUniformLike, RandomNormal,
// RandomNormalLike, Bernoulli and Multinomial. With a `seed` attribute the
// results are deterministic (std::mt19937_64 seeded with it); without one
// each run draws a fresh seed. The values cannot match other runtimes, so
// conformance compares only shapes and types for them.
#include <cmath>
#include <random>

#include "ops/op_table.h"
#include "ops/op_util.h"

namespace kiln {
namespace ops {
namespace {

std::mt19937_64 MakeEngine(const NodeContext& ctx) {
  if (ctx.has_attr("seed")) {
    double seed = ctx.attr_float("seed", 0.0f);
    if (!(std::fabs(seed) < 9.0e18)) seed = 0.0;  // NaN / out of int64 range
    return std::mt19937_64(static_cast<uint64_t>(static_cast<int64_t>(seed)));
  }
  std::random_device rd;
  return std::mt19937_64((static_cast<uint64_t>(rd()) << 32) ^ rd());
}

// Output dtype: the `dtype` attribute, else `def`.
DataType DtypeAttr(const NodeContext& ctx, DataType def) {
  return ctx.has_attr("dtype") ? static_cast<DataType>(ctx.attr_int("dtype", 1)) : def;
}

// Fills a float tensor with draws of `dist` (computed in double, rounded).
template <class Dist>
Status FillRandom(const NodeContext& ctx, Tensor* t, Dist dist) {
  std::mt19937_64 engine = MakeEngine(ctx);
  bool ok = DispatchFloat(t->dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* d = t->mutable_data<T>();
    for (int64_t i = 0; i < t->numel(); ++i) d[i] = FromCompute<T>(static_cast<compute_t<T>>(dist(engine)));
  });
  if (!ok)
    return ctx.Error("dtype must be a floating-point type, got " + std::string(DataTypeName(t->dtype())));
  return Status::Ok();
}

Status InferRandomFromShapeAttr(InferContext& ctx) {
  std::vector<int64_t> shape = ctx.attr_ints("shape");
  for (int64_t d : shape)
    if (d < 0) return ctx.Error("shape must not have negative dims");
  DataType dt = DtypeAttr(ctx, DataType::kFloat);
  if (!IsFloatingPoint(dt)) return ctx.Error("dtype must be a floating-point type");
  ctx.set_output(0, dt, Shape::Of(shape));
  return Status::Ok();
}

Status InferRandomLike(InferContext& ctx) {
  if (ctx.num_inputs() < 1) return ctx.Error("needs an input");
  ctx.set_output(0, DtypeAttr(ctx, ctx.input_dtype(0)), ctx.input_shape(0));
  return Status::Ok();
}

Status RunRandomUniformImpl(RunContext& ctx, std::vector<int64_t> dims, DataType dt) {
  const double low = ctx.attr_float("low", 0.0f), high = ctx.attr_float("high", 1.0f);
  Tensor t(dt, std::move(dims));
  std::uniform_real_distribution<double> dist(low, high);
  KILN_RETURN_IF_ERROR(FillRandom(ctx, &t, dist));
  ctx.set_output(0, std::move(t));
  return Status::Ok();
}

Status RunRandomNormalImpl(RunContext& ctx, std::vector<int64_t> dims, DataType dt) {
  const double mean = ctx.attr_float("mean", 0.0f), scale = ctx.attr_float("scale", 1.0f);
  Tensor t(dt, std::move(dims));
  std::normal_distribution<double> dist(mean, scale);
  KILN_RETURN_IF_ERROR(FillRandom(ctx, &t, dist));
  ctx.set_output(0, std::move(t));
  return Status::Ok();
}

}  // namespace

Status InferRandomUniform(InferContext& ctx) { return InferRandomFromShapeAttr(ctx); }
Status InferRandomNormal(InferContext& ctx) { return InferRandomFromShapeAttr(ctx); }
Status InferRandomUniformLike(InferContext& ctx) { return InferRandomLike(ctx); }
Status InferRandomNormalLike(InferContext& ctx) { return InferRandomLike(ctx); }

Status RunRandomUniform(RunContext& ctx) {
  return RunRandomUniformImpl(ctx, ctx.attr_ints("shape"), DtypeAttr(ctx, DataType::kFloat));
}
Status RunRandomNormal(RunContext& ctx) {
  return RunRandomNormalImpl(ctx, ctx.attr_ints("shape"), DtypeAttr(ctx, DataType::kFloat));
}
Status RunRandomUniformLike(RunContext& ctx) {
  return RunRandomUniformImpl(ctx, ctx.input(0).dims(), DtypeAttr(ctx, ctx.input(0).dtype()));
}
Status RunRandomNormalLike(RunContext& ctx) {
  return RunRandomNormalImpl(ctx, ctx.input(0).dims(), DtypeAttr(ctx, ctx.input(0).dtype()));
}

// ---------------------------------------------------------------- Bernoulli

Status InferBernoulli(InferContext& ctx) { return InferRandomLike(ctx); }

Status RunBernoulli(RunContext& ctx) {
  const Tensor& p = ctx.input(0);
  if (!IsFloatingPoint(p.dtype())) return ctx.Error("input must be floating-point probabilities");
  std::mt19937_64 engine = MakeEngine(ctx);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Tensor draws(DataType::kDouble, p.dims());
  double* dd = draws.mutable_data<double>();
  for (int64_t i = 0; i < p.numel(); ++i) {
    double prob = p.ScalarAt(i);
    if (!(prob >= 0.0 && prob <= 1.0)) return ctx.Error("probabilities must be in [0, 1]");
    dd[i] = u(engine) < prob ? 1.0 : 0.0;
  }
  const DataType dt = DtypeAttr(ctx, p.dtype());
  Tensor out(dt, p.dims());
  bool ok = DispatchAll(dt, [&](auto tag) {
    using T = decltype(tag);
    T* o = out.mutable_data<T>();
    for (int64_t i = 0; i < p.numel(); ++i) o[i] = FromCompute<T>(static_cast<compute_t<T>>(dd[i]));
  });
  if (!ok) return ctx.Error("unsupported output dtype " + std::string(DataTypeName(dt)));
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

// ---------------------------------------------------------------- Multinomial
// Input [batch, classes] of unnormalised log-probabilities; output
// [batch, sample_size] class indices (int32 or int64).

Status InferMultinomial(InferContext& ctx) {
  const Shape& s = ctx.input_shape(0);
  if (s.rank_known() && s.rank() != 2) return ctx.Error("input must be [batch_size, class_size]");
  DataType dt = DtypeAttr(ctx, DataType::kInt32);
  if (dt != DataType::kInt32 && dt != DataType::kInt64) return ctx.Error("dtype must be int32 or int64");
  Dim batch = s.rank_known() ? s[0] : Dim::Unknown();
  ctx.set_output(0, dt, Shape({batch, Dim(ctx.attr_int("sample_size", 1))}));
  return Status::Ok();
}

Status RunMultinomial(RunContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.rank() != 2 || !IsFloatingPoint(x.dtype()))
    return ctx.Error("input must be a float [batch_size, class_size]");
  const DataType dt = DtypeAttr(ctx, DataType::kInt32);
  if (dt != DataType::kInt32 && dt != DataType::kInt64) return ctx.Error("dtype must be int32 or int64");
  const int64_t batch = x.dim(0), classes = x.dim(1), samples = ctx.attr_int("sample_size", 1);
  if (samples < 0 || classes < 1) return ctx.Error("needs sample_size >= 0 and at least one class");
  std::mt19937_64 engine = MakeEngine(ctx);
  Tensor out(dt, {batch, samples});
  for (int64_t b = 0; b < batch; ++b) {
    double mx = -INFINITY;
    for (int64_t c = 0; c < classes; ++c) mx = std::max(mx, x.ScalarAt(b * classes + c));
    std::vector<double> cdf(static_cast<size_t>(classes));
    double total = 0.0;
    for (int64_t c = 0; c < classes; ++c) {
      total += std::exp(x.ScalarAt(b * classes + c) - mx);
      cdf[static_cast<size_t>(c)] = total;
    }
    std::uniform_real_distribution<double> u(0.0, total);
    for (int64_t s = 0; s < samples; ++s) {
      double r = u(engine);
      int64_t c = std::upper_bound(cdf.begin(), cdf.end(), r) - cdf.begin();
      c = std::min(c, classes - 1);
      if (dt == DataType::kInt32)
        out.mutable_data<int32_t>()[b * samples + s] = static_cast<int32_t>(c);
      else
        out.mutable_data<int64_t>()[b * samples + s] = c;
    }
  }
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
