// The Reduce* ops: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd,
// ReduceL1, ReduceL2, ReduceLogSum, ReduceLogSumExp, ReduceSumSquare. Axes are
// an attribute before opset 13 (ReduceSum) / 18 (the others) and input 1 from
// then on. Floats accumulate in double; integers in their own type, wrapping
// (as numpy with dtype=input dtype). Reducing an empty set gives the identity
// of the reduction (0, 1, -inf for max, +inf for min, NaN for mean).
// noop_with_empty_axes with no axes keeps every element but still applies the
// element-wise part (ReduceL1 gives |x|), as the ONNX reference does.
#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include "ops/binary_util.h"
#include "ops/op_table.h"
#include "ops/reduce_util.h"

namespace kiln {
namespace ops {
namespace {

enum class Red { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kLogSum, kLogSumExp, kSumSquare };

int64_t AxesInputSince(Red op) { return op == Red::kSum ? 13 : 18; }

// Symbolic value of reducing a whole shape vector (e.g. ReduceProd(Shape(x))
// for the element count), when its contents are known symbolically.
void ReduceSym(InferContext& ctx, Red op) {
  if (ctx.input_data(0) || !ctx.input_sym(0)) return;
  std::optional<std::vector<binary::SymInt>> vals = binary::ReadSymInts(ctx, 0);
  if (!vals || vals->empty()) return;
  Dim acc;
  if (op == Red::kProd || op == Red::kSum) {
    // Fold the known values first so the result reads "batch*12", not "(batch*3)*4".
    int64_t known = op == Red::kProd ? 1 : 0;
    std::optional<Dim> sym;
    for (const binary::SymInt& v : *vals) {
      if (v.dim.known())
        known = op == Red::kProd ? known * v.dim.value() : known + v.dim.value();
      else
        sym = !sym ? v.dim : (op == Red::kProd ? *sym * v.dim : *sym + v.dim);
    }
    acc = !sym ? Dim(known) : (op == Red::kProd ? *sym * Dim(known) : *sym + Dim(known));
  } else if (op == Red::kMax || op == Red::kMin) {
    acc = (*vals)[0].dim;
    for (size_t k = 1; k < vals->size(); ++k) {
      const Dim& d = (*vals)[k].dim;
      if (acc.known() && d.known())
        acc = op == Red::kMax ? std::max(acc.value(), d.value()) : std::min(acc.value(), d.value());
      else if (!(acc == d))
        acc = Dim::Unknown();
    }
  } else {
    return;
  }
  binary::WriteSymInts(ctx, {binary::SymInt::FromDim(acc)});
}

Status InferReduce(InferContext& ctx, Red op) {
  if (ctx.num_inputs() < 1 || !ctx.has_input(0)) return ctx.Error("expects input data");
  const TypeInfo& in = ctx.input_type(0);
  const bool keepdims = ctx.attr_int("keepdims", 1) != 0;
  reduce::AxesSpec spec = reduce::InferAxes(ctx, AxesInputSince(op));
  if (!in.shape.rank_known()) {
    ctx.set_output(0, in.dtype, Shape::Unranked());
    return Status::Ok();
  }
  const int64_t rank = in.shape.rank();
  if (spec.noop) {
    ctx.set_output(0, in.dtype, in.shape);
    return Status::Ok();
  }
  if (!spec.known) {
    // Axes unknown: with keepdims the rank stays and dims of 1 stay 1.
    if (keepdims) {
      std::vector<Dim> dims;
      for (const Dim& d : in.shape.dims())
        dims.push_back(d.known() && d.value() == 1 ? Dim(1) : Dim::Unknown());
      ctx.set_output(0, in.dtype, Shape(dims));
      return Status::Ok();
    }
    const Shape& axes_shape = ctx.input_shape(1);
    if (axes_shape.rank() == 1 && axes_shape[0].known() && axes_shape[0].value() > 0 &&
        axes_shape[0].value() <= rank) {
      ctx.set_output(0, in.dtype, Shape(std::vector<Dim>(static_cast<size_t>(rank - axes_shape[0].value()))));
    } else {
      ctx.set_output(0, in.dtype, Shape::Unranked());
    }
    return Status::Ok();
  }
  std::vector<bool> mask;
  KILN_RETURN_IF_ERROR(reduce::AxesMask(ctx, spec.axes, rank, &mask));
  ctx.set_output(0, in.dtype, reduce::ReducedShape(in.shape, mask, keepdims));
  if (rank == 1 && mask[0] && (in.dtype == DataType::kInt64 || in.dtype == DataType::kInt32))
    ReduceSym(ctx, op);
  return Status::Ok();
}

// Reduction state and rules for one element type T, accumulating in A.
template <class T>
struct Reducer {
  static constexpr bool kFloat = !std::is_integral_v<T>;
  // uint8_t for bool: std::vector<bool> has no element references.
  using A = std::conditional_t<kFloat, double, std::conditional_t<std::is_same_v<T, bool>, uint8_t, T>>;

