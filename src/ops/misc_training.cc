// ai.onnx.preview.training optimizers: Momentum (standard / nesterov), Adagrad
// and Adam. Inputs: R (learning rate), T (step count), then the per-tensor
// groups X..., G..., state... (n tensors each); outputs the updated X... then
// the updated states. Computed in double, rounded to X's type.
#include <cmath>

#include "ops/op_table.h"
#include "ops/op_util.h"

namespace kiln {
namespace ops {
namespace {

// Number of optimized tensors n for `groups` tensor groups after R and T.
Expected<size_t> GroupSize(const NodeContext& ctx, size_t num_inputs, size_t groups, size_t num_outputs) {
  if (num_inputs < 2 + groups || (num_inputs - 2) % groups != 0)
    return ctx.Error("expects R, T and " + std::to_string(groups) + " groups of tensors");
  size_t n = (num_inputs - 2) / groups;
  if (num_outputs != n * (groups - 1))
    return ctx.Error("expects " + std::to_string(n * (groups - 1)) + " outputs");
  return n;
}

// Output i has the type of input 2 + (i mod n) (X, G and states share shapes).
Status InferOptimizer(InferContext& ctx, size_t groups) {
  KILN_ASSIGN_OR_RETURN(size_t n, GroupSize(ctx, ctx.num_inputs(), groups, ctx.num_outputs()));
  for (size_t i = 0; i < ctx.num_outputs(); ++i) ctx.set_output_type(i, ctx.input_type(2 + i % n));
  return Status::Ok();
}

std::vector<double> Doubles(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = t.ScalarAt(i);
  return v;
}

Expected<Tensor> FromDoubles(const NodeContext& ctx, const Tensor& like, const std::vector<double>& v) {
  Tensor t(like.dtype(), like.dims());
  bool ok = DispatchFloat(like.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* d = t.mutable_data<T>();
    for (size_t i = 0; i < v.size(); ++i) d[i] = FromCompute<T>(static_cast<compute_t<T>>(v[i]));
  });
  if (!ok) return ctx.Error("tensors must be floating-point");
  return t;
}

// Runs `step(r, t, x, g, states...)` for every tensor group; `step` updates x
// and the states in place.
template <class Step>
Status RunOptimizer(RunContext& ctx, size_t groups, Step step) {
  KILN_ASSIGN_OR_RETURN(size_t n, GroupSize(ctx, ctx.num_inputs(), groups, ctx.num_outputs()));
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    if (!ctx.has_input(i)) return ctx.Error("input " + std::to_string(i) + " is missing");
  if (ctx.input(0).numel() != 1 || ctx.input(1).numel() != 1) return ctx.Error("R and T must be scalars");
  const double r = ctx.input(0).ScalarAt(0);
  const int64_t t = ctx.input(1).IntAt(0);
  for (size_t k = 0; k < n; ++k) {
    const Tensor& x = ctx.input(2 + k);
    std::vector<std::vector<double>> vals;  // x, g, states...
    for (size_t g = 0; g < groups; ++g) {
      const Tensor& in = ctx.input(2 + g * n + k);
      if (in.dims() != x.dims()) return ctx.Error("tensor group " + std::to_string(k) + " differs in shape");
      vals.push_back(Doubles(in));
    }
    for (size_t i = 0; i < vals[0].size(); ++i) step(r, t, vals, i);
    for (size_t g = 0; g < groups; ++g) {
      if (g == 1) continue;  // the gradient is not an output
      const size_t out = g == 0 ? k : (g - 1) * n + k;
      KILN_ASSIGN_OR_RETURN(Tensor o, FromDoubles(ctx, ctx.input(2 + g * n + k), vals[g]));
      ctx.set_output(out, std::move(o));
    }
  }
  return Status::Ok();
}

}  // namespace

Status InferMomentum(InferContext& ctx) { return InferOptimizer(ctx, 3); }
Status InferAdagrad(InferContext& ctx) { return InferOptimizer(ctx, 3); }
Status InferAdam(InferContext& ctx) { return InferOptimizer(ctx, 4); }

Status RunMomentum(RunContext& ctx) {
  const double alpha = ctx.attr_float("alpha", 0.0f), beta = ctx.attr_float("beta", 0.0f);
  const double norm = ctx.attr_float("norm_coefficient", 0.0f);
  const std::string mode = ctx.attr_string("mode", "standard");
  if (mode != "standard" && mode != "nesterov") return ctx.Error("mode must be standard or nesterov");
  const bool nesterov = mode == "nesterov";
  return RunOptimizer(ctx, 3, [&](double r, int64_t t, std::vector<std::vector<double>>& v, size_t i) {
    double& x = v[0][i];
    double& m = v[2][i];
    const double g = norm * x + v[1][i];
    m = alpha * m + (t > 0 ? beta : 1.0) * g;
    x -= nesterov ? r * (g + alpha * m) : r * m;
  });
}

Status RunAdagrad(RunContext& ctx) {
  const double decay = ctx.attr_float("decay_factor", 0.0f), eps = ctx.attr_float("epsilon", 1e-6f);
  const double norm = ctx.attr_float("norm_coefficient", 0.0f);
  return RunOptimizer(ctx, 3, [&](double r, int64_t t, std::vector<std::vector<double>>& v, size_t i) {
    double& x = v[0][i];
    double& h = v[2][i];
    const double rate = r / (1.0 + static_cast<double>(t) * decay);
    const double g = norm * x + v[1][i];
    h += g * g;
    x -= rate * g / (std::sqrt(h) + eps);
  });
}

Status RunAdam(RunContext& ctx) {
  const double alpha = ctx.attr_float("alpha", 0.9f), beta = ctx.attr_float("beta", 0.999f);
  const double eps = ctx.attr_float("epsilon", 1e-6f), norm = ctx.attr_float("norm_coefficient", 0.0f);
  const double norm_post = ctx.attr_float("norm_coefficient_post", 0.0f);
  return RunOptimizer(ctx, 4, [&](double r, int64_t t, std::vector<std::vector<double>>& v, size_t i) {
    double& x = v[0][i];
    double& m = v[2][i];
    double& h = v[3][i];
    const double g = norm * x + v[1][i];
    m = alpha * m + (1.0 - alpha) * g;
    h = beta * h + (1.0 - beta) * g * g;
    const double td = static_cast<double>(t);
    const double rate = t > 0 ? r * std::sqrt(1.0 - std::pow(beta, td)) / (1.0 - std::pow(alpha, td)) : r;
    x = (1.0 - norm_post) * (x - rate * (m / (std::sqrt(h) + eps)));
  });
}

}  // namespace ops
}  // namespace kiln
