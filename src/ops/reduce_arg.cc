// Index-producing and scan ops along one axis: ArgMax, ArgMin (keepdims,
// select_last_index; NaN wins as in numpy), CumSum, CumProd (exclusive,
// reverse, axis input) and TopK (largest, sorted; ties keep the lower index
// first, NaN counts as the largest value, as in the ONNX reference).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "ops/binary_util.h"
#include "ops/op_table.h"
#include "ops/reduce_util.h"

namespace kiln {
namespace ops {
namespace {

template <class C>
bool IsNan(C v) {
  if constexpr (std::is_floating_point_v<C>)
    return std::isnan(v);
  else
    return false;
}

// True when a ranks strictly above b in "largest first" order (NaN largest).
template <class C>
bool Above(C a, C b) {
  if (IsNan(a)) return !IsNan(b);
  if (IsNan(b)) return false;
  return a > b;
}

// ---- ArgMax / ArgMin ----

Status InferArg(InferContext& ctx) {
  if (ctx.num_inputs() != 1 || !ctx.has_input(0)) return ctx.Error("expects one input");
  const Shape& in = ctx.input_shape(0);
  const bool keepdims = ctx.attr_int("keepdims", 1) != 0;
  if (!in.rank_known()) {
    ctx.set_output(0, DataType::kInt64, Shape::Unranked());
    return Status::Ok();
  }
  int64_t axis = 0;
  KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", 0), in.rank(), &axis));
  std::vector<bool> mask(static_cast<size_t>(in.rank()), false);
  mask[static_cast<size_t>(axis)] = true;
  ctx.set_output(0, DataType::kInt64, reduce::ReducedShape(in, mask, keepdims));
  return Status::Ok();
}

Status RunArg(RunContext& ctx, bool is_max) {
  if (ctx.num_inputs() != 1 || !ctx.has_input(0)) return ctx.Error("expects one input");
  const Tensor& in = ctx.input(0);
  const bool keepdims = ctx.attr_int("keepdims", 1) != 0;
  const bool last = ctx.attr_int("select_last_index", 0) != 0;
  int64_t axis = 0;
  KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", 0), in.rank(), &axis));
  const reduce::AxisView v = reduce::ViewAround(in.dims(), axis);
  if (v.n == 0 && v.outer * v.inner > 0) return ctx.Error("cannot take the arg of an empty axis");
  std::vector<bool> mask(static_cast<size_t>(in.rank()), false);
  mask[static_cast<size_t>(axis)] = true;
  Tensor out(DataType::kInt64, reduce::ReducedDims(in.dims(), mask, keepdims));
  int64_t* po = out.mutable_data<int64_t>();
  bool ok = DispatchNumeric(in.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = in.data<T>();
    for (int64_t o = 0; o < v.outer; ++o) {
      for (int64_t i = 0; i < v.inner; ++i) {
        int64_t best = 0;
        auto bv = ToCompute(p[v.at(o, 0, i)]);
        for (int64_t k = 1; k < v.n; ++k) {
          auto x = ToCompute(p[v.at(o, k, i)]);
          // NaN ranks first for both ArgMax and ArgMin (numpy).
          bool better;
          if (IsNan(x) || IsNan(bv))
            better = IsNan(x) && (!IsNan(bv) || last);
          else
            better = is_max ? (x > bv || (last && x == bv)) : (x < bv || (last && x == bv));
          if (better) {
            best = k;
            bv = x;
          }
        }
        po[o * v.inner + i] = best;
      }
    }
  });
  if (!ok)
    return ctx.UnsupportedError("element type " + std::string(DataTypeName(in.dtype())) +
                                " is not supported");
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

// ---- CumSum / CumProd ----

Status InferCumulative(InferContext& ctx) {
  if (ctx.num_inputs() != 2 || !ctx.has_input(0) || !ctx.has_input(1))
    return ctx.Error("expects inputs x and axis");
  ctx.set_output_type(0, ctx.input_type(0));
  return Status::Ok();
}

Status RunCumulative(RunContext& ctx, bool product) {
  if (ctx.num_inputs() != 2 || !ctx.has_input(0) || !ctx.has_input(1))
    return ctx.Error("expects inputs x and axis");
  const Tensor& in = ctx.input(0);
  const Tensor& axis_t = ctx.input(1);
  if ((axis_t.dtype() != DataType::kInt64 && axis_t.dtype() != DataType::kInt32) || axis_t.numel() != 1)
    return ctx.Error("axis must be a single int32/int64 value");
  int64_t axis = 0;
  KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, axis_t.IntAt(0), in.rank(), &axis));
  const bool exclusive = ctx.attr_int("exclusive", 0) != 0;
  const bool reverse = ctx.attr_int("reverse", 0) != 0;
  const reduce::AxisView v = reduce::ViewAround(in.dims(), axis);
  Tensor out(in.dtype(), in.dims());
  bool ok = DispatchNumeric(in.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* p = in.data<T>();
    T* po = out.mutable_data<T>();
    for (int64_t o = 0; o < v.outer; ++o) {
      for (int64_t i = 0; i < v.inner; ++i) {
        C acc = product ? C(1) : C(0);
        for (int64_t s = 0; s < v.n; ++s) {
          const int64_t k = reverse ? v.n - 1 - s : s;
          const C x = ToCompute(p[v.at(o, k, i)]);
          C next;
          if constexpr (std::is_integral_v<C>)
            next = product ? binary::WrapMul(acc, x) : binary::WrapAdd(acc, x);
          else
            next = product ? acc * x : acc + x;
          po[v.at(o, k, i)] = FromCompute<T>(exclusive ? acc : next);
          acc = next;
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

// ---- TopK ----

// k as a Dim at inference time (attribute before opset 10, input 1 after).
Dim InferK(const InferContext& ctx) {
  if (ctx.opset() < 10) return Dim(ctx.attr_int("k", 0));
  if (const Tensor* t = ctx.input_data(1)) {
    if (t->numel() == 1) return Dim(t->IntAt(0));
  }
  if (const std::vector<Dim>* s = ctx.input_sym(1)) {
    if (s->size() == 1) return (*s)[0];
  }
  return Dim::Unknown();
}

}  // namespace

Status InferArgMax(InferContext& ctx) { return InferArg(ctx); }
Status InferArgMin(InferContext& ctx) { return InferArg(ctx); }
Status RunArgMax(RunContext& ctx) { return RunArg(ctx, true); }
Status RunArgMin(RunContext& ctx) { return RunArg(ctx, false); }

Status InferCumSum(InferContext& ctx) { return InferCumulative(ctx); }
Status InferCumProd(InferContext& ctx) { return InferCumulative(ctx); }
Status RunCumSum(RunContext& ctx) { return RunCumulative(ctx, false); }
Status RunCumProd(RunContext& ctx) { return RunCumulative(ctx, true); }

Status InferTopK(InferContext& ctx) {
  const size_t want_inputs = ctx.opset() < 10 ? 1 : 2;
  if (ctx.num_inputs() != want_inputs || !ctx.has_input(0) || (want_inputs == 2 && !ctx.has_input(1)))
    return ctx.Error("expects " + std::to_string(want_inputs) + " inputs");
  const TypeInfo& in = ctx.input_type(0);
  Shape shape = Shape::Unranked();
  if (in.shape.rank_known()) {
    int64_t axis = 0;
    KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", -1), in.shape.rank(), &axis));
    shape = in.shape;
    Dim k = InferK(ctx);
    const Dim& n = shape[static_cast<size_t>(axis)];
    if (k.known() && n.known() && k.value() > n.value())
      return ctx.Error("k = " + std::to_string(k.value()) + " is larger than the axis size " + n.ToString());
    shape[static_cast<size_t>(axis)] = k;
  }
  ctx.set_output(0, in.dtype, shape);
  ctx.set_output(1, DataType::kInt64, shape);
  return Status::Ok();
}

Status RunTopK(RunContext& ctx) {
  const size_t want_inputs = ctx.opset() < 10 ? 1 : 2;
  if (ctx.num_inputs() != want_inputs || !ctx.has_input(0) || (want_inputs == 2 && !ctx.has_input(1)))
    return ctx.Error("expects " + std::to_string(want_inputs) + " inputs");
  const Tensor& in = ctx.input(0);
  int64_t k = 0;
  if (want_inputs == 1) {
    k = ctx.attr_int("k", 0);
  } else {
    const Tensor& kt = ctx.input(1);
    if ((kt.dtype() != DataType::kInt64 && kt.dtype() != DataType::kInt32) || kt.numel() != 1)
      return ctx.Error("k must be a single int64 value");
    k = kt.IntAt(0);
  }
  int64_t axis = 0;
  KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", -1), in.rank(), &axis));
  const reduce::AxisView v = reduce::ViewAround(in.dims(), axis);
  if (k < 0 || k > v.n)
    return ctx.Error("k = " + std::to_string(k) + " must be in [0, " + std::to_string(v.n) + "]");
  const bool largest = ctx.opset() < 11 || ctx.attr_int("largest", 1) != 0;
  std::vector<int64_t> out_dims = in.dims();
  out_dims[static_cast<size_t>(axis)] = k;
  Tensor values(in.dtype(), out_dims);
  Tensor indices(DataType::kInt64, out_dims);
  int64_t* pi = indices.mutable_data<int64_t>();
  bool ok = DispatchNumeric(in.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = in.data<T>();
    T* pv = values.mutable_data<T>();
    std::vector<int64_t> order(static_cast<size_t>(v.n));
    for (int64_t o = 0; o < v.outer; ++o) {
      for (int64_t i = 0; i < v.inner; ++i) {
        std::iota(order.begin(), order.end(), int64_t{0});
        auto key = [&](int64_t idx) { return ToCompute(p[v.at(o, idx, i)]); };
        // Stable: equal values keep ascending index order.
        std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
          return largest ? Above(key(a), key(b)) : Above(key(b), key(a));
        });
        for (int64_t j = 0; j < k; ++j) {
          const int64_t src = order[static_cast<size_t>(j)];
          const int64_t dst = (o * k + j) * v.inner + i;
          pv[dst] = p[v.at(o, src, i)];
          pi[dst] = src;
        }
      }
    }
  });
  if (!ok)
    return ctx.UnsupportedError("element type " + std::string(DataTypeName(in.dtype())) +
                                " is not supported");
  ctx.set_output(0, std::move(values));
  ctx.set_output(1, std::move(indices));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
