// Small floating-point formats: float8 (e4m3fn, e4m3fnuz, e5m2, e5m2fnuz,
// e8m0), float4 e2m1, plus float16/bfloat16 from double. Conversions round to
// nearest even (as ml_dtypes and the ONNX reference do) and follow the ONNX
// Cast tables for NaN, infinity, -0 and overflow, with and without `saturate`.
// Values are held as their bit patterns (uint8_t for the 8- and 4-bit types,
// one 4-bit element per byte in the low nibble).
// The conversions are KILN_HOST_DEVICE: the CUDA Cast kernel (cast_small.cu)
// runs these very functions, so GPU and CPU agree by construction.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/host_device.h"

namespace kiln {

enum class FloatFormat : uint8_t { kFloat16, kBFloat16, kE4M3FN, kE4M3FNUZ, kE5M2, kE5M2FNUZ, kE2M1 };

namespace float8_detail {

struct FormatInfo {
  int exp_bits;
  int man_bits;
  int bias;
  double max;    // largest finite value
  bool has_inf;  // IEEE-like inf/NaN encoding (float16, bfloat16, e5m2)
  bool fnuz;     // NaN = 0x80, no -0 (the *fnuz types)
  bool no_nan;   // e2m1: neither inf nor NaN
};

KILN_HOST_DEVICE inline FormatInfo Info(FloatFormat f) {
  switch (f) {
    case FloatFormat::kFloat16: return {5, 10, 15, 65504.0, true, false, false};
    case FloatFormat::kBFloat16: return {8, 7, 127, 3.3895313892515355e38, true, false, false};
    case FloatFormat::kE4M3FN: return {4, 3, 7, 448.0, false, false, false};
    case FloatFormat::kE4M3FNUZ: return {4, 3, 8, 240.0, false, true, false};
    case FloatFormat::kE5M2: return {5, 2, 15, 57344.0, true, false, false};
    case FloatFormat::kE5M2FNUZ: return {5, 2, 16, 57344.0, false, true, false};
    default: return {2, 1, 1, 6.0, false, false, true};  // e2m1
  }
}

KILN_HOST_DEVICE inline uint32_t SignBit(const FormatInfo& fi) { return 1u << (fi.exp_bits + fi.man_bits); }

KILN_HOST_DEVICE inline uint32_t NanCode(const FormatInfo& fi, bool neg) {
  uint32_t sign = neg ? SignBit(fi) : 0u;
  uint32_t exp_all = ((1u << fi.exp_bits) - 1u) << fi.man_bits;
  if (fi.fnuz) return SignBit(fi);
  if (fi.no_nan) return neg ? 0u : SignBit(fi);                       // what ml_dtypes produces for e2m1
  if (fi.has_inf) return sign | exp_all | (1u << (fi.man_bits - 1));  // quiet NaN
  return sign | exp_all | ((1u << fi.man_bits) - 1u);                 // e4m3fn: S.1111.111
}

KILN_HOST_DEVICE inline uint32_t MaxCode(const FormatInfo& fi, bool neg) {
  uint32_t sign = neg ? SignBit(fi) : 0u;
  uint32_t all = (1u << (fi.exp_bits + fi.man_bits)) - 1u;
  if (fi.has_inf) return sign | (all - (1u << fi.man_bits));  // exponent all-ones is inf/NaN
  if (fi.fnuz || fi.no_nan) return sign | all;
  return sign | (all - 1u);  // e4m3fn: S.1111.110
}

// Round to nearest, ties to even, without depending on the FP environment.
KILN_HOST_DEVICE inline double RoundHalfEven(double v) {
  double r = std::floor(v);
  double diff = v - r;
  if (diff > 0.5 || (diff == 0.5 && std::fmod(r, 2.0) != 0.0)) r += 1.0;
  return r;
}

}  // namespace float8_detail

// Encodes x in format f. `saturate` clamps out-of-range values and infinities
// to +-max (float16/bfloat16 ignore it and overflow to inf, as IEEE does).
KILN_HOST_DEVICE inline uint32_t EncodeFloat(FloatFormat f, double x, bool saturate) {
  using namespace float8_detail;
  const FormatInfo fi = Info(f);
  const bool neg = std::signbit(x);
  const uint32_t sign = neg ? SignBit(fi) : 0u;
  if (std::isnan(x)) return NanCode(fi, neg);
  const bool sat = saturate && f != FloatFormat::kFloat16 && f != FloatFormat::kBFloat16;
  auto overflow = [&]() -> uint32_t {
    if (sat || fi.no_nan) return MaxCode(fi, neg);
    if (fi.has_inf) return sign | (((1u << fi.exp_bits) - 1u) << fi.man_bits);
    return NanCode(fi, neg);
  };
  double a = std::fabs(x);
  if (std::isinf(a)) return overflow();
  if (a == 0.0) return fi.fnuz ? 0u : sign;
  const int emin = 1 - fi.bias;  // exponent of the smallest normal
  int e2 = 0;
  std::frexp(a, &e2);  // a = m * 2^e2, m in [0.5, 1)
  int e = e2 - 1 < emin ? emin : e2 - 1;
  double q = std::ldexp(1.0, e - fi.man_bits);  // spacing of representable values near a
  double r = RoundHalfEven(a / q) * q;
  if (r > fi.max) return overflow();
  if (r == 0.0) return fi.fnuz ? 0u : sign;
  std::frexp(r, &e2);
  e = e2 - 1;
  uint32_t exp_field, man;
  if (e < emin) {
    exp_field = 0;
    man = static_cast<uint32_t>(r / std::ldexp(1.0, emin - fi.man_bits));
  } else {
    exp_field = static_cast<uint32_t>(e + fi.bias);
    man = static_cast<uint32_t>(r / std::ldexp(1.0, e - fi.man_bits)) - (1u << fi.man_bits);
  }
  return sign | (exp_field << fi.man_bits) | man;
}

KILN_HOST_DEVICE inline double DecodeFloat(FloatFormat f, uint32_t bits) {
  using namespace float8_detail;
  const FormatInfo fi = Info(f);
  const uint32_t sign_bit = SignBit(fi);
  bits &= (sign_bit << 1) - 1u;
  const bool neg = (bits & sign_bit) != 0;
  const uint32_t exp_max = (1u << fi.exp_bits) - 1u;
  const uint32_t exp = (bits >> fi.man_bits) & exp_max;
  const uint32_t man = bits & ((1u << fi.man_bits) - 1u);
  if (fi.fnuz && bits == sign_bit) return NAN;
  if (fi.has_inf && exp == exp_max) return man ? NAN : (neg ? -INFINITY : INFINITY);
  if (!fi.has_inf && !fi.fnuz && !fi.no_nan && exp == exp_max && man == (1u << fi.man_bits) - 1u) return NAN;
  double v = exp == 0 ? std::ldexp(static_cast<double>(man), 1 - fi.bias - fi.man_bits)
                      : std::ldexp(1.0 + std::ldexp(static_cast<double>(man), -fi.man_bits),
                                   static_cast<int>(exp) - fi.bias);
  return neg ? -v : v;
}

// FP8 E4M3 quantization of kiln.F8MatMul (ops/kiln_f8.cc, backend/cuda/f8gemm.cu,
// build/fp8.cc): x / scale in float32, rounded to nearest even and saturated to
// ±448 (infinities too), NaN kept. The CPU reference and the CUDA kernel run this
// very function, so both make the same bits.
KILN_HOST_DEVICE inline uint8_t QuantizeE4M3(float x, float scale) {
  return static_cast<uint8_t>(EncodeFloat(FloatFormat::kE4M3FN, static_cast<double>(x / scale), true));
}

// Named helpers for the float8/float4 types (saturate defaults to ONNX's 1).
inline uint8_t FloatToFloat8E4M3FN(float x, bool saturate = true) {
  return static_cast<uint8_t>(EncodeFloat(FloatFormat::kE4M3FN, x, saturate));
}
inline uint8_t FloatToFloat8E4M3FNUZ(float x, bool saturate = true) {
  return static_cast<uint8_t>(EncodeFloat(FloatFormat::kE4M3FNUZ, x, saturate));
}
inline uint8_t FloatToFloat8E5M2(float x, bool saturate = true) {
  return static_cast<uint8_t>(EncodeFloat(FloatFormat::kE5M2, x, saturate));
}
inline uint8_t FloatToFloat8E5M2FNUZ(float x, bool saturate = true) {
  return static_cast<uint8_t>(EncodeFloat(FloatFormat::kE5M2FNUZ, x, saturate));
}
inline uint8_t FloatToFloat4E2M1(float x) {
  return static_cast<uint8_t>(EncodeFloat(FloatFormat::kE2M1, x, true));
}
inline float Float8E4M3FNToFloat(uint8_t b) {
  return static_cast<float>(DecodeFloat(FloatFormat::kE4M3FN, b));
}
inline float Float8E4M3FNUZToFloat(uint8_t b) {
  return static_cast<float>(DecodeFloat(FloatFormat::kE4M3FNUZ, b));
}
inline float Float8E5M2ToFloat(uint8_t b) { return static_cast<float>(DecodeFloat(FloatFormat::kE5M2, b)); }
inline float Float8E5M2FNUZToFloat(uint8_t b) {
  return static_cast<float>(DecodeFloat(FloatFormat::kE5M2FNUZ, b));
}
inline float Float4E2M1ToFloat(uint8_t b) { return static_cast<float>(DecodeFloat(FloatFormat::kE2M1, b)); }

// float8e8m0: an 8-bit biased exponent (value 2^(b-127)), 0xff is NaN.
enum class E8M0Rounding { kUp, kDown, kNearest };

// As onnx.numpy_helper.to_float8e8m0: the sign is ignored; NaN and inf map to 0xff.
KILN_HOST_DEVICE inline uint8_t FloatToFloat8E8M0(float x, bool saturate = true, E8M0Rounding mode = E8M0Rounding::kUp) {
  uint32_t bits;
#if defined(__CUDA_ARCH__)
  bits = __float_as_uint(x);
#else
  std::memcpy(&bits, &x, 4);
#endif
  uint32_t exponent = (bits >> 23) & 0xffu;
  if (exponent == 0xffu) return 0xff;
  uint32_t inc = 0;
  if (mode == E8M0Rounding::kNearest) {
    bool g = (bits & 0x400000u) != 0;
    bool r = (bits & 0x200000u) != 0;
    bool s = (bits & 0x1fffffu) != 0;
    bool lsb = exponent > 0;
    inc = (g && (r || s || lsb)) ? 1u : 0u;
  } else if (mode == E8M0Rounding::kUp) {
    inc = (bits & 0x7fffffu) != 0 ? 1u : 0u;
  }
  if (saturate && exponent == 0xfeu) inc = 0;
  return static_cast<uint8_t>(exponent + inc);
}

KILN_HOST_DEVICE inline float Float8E8M0ToFloat(uint8_t b) {
  if (b == 0xff) return NAN;
  return std::ldexp(1.0f, static_cast<int>(b) - 127);
}

}  // namespace kiln