  static A Init(Red op) {
    switch (op) {
      case Red::kProd:
        return A(1);
      case Red::kMax:
        if constexpr (kFloat)
          return -std::numeric_limits<double>::infinity();
        else
          return std::numeric_limits<T>::lowest();
      case Red::kMin:
        if constexpr (kFloat)
          return std::numeric_limits<double>::infinity();
        else
          return std::numeric_limits<T>::max();
      default:
        return A(0);
    }
  }

  // `shift` is the group's max for LogSumExp.
  static A Step(Red op, A acc, T raw, A shift) {
    A x = static_cast<A>(ToCompute(raw));
    if constexpr (std::is_same_v<T, bool>) {
      return static_cast<A>(op == Red::kMax ? (acc || x) : (acc && x));
    } else if constexpr (kFloat) {
      switch (op) {
        case Red::kMax:
          if (std::isnan(acc) || std::isnan(x)) return std::isnan(acc) ? acc : x;
          return x > acc ? x : acc;
        case Red::kMin:
          if (std::isnan(acc) || std::isnan(x)) return std::isnan(acc) ? acc : x;
          return x < acc ? x : acc;
        case Red::kProd:
          return acc * x;
        case Red::kL1:
          return acc + std::fabs(x);
        case Red::kL2:
        case Red::kSumSquare:
          return acc + x * x;
        case Red::kLogSumExp:
          return acc + std::exp(x - shift);
        default:
          return acc + x;
      }
    } else {
      switch (op) {
        case Red::kMax:
          return x > acc ? x : acc;
        case Red::kMin:
          return x < acc ? x : acc;
        case Red::kProd:
          return binary::WrapMul(acc, x);
        case Red::kL1:
          if constexpr (std::is_signed_v<T>)
            return binary::WrapAdd(acc, x < 0 ? binary::WrapSub(T(0), x) : x);
          else
            return binary::WrapAdd(acc, x);
        case Red::kL2:
        case Red::kSumSquare:
          return binary::WrapAdd(acc, binary::WrapMul(x, x));
        default:
          return binary::WrapAdd(acc, x);
      }
    }
  }

