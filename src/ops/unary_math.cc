// Elementwise math of the unary family: Abs Neg Exp Log Sqrt Reciprocal Floor
// Ceil Round Sign Erf, trigonometric and hyperbolic functions, Not,
// BitwiseNot, IsNaN, IsInf, and Identity (tensors, sequences, optionals).
#include <cmath>
#include <type_traits>

#include "ops/op_table.h"
#include "ops/unary_util.h"

namespace kiln {
namespace ops {

Status InferUnary(InferContext& ctx) { return InferSameAsInput(ctx); }

Status InferUnaryToBool(InferContext& ctx) {
  if (!ctx.has_input(0)) return ctx.Error("expects an input");
  ctx.set_output(0, DataType::kBool, ctx.input_shape(0));
  return Status::Ok();
}

Status RunAbs(RunContext& ctx) {
  return MapUnary<UnaryTypes::kNumeric>(ctx, [](auto v) {
    using C = decltype(v);
    if constexpr (std::is_unsigned_v<C>)
      return v;
    else if constexpr (std::is_floating_point_v<C>)
      return std::fabs(v);
    else
      return static_cast<C>(v < 0 ? -v : v);
  });
}

Status RunNeg(RunContext& ctx) {
  return MapUnary<UnaryTypes::kSigned>(ctx, [](auto v) { return static_cast<decltype(v)>(-v); });
}

Status RunSign(RunContext& ctx) {
  return MapUnary<UnaryTypes::kNumeric>(ctx, [](auto v) {
    using C = decltype(v);
    if constexpr (std::is_floating_point_v<C>) {
      if (std::isnan(v)) return v;
    }
    return static_cast<C>(v > C(0) ? 1 : (v < C(0) ? -1 : 0));
  });
}

#define KILN_FLOAT_UNARY(Name, expr)                                       \
  Status Run##Name(RunContext& ctx) {                                      \
    return MapUnary<UnaryTypes::kFloat>(ctx, [](auto v) { return expr; }); \
  }

KILN_FLOAT_UNARY(Exp, std::exp(v))
KILN_FLOAT_UNARY(Log, std::log(v))
KILN_FLOAT_UNARY(Sqrt, std::sqrt(v))
KILN_FLOAT_UNARY(Reciprocal, decltype(v)(1) / v)
KILN_FLOAT_UNARY(Floor, std::floor(v))
KILN_FLOAT_UNARY(Ceil, std::ceil(v))
KILN_FLOAT_UNARY(Round, RoundHalfToEven(v))
KILN_FLOAT_UNARY(Erf, std::erf(v))
KILN_FLOAT_UNARY(Sin, std::sin(v))
KILN_FLOAT_UNARY(Cos, std::cos(v))
KILN_FLOAT_UNARY(Tan, std::tan(v))
KILN_FLOAT_UNARY(Asin, std::asin(v))
KILN_FLOAT_UNARY(Acos, std::acos(v))
KILN_FLOAT_UNARY(Atan, std::atan(v))
KILN_FLOAT_UNARY(Sinh, std::sinh(v))
KILN_FLOAT_UNARY(Cosh, std::cosh(v))
KILN_FLOAT_UNARY(Asinh, std::asinh(v))
KILN_FLOAT_UNARY(Acosh, std::acosh(v))
KILN_FLOAT_UNARY(Atanh, std::atanh(v))

#undef KILN_FLOAT_UNARY

Status RunNot(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(RequireTensorInputs(ctx, {0}));
  const Tensor& x = ctx.input(0);
  if (x.dtype() != DataType::kBool) return ctx.Error("Not expects a bool tensor");
  Tensor y(DataType::kBool, x.dims());
  const uint8_t* in = x.data<uint8_t>();
  uint8_t* out = y.mutable_data<uint8_t>();
  for (int64_t i = 0; i < x.numel(); ++i) out[i] = in[i] ? 0 : 1;
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

Status RunBitwiseNot(RunContext& ctx) {
  return MapUnary<UnaryTypes::kInteger>(ctx, [](auto v) { return static_cast<decltype(v)>(~v); });
}

namespace {

// y[i] = pred(x[i]) for float inputs of any float type (float8 included).
template <class P>
Status MapFloatToBool(RunContext& ctx, P&& pred) {
  KILN_RETURN_IF_ERROR(RequireTensorInputs(ctx, {0}));
  const Tensor& x = ctx.input(0);
  if (!IsFloatingPoint(x.dtype()))
    return ctx.UnsupportedError("element type " + std::string(DataTypeName(x.dtype())) + " is not supported");
  Tensor y(DataType::kBool, x.dims());
  uint8_t* out = y.mutable_data<uint8_t>();
  for (int64_t i = 0; i < x.numel(); ++i) out[i] = pred(FloatElement(x, i)) ? 1 : 0;
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace

Status RunIsNaN(RunContext& ctx) {
  return MapFloatToBool(ctx, [](double v) { return std::isnan(v); });
}

Status RunIsInf(RunContext& ctx) {
  const bool neg = ctx.attr_int("detect_negative", 1) != 0;
  const bool pos = ctx.attr_int("detect_positive", 1) != 0;
  return MapFloatToBool(ctx, [&](double v) { return std::isinf(v) && (v > 0 ? pos : neg); });
}

// Identity passes any value through: tensor, sequence or optional.
Status InferIdentity(InferContext& ctx) {
  if (!ctx.has_input(0)) return ctx.Error("expects an input");
  ctx.set_output_type(0, ctx.input_type(0));
  if (const auto* sym = ctx.input_sym(0)) ctx.set_output_sym(0, *sym);
  return Status::Ok();
}

Status RunIdentity(RunContext& ctx) {
  if (!ctx.has_input(0)) return ctx.Error("expects an input");
  ctx.set_output_value(0, ctx.input_value(0));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
