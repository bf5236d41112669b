// Arithmetic binary ops with numpy broadcasting: Add, Sub, Mul, Div, Pow, Mod,
// PRelu. Integers wrap on overflow and divide C-style (truncating); division
// and modulo by zero give 0 for integers (as numpy does), IEEE results for floats.
#include <cmath>
#include <string>

#include "ops/binary_util.h"
#include "ops/op_table.h"

namespace kiln {
namespace ops {
namespace {

// Shared run wrapper: validates the inputs and applies f to each element pair
// of the common dtype T (computed in compute_t<T>).
template <class F>
Status RunSameType(RunContext& ctx, bool allow_int, F&& f) {
  KILN_RETURN_IF_ERROR(binary::CheckInputs(ctx, 2, 2, true));
  const Tensor& a = ctx.input(0);
  Tensor b = binary::LegacyB(ctx, a, ctx.input(1));
  std::vector<int64_t> dims;
  KILN_RETURN_IF_ERROR(binary::OutputDims(ctx, {&a, &b}, &dims));
  Tensor out(a.dtype(), dims);
  Status st = Status::Ok();
  auto body = [&](auto tag) {
    using T = decltype(tag);
    binary::Apply<T, T, T>(a, b, &out, [&](T x, T y) { return f(x, y); });
  };
  bool ok = DispatchFloat(a.dtype(), body) || (allow_int && DispatchInteger(a.dtype(), body));
  if (!ok)
    return ctx.UnsupportedError("element type " + std::string(DataTypeName(a.dtype())) + " is not supported");
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

template <class T>
T IntDiv(T x, T y) {
  if (y == 0) return 0;
  if constexpr (std::is_signed_v<T>) {
    if (y == -1) return binary::WrapSub<T>(0, x);
  }
  return static_cast<T>(x / y);
}

// Integer modulo: fmod=1 takes the sign of the dividend (C %), fmod=0 the sign
// of the divisor (Python %).
template <class T>
T IntMod(T x, T y, bool fmod) {
  if (y == 0) return 0;
  if constexpr (std::is_signed_v<T>) {
    if (y == -1) return 0;
    T r = static_cast<T>(x % y);
    if (!fmod && r != 0 && ((r < 0) != (y < 0))) r = static_cast<T>(r + y);
    return r;
  } else {
    return static_cast<T>(x % y);
  }
}

// numpy's float modulo (npy_divmod): the result has the sign of the divisor.
template <class C>
C FloatMod(C x, C y, bool fmod) {
  C r = std::fmod(x, y);
  if (fmod || y == 0) return r;
  if (r != 0) {
    if ((y < 0) != (r < 0)) r += y;
  } else {
    r = std::copysign(C(0), y);
  }
  return r;
}

// Integer power with wrapping; negative exponents truncate 1/x^n toward zero.
template <class T, class E>
T IntPow(T base, E exp) {
  if constexpr (std::is_signed_v<E>) {
    if (exp < 0) {
      if (base == 1) return 1;
      if constexpr (std::is_signed_v<T>) {
        if (base == -1) return (exp % 2 == 0) ? T(1) : T(-1);
      }
      return 0;
    }
  }
  T result = 1;
  T b = base;
  uint64_t e = static_cast<uint64_t>(exp);
  while (e) {
    if (e & 1u) result = binary::WrapMul(result, b);
    b = binary::WrapMul(b, b);
    e >>= 1u;
  }
  return result;
}

template <class T, class E>
T PowElem(T x, E y) {
  if constexpr (std::is_integral_v<T> && std::is_integral_v<E>) {
    return IntPow<T, E>(x, y);
  } else if constexpr (std::is_integral_v<T>) {
    return binary::SaturateToInt<T>(std::pow(static_cast<double>(x), static_cast<double>(ToCompute(y))));
  } else {
    return FromCompute<T>(static_cast<compute_t<T>>(
        std::pow(static_cast<double>(ToCompute(x)), static_cast<double>(ToCompute(y)))));
  }
}

Status InferArith(InferContext& ctx, bool same_dtype, Shape* out = nullptr) {
  KILN_RETURN_IF_ERROR(binary::CheckInputs(ctx, 2, 2, same_dtype));
  Shape shape;
  if (binary::IsLegacyBroadcast(ctx)) {
    shape = ctx.input_shape(0);
  } else {
    KILN_RETURN_IF_ERROR(binary::InferBroadcastShape(ctx, 0, &shape));
  }
  if (out) *out = shape;
  ctx.set_output(0, ctx.input_dtype(0), shape);
  return Status::Ok();
}

template <class F>
Status InferArithSym(InferContext& ctx, F&& f) {
  Shape shape;
  KILN_RETURN_IF_ERROR(InferArith(ctx, true, &shape));
  DataType dt = ctx.input_dtype(0);
  if (dt != DataType::kInt64 && dt != DataType::kInt32) return Status::Ok();
  binary::PropagateSym(ctx, shape, [&](const std::vector<binary::SymInt>& v) { return f(v[0], v[1]); });
  return Status::Ok();
}

}  // namespace

using binary::SymInt;

Status InferAdd(InferContext& ctx) {
  return InferArithSym(ctx, [](const SymInt& a, const SymInt& b) {
    if (a.value && b.value) return SymInt::Const(*a.value + *b.value);
    return SymInt::FromDim(a.dim + b.dim);
  });
}

Status InferSub(InferContext& ctx) {
  return InferArithSym(ctx, [](const SymInt& a, const SymInt& b) {
    if (a.value && b.value) return SymInt::Const(*a.value - *b.value);
    if (b.value && *b.value < 0) return SymInt::FromDim(a.dim + Dim(-*b.value));
    return SymInt::FromDim(a.dim - b.dim);
  });
}

Status InferMul(InferContext& ctx) {
  return InferArithSym(ctx, [](const SymInt& a, const SymInt& b) {
    if (a.value && b.value) return SymInt::Const(*a.value * *b.value);
    return SymInt::FromDim(a.dim * b.dim);
  });
}

Status InferDiv(InferContext& ctx) {
  return InferArithSym(ctx, [](const SymInt& a, const SymInt& b) {
    if (a.value && b.value) return SymInt::Const(IntDiv<int64_t>(*a.value, *b.value));
    // Dims are >= 0, so truncating and floor division agree for a positive divisor.
    if (b.value && *b.value > 0) return SymInt::FromDim(a.dim.FloorDiv(b.dim));
    return SymInt{std::nullopt, Dim::Unknown()};
  });
}

Status InferMod(InferContext& ctx) { return InferArith(ctx, true); }
Status InferPow(InferContext& ctx) { return InferArith(ctx, false); }

Status InferPRelu(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(binary::CheckInputs(ctx, 2, 2, true));
  Shape shape;
  KILN_RETURN_IF_ERROR(binary::InferBroadcastShape(ctx, 0, &shape));
  // Slope broadcasts to X (unidirectional): the output keeps X's shape.
  const Shape& x = ctx.input_shape(0);
  ctx.set_output(0, ctx.input_dtype(0), x.rank_known() && x.rank() == shape.rank() ? x : shape);
  return Status::Ok();
}

Status RunAdd(RunContext& ctx) {
  return RunSameType(ctx, true, [](auto x, auto y) {
    using T = decltype(x);
    if constexpr (std::is_integral_v<T>)
      return binary::WrapAdd(x, y);
    else
      return FromCompute<T>(ToCompute(x) + ToCompute(y));
  });
}

Status RunSub(RunContext& ctx) {
  return RunSameType(ctx, true, [](auto x, auto y) {
    using T = decltype(x);
    if constexpr (std::is_integral_v<T>)
      return binary::WrapSub(x, y);
    else
      return FromCompute<T>(ToCompute(x) - ToCompute(y));
  });
}

Status RunMul(RunContext& ctx) {
  return RunSameType(ctx, true, [](auto x, auto y) {
    using T = decltype(x);
    if constexpr (std::is_integral_v<T>)
      return binary::WrapMul(x, y);
    else
      return FromCompute<T>(ToCompute(x) * ToCompute(y));
  });
}

Status RunDiv(RunContext& ctx) {
  return RunSameType(ctx, true, [](auto x, auto y) {
    using T = decltype(x);
    if constexpr (std::is_integral_v<T>)
      return IntDiv(x, y);
    else
      return FromCompute<T>(ToCompute(x) / ToCompute(y));
  });
}

Status RunMod(RunContext& ctx) {
  const int64_t fmod_attr = ctx.attr_int("fmod", 0);
  if (fmod_attr != 0 && fmod_attr != 1) return ctx.Error("attribute fmod must be 0 or 1");
  const bool fmod = fmod_attr == 1;
  return RunSameType(ctx, true, [fmod](auto x, auto y) {
    using T = decltype(x);
    if constexpr (std::is_integral_v<T>)
      return IntMod(x, y, fmod);
    else
      return FromCompute<T>(FloatMod(ToCompute(x), ToCompute(y), fmod));
  });
}

Status RunPow(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(binary::CheckInputs(ctx, 2, 2, false));
  const Tensor& a = ctx.input(0);
  const Tensor b = binary::LegacyB(ctx, a, ctx.input(1));
  std::vector<int64_t> dims;
  KILN_RETURN_IF_ERROR(binary::OutputDims(ctx, {&a, &b}, &dims));
  Tensor out(a.dtype(), dims);
  bool exp_ok = true;
  bool base_ok = DispatchNumeric(a.dtype(), [&](auto base_tag) {
    using T = decltype(base_tag);
    exp_ok = DispatchNumeric(b.dtype(), [&](auto exp_tag) {
      using E = decltype(exp_tag);
      binary::Apply<T, E, T>(a, b, &out, [](T x, E y) { return PowElem<T, E>(x, y); });
    });
  });
  if (!base_ok || !exp_ok)
    return ctx.UnsupportedError("element types " + std::string(DataTypeName(a.dtype())) + " ^ " +
                                std::string(DataTypeName(b.dtype())) + " are not supported");
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

Status RunPRelu(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(binary::CheckInputs(ctx, 2, 2, true));
  const Tensor& x = ctx.input(0);
  const Tensor& slope = ctx.input(1);
  std::vector<int64_t> dims;
  KILN_RETURN_IF_ERROR(binary::OutputDims(ctx, {&x, &slope}, &dims));
  Tensor out(x.dtype(), dims);
  auto body = [&](auto tag) {
    using T = decltype(tag);
    binary::Apply<T, T, T>(x, slope, &out, [](T v, T s) -> T {
      if constexpr (std::is_integral_v<T>) {
        return v < 0 ? binary::WrapMul(v, s) : v;
      } else {
        auto cv = ToCompute(v);
        return cv < 0 ? FromCompute<T>(cv * ToCompute(s)) : v;
      }
    });
  };
  if (!DispatchNumeric(x.dtype(), body))
    return ctx.UnsupportedError("element type " + std::string(DataTypeName(x.dtype())) + " is not supported");
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
