// Cast and CastLike: conversion between every ONNX element type, including
// strings (numpy-style formatting and parsing), float16/bfloat16, the float8
// family with `saturate`, float8e8m0 with `round_mode`, float4e2m1 and the
// unpacked sub-byte integers (int4/uint4/int2/uint2, one element per byte).
#include "ops/unary_cast.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>

#include "ops/op_table.h"
#include "ops/op_util.h"
#include "ops/unary_util.h"

namespace kiln {
namespace {

// One element on its way from the source type to the target type.
struct Num {
  enum Kind { kInt, kUInt, kFloat } kind = kInt;
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0.0;
};

bool IsCastable(DataType dt) {
  switch (dt) {
    case DataType::kUndefined:
    case DataType::kComplex64:
    case DataType::kComplex128:
      return false;
    default:
      return IsValidDataType(static_cast<int32_t>(dt));
  }
}

Num IntNum(int64_t v) {
  Num n;
  n.kind = Num::kInt;
  n.i = v;
  return n;
}
Num UIntNum(uint64_t v) {
  Num n;
  n.kind = Num::kUInt;
  n.u = v;
  return n;
}
Num FloatNum(double v) {
  Num n;
  n.kind = Num::kFloat;
  n.f = v;
  return n;
}

Num ReadNum(DataType dt, const void* p, int64_t k) {
  switch (dt) {
    case DataType::kBool:
      return UIntNum(static_cast<const uint8_t*>(p)[k] ? 1 : 0);
    case DataType::kInt8:
    case DataType::kInt4:
    case DataType::kInt2:
      return IntNum(static_cast<const int8_t*>(p)[k]);
    case DataType::kInt16:
      return IntNum(static_cast<const int16_t*>(p)[k]);
    case DataType::kInt32:
      return IntNum(static_cast<const int32_t*>(p)[k]);
    case DataType::kInt64:
      return IntNum(static_cast<const int64_t*>(p)[k]);
    case DataType::kUInt8:
    case DataType::kUInt4:
    case DataType::kUInt2:
      return UIntNum(static_cast<const uint8_t*>(p)[k]);
    case DataType::kUInt16:
      return UIntNum(static_cast<const uint16_t*>(p)[k]);
    case DataType::kUInt32:
      return UIntNum(static_cast<const uint32_t*>(p)[k]);
    case DataType::kUInt64:
      return UIntNum(static_cast<const uint64_t*>(p)[k]);
    case DataType::kFloat:
      return FloatNum(static_cast<const float*>(p)[k]);
    case DataType::kDouble:
      return FloatNum(static_cast<const double*>(p)[k]);
    case DataType::kFloat16:
      return FloatNum(HalfBitsToFloat(static_cast<const uint16_t*>(p)[k]));
    case DataType::kBFloat16:
      return FloatNum(BFloat16BitsToFloat(static_cast<const uint16_t*>(p)[k]));
    case DataType::kFloat8E4M3FN:
      return FloatNum(DecodeFloat(FloatFormat::kE4M3FN, static_cast<const uint8_t*>(p)[k]));
    case DataType::kFloat8E4M3FNUZ:
      return FloatNum(DecodeFloat(FloatFormat::kE4M3FNUZ, static_cast<const uint8_t*>(p)[k]));
    case DataType::kFloat8E5M2:
      return FloatNum(DecodeFloat(FloatFormat::kE5M2, static_cast<const uint8_t*>(p)[k]));
    case DataType::kFloat8E5M2FNUZ:
      return FloatNum(DecodeFloat(FloatFormat::kE5M2FNUZ, static_cast<const uint8_t*>(p)[k]));
    case DataType::kFloat4E2M1:
      return FloatNum(DecodeFloat(FloatFormat::kE2M1, static_cast<const uint8_t*>(p)[k]));
    case DataType::kFloat8E8M0:
      return FloatNum(Float8E8M0ToFloat(static_cast<const uint8_t*>(p)[k]));
    default:
      return IntNum(0);
  }
}

// Float to integer as numpy does on x86: truncate toward zero; NaN and values
// outside int64 give INT64_MIN; the result then wraps to the target width.
int64_t FloatToIntBits(double f, DataType to) {
  if (to == DataType::kUInt64 && f >= 9223372036854775808.0 && f < 18446744073709551616.0)
    return static_cast<int64_t>(static_cast<uint64_t>(f));
  if (to == DataType::kInt32 && !(f > -2147483649.0 && f < 2147483648.0))
    return std::numeric_limits<int32_t>::min();
  if (!(f >= -9223372036854775808.0 && f < 9223372036854775808.0)) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(f);
}

int64_t IntBits(const Num& n, DataType to) {
  switch (n.kind) {
    case Num::kInt:
      return n.i;
    case Num::kUInt:
      return static_cast<int64_t>(n.u);
    default:
      return FloatToIntBits(n.f, to);
  }
}

double AsDouble(const Num& n) {
  switch (n.kind) {
    case Num::kInt:
      return static_cast<double>(n.i);
    case Num::kUInt:
      return static_cast<double>(n.u);
    default:
      return n.f;
  }
}

float AsFloat(const Num& n) {
  switch (n.kind) {
    case Num::kInt:
      return static_cast<float>(n.i);
    case Num::kUInt:
      return static_cast<float>(n.u);
    default:
      return static_cast<float>(n.f);
  }
}

bool IsExactFloat(double v) { return std::isnan(v) || static_cast<double>(static_cast<float>(v)) == v; }

void WriteNum(DataType dt, void* p, int64_t k, const Num& n, const CastOptions& o) {
  auto u8 = [&](uint32_t v) { static_cast<uint8_t*>(p)[k] = static_cast<uint8_t>(v); };
  switch (dt) {
    case DataType::kBool:
      static_cast<uint8_t*>(p)[k] =
          n.kind == Num::kFloat ? (n.f != 0.0) : (n.kind == Num::kInt ? n.i != 0 : n.u != 0);
      return;
    case DataType::kInt8:
      static_cast<int8_t*>(p)[k] = static_cast<int8_t>(IntBits(n, dt));
      return;
    case DataType::kInt16:
      static_cast<int16_t*>(p)[k] = static_cast<int16_t>(IntBits(n, dt));
      return;
    case DataType::kInt32:
      static_cast<int32_t*>(p)[k] = static_cast<int32_t>(IntBits(n, dt));
      return;
    case DataType::kInt64:
      static_cast<int64_t*>(p)[k] = IntBits(n, dt);
      return;
    case DataType::kUInt8:
      static_cast<uint8_t*>(p)[k] = static_cast<uint8_t>(IntBits(n, dt));
      return;
    case DataType::kUInt16:
      static_cast<uint16_t*>(p)[k] = static_cast<uint16_t>(IntBits(n, dt));
      return;
    case DataType::kUInt32:
      static_cast<uint32_t*>(p)[k] = static_cast<uint32_t>(IntBits(n, dt));
      return;
    case DataType::kUInt64:
      static_cast<uint64_t*>(p)[k] = static_cast<uint64_t>(IntBits(n, dt));
      return;
    // Sub-byte integers wrap as the wider ones do. From a float out of range
    // the spec says undefined; this is numpy 1.x with ml_dtypes (-9.0 -> 7 in int4).
    case DataType::kInt4: {
      int64_t v = IntBits(n, dt) & 0xf;
      static_cast<int8_t*>(p)[k] = static_cast<int8_t>((v ^ 8) - 8);
      return;
    }
    case DataType::kInt2: {
      int64_t v = IntBits(n, dt) & 0x3;
      static_cast<int8_t*>(p)[k] = static_cast<int8_t>((v ^ 2) - 2);
      return;
    }
    case DataType::kUInt4:
      u8(static_cast<uint32_t>(IntBits(n, dt) & 0xf));
      return;
    case DataType::kUInt2:
      u8(static_cast<uint32_t>(IntBits(n, dt) & 0x3));
      return;
    case DataType::kFloat:
      static_cast<float*>(p)[k] = AsFloat(n);
      return;
    case DataType::kDouble:
      static_cast<double*>(p)[k] = AsDouble(n);
      return;
    case DataType::kFloat16: {
      double v = AsDouble(n);
      static_cast<uint16_t*>(p)[k] =
          static_cast<uint16_t>(IsExactFloat(v) ? FloatToHalfBits(static_cast<float>(v))
                                                : EncodeFloat(FloatFormat::kFloat16, v, false));
      return;
    }
    case DataType::kBFloat16: {
      double v = AsDouble(n);
      static_cast<uint16_t*>(p)[k] =
          static_cast<uint16_t>(IsExactFloat(v) ? FloatToBFloat16Bits(static_cast<float>(v))
                                                : EncodeFloat(FloatFormat::kBFloat16, v, false));
      return;
    }
    case DataType::kFloat8E4M3FN:
      u8(EncodeFloat(FloatFormat::kE4M3FN, AsDouble(n), o.saturate));
      return;
    case DataType::kFloat8E4M3FNUZ:
      u8(EncodeFloat(FloatFormat::kE4M3FNUZ, AsDouble(n), o.saturate));
      return;
    case DataType::kFloat8E5M2:
      u8(EncodeFloat(FloatFormat::kE5M2, AsDouble(n), o.saturate));
      return;
    case DataType::kFloat8E5M2FNUZ:
      u8(EncodeFloat(FloatFormat::kE5M2FNUZ, AsDouble(n), o.saturate));
      return;
    case DataType::kFloat4E2M1:
      u8(EncodeFloat(FloatFormat::kE2M1, AsDouble(n), true));
      return;
    case DataType::kFloat8E8M0:
      u8(FloatToFloat8E8M0(AsFloat(n), o.saturate, o.round_mode));
      return;
    default:
      return;
  }
}

// ---- strings ----

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Parses one string element for a target of type `to` (numpy/Python rules:
// "1e-5", "+INF", "-inf", "NaN" case-insensitively; integers in decimal).
Num ParseNum(const std::string& s, DataType to) {
  const char* b = s.c_str();
  char* end = nullptr;
  bool want_int = IsSignedInteger(to) || IsUnsignedInteger(to) || to == DataType::kBool;
  if (want_int) {
    errno = 0;
    long long v = std::strtoll(b, &end, 10);
    while (end && std::isspace(static_cast<unsigned char>(*end))) ++end;
    if (end != b && end && *end == '\0' && errno == 0) return IntNum(v);
    errno = 0;
    unsigned long long uv = std::strtoull(b, &end, 10);
    while (end && std::isspace(static_cast<unsigned char>(*end))) ++end;
    if (end != b && end && *end == '\0' && errno == 0 && s.find('-') == std::string::npos) return UIntNum(uv);
  }
  double d = std::strtod(b, &end);
  if (end == b && to == DataType::kBool) {
    std::string l = Lower(s);
    return UIntNum(l == "true" ? 1 : (l == "false" || l.empty()) ? 0 : 1);
  }
  return FloatNum(end == b ? 0.0 : d);
}

// Shortest decimal digits (as "%.*e" prints them) that read back to `v` in
// the precision of `src`.
std::string ShortestSci(double v, DataType src) {
  char buf[64];
  for (int p = 1; p <= 17; ++p) {
    std::snprintf(buf, sizeof(buf), "%.*e", p - 1, v);
    double back = std::strtod(buf, nullptr);
    bool same = false;
    switch (src) {
      case DataType::kDouble:
        same = back == v;
        break;
      case DataType::kFloat:
        same = static_cast<float>(back) == static_cast<float>(v);
        break;
      case DataType::kFloat16:
        same =
            EncodeFloat(FloatFormat::kFloat16, back, false) == EncodeFloat(FloatFormat::kFloat16, v, false);
        break;
      case DataType::kBFloat16:
        same =
            EncodeFloat(FloatFormat::kBFloat16, back, false) == EncodeFloat(FloatFormat::kBFloat16, v, false);
        break;
      default:
        same = static_cast<float>(back) == static_cast<float>(v);
        break;  // float8/4: exact in float
    }
    if (same) return buf;
  }
  std::snprintf(buf, sizeof(buf), "%.16e", v);
  return buf;
}

}  // namespace

std::string FormatFloatLikeNumpy(double v, DataType src) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  const bool neg = std::signbit(v);
  double a = std::fabs(v);
  if (a == 0.0) return neg ? "-0.0" : "0.0";
  std::string sci = ShortestSci(a, src);  // "d.ddde+XX"
  size_t epos = sci.find('e');
  int exp10 = std::atoi(sci.c_str() + epos + 1);
  std::string digits;
  for (size_t i = 0; i < epos; ++i)
    if (std::isdigit(static_cast<unsigned char>(sci[i]))) digits += sci[i];
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  // numpy's astype(str) switches to scientific at 1e16 (float64), 1e6
  // (float32), 1e3 (16 bits and smaller), and below 1e-4.
  double upper = src == DataType::kDouble ? 1e16 : src == DataType::kFloat ? 1e6 : 1e3;
  std::string out = neg ? "-" : "";
  if (a >= 1e-4 && a < upper) {
    if (exp10 >= 0) {
      std::string ip = digits.substr(0, std::min(digits.size(), static_cast<size_t>(exp10) + 1));
      while (ip.size() < static_cast<size_t>(exp10) + 1) ip += '0';
      std::string fp = digits.size() > ip.size() ? digits.substr(static_cast<size_t>(exp10) + 1) : "0";
      if (fp.empty()) fp = "0";
      out += ip + "." + fp;
    } else {
      out += "0." + std::string(static_cast<size_t>(-exp10 - 1), '0') + digits;
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char ebuf[16];
  std::snprintf(ebuf, sizeof(ebuf), "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
  return out + ebuf;
}

Expected<Tensor> CastTensor(const Tensor& in, DataType to, const CastOptions& options) {
  const DataType from = in.dtype();
  if (!IsCastable(from) || !IsCastable(to))
    return Unsupported("cannot cast " + std::string(DataTypeName(from)) + " to " +
                       std::string(DataTypeName(to)));
  if (from == to) return in;
  Tensor out(to, in.dims());
  const int64_t n = in.numel();
  if (from == DataType::kString) {
    const auto& src = in.strings();
    void* dst = out.mutable_raw();
    for (int64_t k = 0; k < n; ++k) WriteNum(to, dst, k, ParseNum(src[static_cast<size_t>(k)], to), options);
    return out;
  }
  const void* src = in.raw();
  if (to == DataType::kString) {
    auto& dst = out.mutable_strings();
    for (int64_t k = 0; k < n; ++k) {
      Num v = ReadNum(from, src, k);
      std::string& s = dst[static_cast<size_t>(k)];
      if (from == DataType::kBool)
        s = v.u ? "True" : "False";
      else if (v.kind == Num::kInt)
        s = std::to_string(v.i);
      else if (v.kind == Num::kUInt)
        s = std::to_string(v.u);
      else
        s = FormatFloatLikeNumpy(v.f, from);
    }
    return out;
  }
  void* dst = out.mutable_raw();
  for (int64_t k = 0; k < n; ++k) WriteNum(to, dst, k, ReadNum(from, src, k), options);
  return out;
}

namespace ops {
namespace {

Expected<CastOptions> ReadCastOptions(const NodeContext& ctx) {
  CastOptions o;
  o.saturate = ctx.attr_int("saturate", 1) != 0;
  std::string mode = ctx.attr_string("round_mode", "up");
  if (mode == "up")
    o.round_mode = E8M0Rounding::kUp;
  else if (mode == "down")
    o.round_mode = E8M0Rounding::kDown;
  else if (mode == "nearest")
    o.round_mode = E8M0Rounding::kNearest;
  else
    return ctx.Error("unknown round_mode '" + mode + "' (expected up, down or nearest)");
  return o;
}

Status InferCastTo(InferContext& ctx, DataType to) {
  if (!ctx.has_input(0)) return ctx.Error("expects an input");
  if (!IsCastable(to)) return ctx.Error("cannot cast to type " + std::to_string(static_cast<int>(to)));
  ctx.set_output(0, to, ctx.input_shape(0));
  // Shape arithmetic often goes through Cast (int64 -> int32 -> int64).
  if (const auto* sym = ctx.input_sym(0)) {
    if (IsSignedInteger(to) || IsUnsignedInteger(to)) ctx.set_output_sym(0, *sym);
  }
  return Status::Ok();
}

Status RunCastTo(RunContext& ctx, DataType to) {
  KILN_RETURN_IF_ERROR(RequireTensorInputs(ctx, {0}));
  KILN_ASSIGN_OR_RETURN(CastOptions o, ReadCastOptions(ctx));
  auto r = CastTensor(ctx.input(0), to, o);
  if (!r.ok()) return ctx.UnsupportedError(r.status().message());
  ctx.set_output(0, std::move(r).value());
  return Status::Ok();
}

}  // namespace

Status InferCast(InferContext& ctx) {
  if (!ctx.has_attr("to")) return ctx.Error("missing attribute 'to'");
  return InferCastTo(ctx, static_cast<DataType>(ctx.attr_int("to", 0)));
}

Status RunCast(RunContext& ctx) {
  if (!ctx.has_attr("to")) return ctx.Error("missing attribute 'to'");
  return RunCastTo(ctx, static_cast<DataType>(ctx.attr_int("to", 0)));
}

Status InferCastLike(InferContext& ctx) {
  if (!ctx.has_input(1)) return ctx.Error("expects 2 inputs (input, target_type)");
  DataType to = ctx.input_dtype(1);
  if (to == DataType::kUndefined) {
    ctx.set_output(0, DataType::kUndefined, ctx.input_shape(0));
    return Status::Ok();
  }
  return InferCastTo(ctx, to);
}

Status RunCastLike(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(RequireTensorInputs(ctx, {0, 1}));
  if (!ctx.has_input(1)) return ctx.Error("expects 2 inputs (input, target_type)");
  return RunCastTo(ctx, ctx.input(1).dtype());
}

}  // namespace ops
}  // namespace kiln
