// Variadic elementwise ops with numpy broadcasting over all inputs: Max, Min,
// Sum, Mean. Max/Min propagate NaN (as numpy.maximum); Sum and Mean add the
// inputs in order in the input type (16-bit floats round after each add) and
// Mean divides once.
#include <cmath>
#include <string>

#include "ops/binary_util.h"
#include "ops/op_table.h"

namespace kiln {
namespace ops {
namespace {

using binary::SymInt;

enum class Fold { kMax, kMin, kSum, kMean };

template <class C>
C Combine(Fold op, C acc, C x) {
  switch (op) {
    case Fold::kMax:
      if constexpr (std::is_floating_point_v<C>) {
        if (std::isnan(acc) || std::isnan(x)) return std::isnan(acc) ? acc : x;
      }
      return x > acc ? x : acc;
    case Fold::kMin:
      if constexpr (std::is_floating_point_v<C>) {
        if (std::isnan(acc) || std::isnan(x)) return std::isnan(acc) ? acc : x;
      }
      return x < acc ? x : acc;
    case Fold::kSum:
    case Fold::kMean:
      if constexpr (std::is_integral_v<C>)
        return binary::WrapAdd(acc, x);
      else
        return acc + x;
  }
  return acc;
}

Status InferFold(InferContext& ctx, Fold op) {
  KILN_RETURN_IF_ERROR(binary::CheckInputs(ctx, 1, SIZE_MAX, true));
  Shape shape;
  KILN_RETURN_IF_ERROR(binary::InferBroadcastShape(ctx, 0, &shape));
  DataType dt = DataType::kUndefined;
  for (size_t i = 0; i < ctx.num_inputs() && dt == DataType::kUndefined; ++i) dt = ctx.input_dtype(i);
  ctx.set_output(0, dt, shape);
  if ((op == Fold::kMax || op == Fold::kMin) && (dt == DataType::kInt64 || dt == DataType::kInt32)) {
    binary::PropagateSym(ctx, shape, [op](const std::vector<SymInt>& v) {
      SymInt acc = v[0];
      for (size_t k = 1; k < v.size(); ++k) {
        if (acc.value && v[k].value) {
          acc = SymInt::Const(op == Fold::kMax ? std::max(*acc.value, *v[k].value)
                                               : std::min(*acc.value, *v[k].value));
        } else if (acc.dim.symbolic() && acc.dim == v[k].dim) {
          continue;
        } else if (op == Fold::kMax && v[k].value && *v[k].value <= 0 && !acc.dim.unknown()) {
          continue;  // a dim is >= 0: max(dim, c <= 0) is the dim
        } else if (op == Fold::kMax && acc.value && *acc.value <= 0 && !v[k].dim.unknown()) {
          acc = v[k];
        } else {
          return SymInt{std::nullopt, Dim::Unknown()};
        }
      }
      return acc;
    });
  }
  return Status::Ok();
}

Status RunFold(RunContext& ctx, Fold op) {
  KILN_RETURN_IF_ERROR(binary::CheckInputs(ctx, 1, SIZE_MAX, true));
  std::vector<const Tensor*> ins;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) ins.push_back(&ctx.input(i));
  std::vector<int64_t> dims;
  KILN_RETURN_IF_ERROR(binary::OutputDims(ctx, ins, &dims));
  const DataType dt = ins[0]->dtype();
  Tensor out(dt, dims);
  auto body = [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const int64_t n = out.numel();
    std::vector<C> acc(static_cast<size_t>(n));
    for (size_t k = 0; k < ins.size(); ++k) {
      const T* p = ins[k]->data<T>();
      int64_t i = 0;
      ForEachBroadcast(dims, {BroadcastStrides(ins[k]->dims(), dims)}, [&](const std::vector<int64_t>& off) {
        C x = ToCompute(p[off[0]]);
        C v = k == 0 ? x : Combine(op, acc[static_cast<size_t>(i)], x);
        // 16-bit floats round after every step, as numpy adds float16 arrays.
        acc[static_cast<size_t>(i)] = ToCompute(FromCompute<T>(v));
        ++i;
      });
    }
    T* po = out.mutable_data<T>();
    for (int64_t i = 0; i < n; ++i) {
      C v = acc[static_cast<size_t>(i)];
      if (op == Fold::kMean) v = static_cast<C>(v / static_cast<C>(ins.size()));
      po[i] = FromCompute<T>(v);
    }
  };
  bool ok = op == Fold::kMean ? DispatchFloat(dt, body) : DispatchNumeric(dt, body);
  if (!ok) return ctx.UnsupportedError("element type " + std::string(DataTypeName(dt)) + " is not supported");
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

}  // namespace

Status InferMax(InferContext& ctx) { return InferFold(ctx, Fold::kMax); }
Status InferMin(InferContext& ctx) { return InferFold(ctx, Fold::kMin); }
Status InferSum(InferContext& ctx) { return InferFold(ctx, Fold::kSum); }
Status InferMean(InferContext& ctx) { return InferFold(ctx, Fold::kMean); }
Status RunMax(RunContext& ctx) { return RunFold(ctx, Fold::kMax); }
Status RunMin(RunContext& ctx) { return RunFold(ctx, Fold::kMin); }
Status RunSum(RunContext& ctx) { return RunFold(ctx, Fold::kSum); }
Status RunMean(RunContext& ctx) { return RunFold(ctx, Fold::kMean); }

}  // namespace ops
}  // namespace kiln
