// Helpers for the elementwise ops of the unary family: apply a scalar function
// to every element of input 0 over a set of dtypes, computing float16/bfloat16
// in float and rounding each result.
#pragma once

#include <cmath>
#include <initializer_list>
#include <string>
#include <type_traits>

#include "core/float8.h"
#include "ops/op_util.h"

namespace kiln {

enum class UnaryTypes { kFloat, kNumeric, kSigned, kInteger };

// Error unless every listed input is given and is a tensor.
inline Status RequireTensorInputs(const RunContext& ctx, std::initializer_list<size_t> inputs) {
  for (size_t i : inputs) {
    if (!ctx.has_input(i)) return ctx.Error("input " + std::to_string(i) + " is required");
    if (ctx.input_value(i).kind != ValueKind::kTensor)
      return ctx.Error("input " + std::to_string(i) + " must be a tensor");
  }
  return Status::Ok();
}

// y = f(x) elementwise with y of x's dtype, for the dtypes of kTypes. f takes
// and returns compute_t<T> (float for Half/BFloat16); write generic lambdas
// (`[](auto v) { ... }`). Only the dtypes of kTypes are instantiated.
template <UnaryTypes kTypes, class F>
Status MapUnary(RunContext& ctx, F&& f) {
  KILN_RETURN_IF_ERROR(RequireTensorInputs(ctx, {0}));
  const Tensor& x = ctx.input(0);
  Tensor y(x.dtype(), x.dims());
  const int64_t n = x.numel();
  auto body = [&](auto tag) {
    using T = decltype(tag);
    const T* in = x.data<T>();
    T* out = y.mutable_data<T>();
    for (int64_t i = 0; i < n; ++i) out[i] = FromCompute<T>(f(ToCompute<T>(in[i])));
  };
  bool ok = false;
  if constexpr (kTypes == UnaryTypes::kFloat) {
    ok = DispatchFloat(x.dtype(), body);
  } else if constexpr (kTypes == UnaryTypes::kNumeric) {
    ok = DispatchNumeric(x.dtype(), body);
  } else if constexpr (kTypes == UnaryTypes::kInteger) {
    ok = DispatchInteger(x.dtype(), body);
  } else {
    ok = DispatchFloat(x.dtype(), body) || (IsSignedInteger(x.dtype()) && DispatchInteger(x.dtype(), body));
  }
  if (!ok)
    return ctx.UnsupportedError("element type " + std::string(DataTypeName(x.dtype())) + " is not supported");
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

// Element i of a floating-point tensor of any float type (float8 included) as double.
inline double FloatElement(const Tensor& t, int64_t i) {
  const uint8_t* b = static_cast<const uint8_t*>(t.raw());
  switch (t.dtype()) {
    case DataType::kFloat8E4M3FN:
      return DecodeFloat(FloatFormat::kE4M3FN, b[i]);
    case DataType::kFloat8E4M3FNUZ:
      return DecodeFloat(FloatFormat::kE4M3FNUZ, b[i]);
    case DataType::kFloat8E5M2:
      return DecodeFloat(FloatFormat::kE5M2, b[i]);
    case DataType::kFloat8E5M2FNUZ:
      return DecodeFloat(FloatFormat::kE5M2FNUZ, b[i]);
    case DataType::kFloat4E2M1:
      return DecodeFloat(FloatFormat::kE2M1, b[i]);
    case DataType::kFloat8E8M0:
      return Float8E8M0ToFloat(b[i]);
    default:
      return t.ScalarAt(i);
  }
}

// Round half to even, independent of the FP environment.
template <class T>
inline T RoundHalfToEven(T v) {
  if (!std::isfinite(v)) return v;
  T r = std::floor(v);
  T diff = v - r;
  if (diff > T(0.5) || (diff == T(0.5) && std::fmod(r, T(2)) != T(0))) r += T(1);
  return r == T(0) ? std::copysign(r, v) : r;  // -0.3 rounds to -0, as IEEE (and numpy) round
}

}  // namespace kiln
