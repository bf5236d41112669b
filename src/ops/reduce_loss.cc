// Classification losses: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss
// (reduction none / sum / mean, optional class weights, ignore_index; SCE's
// optional log_prob output). Input [N, C, d1..dk], target [N, d1..dk]. The
// mean divides by the sum of the weights of the non-ignored targets.
#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include "ops/op_table.h"
#include "ops/op_util.h"

namespace kiln {
namespace ops {
namespace {

enum class Reduction { kNone, kSum, kMean };

Status ParseReduction(const NodeContext& ctx, Reduction* r) {
  const std::string s = ctx.attr_string("reduction", "mean");
  if (s == "none")
    *r = Reduction::kNone;
  else if (s == "sum")
    *r = Reduction::kSum;
  else if (s == "mean")
    *r = Reduction::kMean;
  else
    return ctx.Error("reduction must be none, sum or mean, got '" + s + "'");
  return Status::Ok();
}

Status InferLoss(InferContext& ctx, bool softmax) {
  if (ctx.num_inputs() < 2 || !ctx.has_input(0) || !ctx.has_input(1))
    return ctx.Error("expects input and target");
  Reduction red;
  KILN_RETURN_IF_ERROR(ParseReduction(ctx, &red));
  const TypeInfo& x = ctx.input_type(0);
  const Shape& target = ctx.input_shape(1);
  if (x.shape.rank_known() && x.shape.rank() < 2) return ctx.Error("input must have rank >= 2 ([N, C, ...])");
  if (x.shape.rank_known() && target.rank_known() && target.rank() != x.shape.rank() - 1)
    return ctx.Error("target must have the input's rank - 1");
  ctx.set_output(0, x.dtype, red == Reduction::kNone ? target : Shape::Scalar());
  if (softmax && ctx.num_outputs() > 1) ctx.set_output_type(1, x);
  return Status::Ok();
}

// Loss from log-probabilities logp laid out [N, C, D].
Status RunLoss(RunContext& ctx, bool softmax) {
  if (ctx.num_inputs() < 2 || !ctx.has_input(0) || !ctx.has_input(1))
    return ctx.Error("expects input and target");
  Reduction red;
  KILN_RETURN_IF_ERROR(ParseReduction(ctx, &red));
  const Tensor& x = ctx.input(0);
  const Tensor& target = ctx.input(1);
  const Tensor* weight = ctx.num_inputs() > 2 && ctx.has_input(2) ? &ctx.input(2) : nullptr;
  if (x.rank() < 2) return ctx.Error("input must have rank >= 2 ([N, C, ...])");
  if (target.dtype() != DataType::kInt64 && target.dtype() != DataType::kInt32)
    return ctx.Error("target must be int32 or int64");
  const int64_t n = x.dim(0);
  const int64_t c = x.dim(1);
  int64_t d = 1;
  for (int i = 2; i < x.rank(); ++i) d *= x.dim(i);
  bool target_ok = target.rank() == x.rank() - 1 && target.dim(0) == n;
  for (int i = 1; target_ok && i < target.rank(); ++i) target_ok = target.dim(i) == x.dim(i + 1);
  if (!target_ok) return ctx.Error("target shape must be input shape without the class dim");
  if (weight && (weight->rank() != 1 || weight->dim(0) != c))
    return ctx.Error("weight must be 1-D of size C");
  if (weight && weight->dtype() != x.dtype()) return ctx.Error("weight must have the input's type");
  const std::optional<int64_t> ignore =
      ctx.has_attr("ignore_index") ? std::optional<int64_t>(ctx.attr_int("ignore_index", 0)) : std::nullopt;

  const std::vector<int64_t> tgt = target.ToInt64s();
  Tensor loss(x.dtype(), red == Reduction::kNone ? target.dims() : std::vector<int64_t>{});
  Tensor log_prob;
  const bool want_log_prob = softmax && ctx.num_outputs() > 1 && ctx.wants_output(1);
  if (want_log_prob) log_prob = Tensor(x.dtype(), x.dims());
  Status st = Status::Ok();
  bool ok = DispatchFloat(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    // log-probabilities in double, [N, C, D]
    std::vector<double> logp(static_cast<size_t>(x.numel()));
    for (int64_t i = 0; i < x.numel(); ++i)
      logp[static_cast<size_t>(i)] = static_cast<double>(ToCompute(px[i]));
    if (softmax) {
      for (int64_t b = 0; b < n; ++b) {
        for (int64_t j = 0; j < d; ++j) {
          double mx = -std::numeric_limits<double>::infinity();
          for (int64_t k = 0; k < c; ++k) mx = std::max(mx, logp[static_cast<size_t>((b * c + k) * d + j)]);
          double sum = 0;
          for (int64_t k = 0; k < c; ++k)
            sum += std::exp(logp[static_cast<size_t>((b * c + k) * d + j)] - mx);
          const double ls = std::log(sum);
          for (int64_t k = 0; k < c; ++k) logp[static_cast<size_t>((b * c + k) * d + j)] -= mx + ls;
        }
      }
      if (want_log_prob) {
        T* pl = log_prob.mutable_data<T>();
        for (int64_t i = 0; i < x.numel(); ++i)
          pl[i] = FromCompute<T>(static_cast<compute_t<T>>(logp[static_cast<size_t>(i)]));
      }
    }
    const T* pw = weight ? weight->data<T>() : nullptr;
    T* pout = loss.mutable_data<T>();
    double total = 0, weight_sum = 0;
    for (int64_t b = 0; b < n && st.ok(); ++b) {
      for (int64_t j = 0; j < d; ++j) {
        const int64_t t = tgt[static_cast<size_t>(b * d + j)];
        double l = 0, w = 0;
        if (!(ignore && t == *ignore)) {
          if (t < 0 || t >= c) {
            st = ctx.Error("target " + std::to_string(t) + " is out of range [0, " + std::to_string(c) + ")");
            break;
          }
          w = pw ? static_cast<double>(ToCompute(pw[t])) : 1.0;
          l = -logp[static_cast<size_t>((b * c + t) * d + j)] * w;
        }
        if (red == Reduction::kNone) pout[b * d + j] = FromCompute<T>(static_cast<compute_t<T>>(l));
        total += l;
        weight_sum += w;
      }
    }
    if (red == Reduction::kSum) pout[0] = FromCompute<T>(static_cast<compute_t<T>>(total));
    if (red == Reduction::kMean) pout[0] = FromCompute<T>(static_cast<compute_t<T>>(total / weight_sum));
  });
  if (!ok)
    return ctx.UnsupportedError("element type " + std::string(DataTypeName(x.dtype())) + " is not supported");
  KILN_RETURN_IF_ERROR(st);
  ctx.set_output(0, std::move(loss));
  if (want_log_prob) ctx.set_output(1, std::move(log_prob));
  return Status::Ok();
}

}  // namespace

Status InferNegativeLogLikelihoodLoss(InferContext& ctx) { return InferLoss(ctx, false); }
Status InferSoftmaxCrossEntropyLoss(InferContext& ctx) { return InferLoss(ctx, true); }
Status RunNegativeLogLikelihoodLoss(RunContext& ctx) { return RunLoss(ctx, false); }
Status RunSoftmaxCrossEntropyLoss(RunContext& ctx) { return RunLoss(ctx, true); }

}  // namespace ops
}  // namespace kiln
