// Softmax, LogSoftmax and Hardmax. Before opset 13 the input is coerced to 2-D
// at `axis` (default 1) and the op works on whole rows; from 13 on it works
// along the single axis `axis` (default -1). Computed in double with the
// row maximum subtracted.
#include <cmath>
#include <limits>
#include <string>

#include "ops/op_table.h"
#include "ops/reduce_util.h"

namespace kiln {
namespace ops {
namespace {

enum class Soft { kSoftmax, kLogSoftmax, kHardmax };

// float16/bfloat16 rows step by step as the ONNX reference does in numpy
// (x - max, exp, sum, divide, then log for LogSoftmax), rounding to T after
// every step, so results match it bit for bit rather than by a 16-bit ulp.
// numpy sums a float16 row along its innermost axis in float and rounds
// once; other float16 sums and all bfloat16 sums round after every add.
template <class T>
void SoftRow16(Soft op, const reduce::AxisView& v, int64_t o, int64_t i, const std::vector<double>& row,
               float mx, T* po) {
  auto r = [](float x) { return static_cast<float>(T(x)); };
  std::vector<float> e(static_cast<size_t>(v.n));
  float sum = 0.0f;
  const bool float_sum = std::is_same_v<T, Half> && v.inner == 1;
  for (int64_t k = 0; k < v.n; ++k) {
    float ek = r(std::exp(r(static_cast<float>(row[static_cast<size_t>(k)]) - mx)));
    e[static_cast<size_t>(k)] = ek;
    sum = float_sum ? sum + ek : r(sum + ek);
  }
  sum = r(sum);
  for (int64_t k = 0; k < v.n; ++k) {
    float y = r(e[static_cast<size_t>(k)] / sum);
    if (op == Soft::kLogSoftmax) y = r(std::log(y));
    po[v.at(o, k, i)] = T(y);
  }
}

Status InferSoft(InferContext& ctx) {
  if (ctx.num_inputs() != 1 || !ctx.has_input(0)) return ctx.Error("expects one input");
  const TypeInfo& in = ctx.input_type(0);
  if (in.shape.rank_known() && in.shape.rank() > 0) {
    const bool legacy = ctx.opset() < 13;
    const int64_t rank = in.shape.rank();
    int64_t axis = 0;
    KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", legacy ? 1 : -1), rank, &axis));
  }
  ctx.set_output_type(0, in);
  return Status::Ok();
}

Status RunSoft(RunContext& ctx, Soft op) {
  if (ctx.num_inputs() != 1 || !ctx.has_input(0)) return ctx.Error("expects one input");
  const Tensor& in = ctx.input(0);
  reduce::AxisView v;
  KILN_RETURN_IF_ERROR(reduce::SoftmaxView(ctx, in.dims(), &v));
  Tensor out(in.dtype(), in.dims());
  bool ok = DispatchFloat(in.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = in.data<T>();
    T* po = out.mutable_data<T>();
    std::vector<double> row(static_cast<size_t>(v.n));
    for (int64_t o = 0; o < v.outer; ++o) {
      for (int64_t i = 0; i < v.inner; ++i) {
        double mx = -std::numeric_limits<double>::infinity();
        int64_t arg = 0;
        for (int64_t k = 0; k < v.n; ++k) {
          double x = static_cast<double>(ToCompute(p[v.at(o, k, i)]));
          row[static_cast<size_t>(k)] = x;
          if (k == 0 || x > mx) {
            mx = x;
            arg = k;
          }
        }
        if (op == Soft::kHardmax) {
          for (int64_t k = 0; k < v.n; ++k) po[v.at(o, k, i)] = FromCompute<T>(k == arg ? 1 : 0);
          continue;
        }
        if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
          SoftRow16<T>(op, v, o, i, row, static_cast<float>(mx), po);
          continue;
        }
        double sum = 0;
        for (int64_t k = 0; k < v.n; ++k) sum += std::exp(row[static_cast<size_t>(k)] - mx);
        const double log_sum = std::log(sum);
        for (int64_t k = 0; k < v.n; ++k) {
          const double z = row[static_cast<size_t>(k)] - mx;
          const double y = op == Soft::kSoftmax ? std::exp(z) / sum : z - log_sum;
          po[v.at(o, k, i)] = FromCompute<T>(static_cast<compute_t<T>>(y));
        }
      }
    }
  });
  if (!ok)
    return ctx.UnsupportedError("element type " + std::string(DataTypeName(in.dtype())) +
                                " is not supported");
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

}  // namespace

Status InferSoftmax(InferContext& ctx) { return InferSoft(ctx); }
Status InferLogSoftmax(InferContext& ctx) { return InferSoft(ctx); }
Status InferHardmax(InferContext& ctx) { return InferSoft(ctx); }
Status RunSoftmax(RunContext& ctx) { return RunSoft(ctx, Soft::kSoftmax); }
Status RunLogSoftmax(RunContext& ctx) { return RunSoft(ctx, Soft::kLogSoftmax); }
Status RunHardmax(RunContext& ctx) { return RunSoft(ctx, Soft::kHardmax); }

}  // namespace ops
}  // namespace kiln