  static T Finish(Red op, A acc, int64_t count, A shift) {
    if constexpr (std::is_same_v<T, bool>) {
      return acc != 0;
    } else {
      double v = static_cast<double>(acc);
      switch (op) {
        case Red::kMean:
          v = v / static_cast<double>(count);
          break;
        case Red::kL2:
          v = std::sqrt(v);
          break;
        case Red::kLogSum:
          v = std::log(v);
          break;
        case Red::kLogSumExp:
          if (count == 0)
            v = -std::numeric_limits<double>::infinity();
          else if (std::isinf(static_cast<double>(shift)) || std::isnan(static_cast<double>(shift)))
            v = static_cast<double>(shift);
          else
            v = static_cast<double>(shift) + std::log(v);
          break;
        default:
          if constexpr (!kFloat) return acc;  // integer sums keep their wrapped value
          break;
      }
      if constexpr (kFloat)
        return FromCompute<T>(static_cast<compute_t<T>>(v));
      else
        return binary::SaturateToInt<T>(v);
    }
  }
};

template <class T>
void ReduceTyped(Red op, const Tensor& in, const std::vector<bool>& mask, Tensor* out) {
  using R = Reducer<T>;
  using A = typename R::A;
  const std::vector<int64_t>& dims = in.dims();
  std::vector<int64_t> kept = reduce::ReducedDims(dims, mask, true);
  std::vector<int64_t> kept_strides = Strides(kept);
  std::vector<int64_t> map(dims.size(), 0);  // input dim -> stride in the output (0 when reduced)
  int64_t count = 1;
  for (size_t d = 0; d < dims.size(); ++d) {
    if (mask[d])
      count *= dims[d];
    else
      map[d] = kept_strides[d];
  }
  const int64_t n_out = out->numel();
  std::vector<A> shift(static_cast<size_t>(n_out), A(0));
  const T* p = in.data<T>();
  if (op == Red::kLogSumExp) {
    std::fill(shift.begin(), shift.end(), R::Init(Red::kMax));
    int64_t i = 0;
    ForEachBroadcast(dims, {map}, [&](const std::vector<int64_t>& off) {
      A& s = shift[static_cast<size_t>(off[0])];
      s = R::Step(Red::kMax, s, p[i++], A(0));
    });
  }
  std::vector<A> acc(static_cast<size_t>(n_out), R::Init(op));
  int64_t i = 0;
  ForEachBroadcast(dims, {map}, [&](const std::vector<int64_t>& off) {
    size_t o = static_cast<size_t>(off[0]);
    acc[o] = R::Step(op, acc[o], p[i++], shift[o]);
  });
  T* po = out->mutable_data<T>();
  for (int64_t k = 0; k < n_out; ++k)
    po[k] = R::Finish(op, acc[static_cast<size_t>(k)], count, shift[static_cast<size_t>(k)]);
}

Status RunReduce(RunContext& ctx, Red op) {
  if (ctx.num_inputs() < 1 || !ctx.has_input(0)) return ctx.Error("expects input data");
  const Tensor& in = ctx.input(0);
  const bool keepdims = ctx.attr_int("keepdims", 1) != 0;
  reduce::AxesSpec spec;
  KILN_RETURN_IF_ERROR(reduce::RunAxes(ctx, AxesInputSince(op), &spec));
  // noop_with_empty_axes reduces nothing, but the element-wise part still
  // applies (ReduceL1 gives |x|, ReduceSumSquare x^2), as in the ONNX reference.
  std::vector<bool> mask(static_cast<size_t>(in.rank()), false);
  if (!spec.noop) KILN_RETURN_IF_ERROR(reduce::AxesMask(ctx, spec.axes, in.rank(), &mask));
  Tensor out(in.dtype(), reduce::ReducedDims(in.dims(), mask, true));
  auto body = [&](auto tag) { ReduceTyped<decltype(tag)>(op, in, mask, &out); };
  bool ok = (op == Red::kMax || op == Red::kMin) ? DispatchAll(in.dtype(), body)
                                                 : DispatchNumeric(in.dtype(), body);
  if (!ok)
    return ctx.UnsupportedError("element type " + std::string(DataTypeName(in.dtype())) +
                                " is not supported");
  ctx.set_output(0, out.Reshaped(reduce::ReducedDims(in.dims(), mask, keepdims)));
  return Status::Ok();
}

}  // namespace

#define KILN_REDUCE_OP(Name, Op)                                         \
  Status Infer##Name(InferContext& ctx) { return InferReduce(ctx, Op); } \
  Status Run##Name(RunContext& ctx) { return RunReduce(ctx, Op); }
KILN_REDUCE_OP(ReduceSum, Red::kSum)
KILN_REDUCE_OP(ReduceMean, Red::kMean)
KILN_REDUCE_OP(ReduceMax, Red::kMax)
KILN_REDUCE_OP(ReduceMin, Red::kMin)
KILN_REDUCE_OP(ReduceProd, Red::kProd)
KILN_REDUCE_OP(ReduceL1, Red::kL1)
KILN_REDUCE_OP(ReduceL2, Red::kL2)
KILN_REDUCE_OP(ReduceLogSum, Red::kLogSum)
KILN_REDUCE_OP(ReduceLogSumExp, Red::kLogSumExp)
KILN_REDUCE_OP(ReduceSumSquare, Red::kSumSquare)
#undef KILN_REDUCE_OP

}  // namespace ops
}  // namespace kiln
