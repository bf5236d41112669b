// Cast / CastLike to and from the small types the typed elementwise kernels do
// not instantiate: the float8 family (e4m3fn, e4m3fnuz, e5m2, e5m2fnuz, with
// `saturate`), float8e8m0 (with `round_mode`), float4e2m1 and the unpacked
// sub-byte integers (int4/uint4/int2/uint2, one element per byte, as kiln
// holds them). Semantics: src/ops/unary_cast.cc (the CPU reference). Each
// element goes through the reference's three-kind number (signed, unsigned,
// float in double): the float8/float4 encoders and decoders are core/float8.h's
// own, compiled for the device, and the integer rules (truncation, NaN and
// out-of-range to INT64_MIN then wrap; sub-byte targets from a float give 0
// out of range) are the reference's, line for line. Elementwise casts between
// the other device types stay in elementwise.cu (CastKernel).
// BitCast (src/ops/misc_bitcast.cc): a byte copy between types of one width;
// to a sub-byte type, the low bits, sign-extended for signed targets.
#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/node_context.h"
#include "core/float8.h"

namespace kiln::cuda {

bool IsSmallCastType(DataType dt) {
  switch (dt) {
    case DataType::kFloat8E4M3FN:
    case DataType::kFloat8E4M3FNUZ:
    case DataType::kFloat8E5M2:
    case DataType::kFloat8E5M2FNUZ:
    case DataType::kFloat8E8M0:
    case DataType::kFloat4E2M1:
    case DataType::kInt4:
    case DataType::kUInt4:
    case DataType::kInt2:
    case DataType::kUInt2:
      return true;
    default:
      return false;
  }
}

namespace {

struct DNum {
  enum Kind { kInt, kUInt, kFloat } kind = kInt;
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0.0;
};

__device__ inline DNum IntN(int64_t v) { DNum n; n.kind = DNum::kInt; n.i = v; return n; }
__device__ inline DNum UIntN(uint64_t v) { DNum n; n.kind = DNum::kUInt; n.u = v; return n; }
__device__ inline DNum FloatN(double v) { DNum n; n.kind = DNum::kFloat; n.f = v; return n; }

__device__ DNum Read(DataType dt, const void* p, int64_t k) {
  const uint8_t b = static_cast<const uint8_t*>(p)[k];  // the 1-byte types
  switch (dt) {
    case DataType::kBool: return UIntN(b ? 1 : 0);
    case DataType::kInt8:
    case DataType::kInt4:
    case DataType::kInt2: return IntN(static_cast<const int8_t*>(p)[k]);
    case DataType::kInt32: return IntN(static_cast<const int32_t*>(p)[k]);
    case DataType::kInt64: return IntN(static_cast<const int64_t*>(p)[k]);
    case DataType::kUInt8:
    case DataType::kUInt4:
    case DataType::kUInt2: return UIntN(b);
    case DataType::kFloat: return FloatN(static_cast<const float*>(p)[k]);
    case DataType::kDouble: return FloatN(static_cast<const double*>(p)[k]);
    case DataType::kFloat16: return FloatN(__half2float(static_cast<const __half*>(p)[k]));
    case DataType::kBFloat16: return FloatN(__bfloat162float(static_cast<const __nv_bfloat16*>(p)[k]));
    case DataType::kFloat8E4M3FN: return FloatN(DecodeFloat(FloatFormat::kE4M3FN, b));
    case DataType::kFloat8E4M3FNUZ: return FloatN(DecodeFloat(FloatFormat::kE4M3FNUZ, b));
    case DataType::kFloat8E5M2: return FloatN(DecodeFloat(FloatFormat::kE5M2, b));
    case DataType::kFloat8E5M2FNUZ: return FloatN(DecodeFloat(FloatFormat::kE5M2FNUZ, b));
    case DataType::kFloat4E2M1: return FloatN(DecodeFloat(FloatFormat::kE2M1, b));
    case DataType::kFloat8E8M0: return FloatN(Float8E8M0ToFloat(b));
    default: return IntN(0);
  }
}

// numpy on x86: truncate toward zero; NaN and values outside int64 give
// INT64_MIN; the result then wraps to the target width.
__device__ inline int64_t FloatToIntBits(double f, DataType to) {
  constexpr int64_t kMin64 = static_cast<int64_t>(0x8000000000000000ull);
  if (to == DataType::kInt32 && !(f > -2147483649.0 && f < 2147483648.0)) return -2147483648LL;
  if (!(f >= -9223372036854775808.0 && f < 9223372036854775808.0)) return kMin64;
  return static_cast<int64_t>(f);
}
__device__ inline int64_t IntBits(const DNum& n, DataType to) {
  if (n.kind == DNum::kInt) return n.i;
  if (n.kind == DNum::kUInt) return static_cast<int64_t>(n.u);
  return FloatToIntBits(n.f, to);
}
__device__ inline double AsDouble(const DNum& n) {
  return n.kind == DNum::kInt ? static_cast<double>(n.i) : n.kind == DNum::kUInt ? static_cast<double>(n.u) : n.f;
}
__device__ inline float AsFloat(const DNum& n) {
  return n.kind == DNum::kInt ? static_cast<float>(n.i)
                              : n.kind == DNum::kUInt ? static_cast<float>(n.u) : static_cast<float>(n.f);
}
__device__ inline bool IsExactFloat(double v) { return v != v || static_cast<double>(static_cast<float>(v)) == v; }

__device__ void Write(DataType dt, void* p, int64_t k, const DNum& n, bool saturate, E8M0Rounding mode) {
  uint8_t* u8 = static_cast<uint8_t*>(p) + k;
  switch (dt) {
    case DataType::kBool:
      *u8 = n.kind == DNum::kFloat ? (n.f != 0.0) : (n.kind == DNum::kInt ? n.i != 0 : n.u != 0);
      return;
    case DataType::kInt8: static_cast<int8_t*>(p)[k] = static_cast<int8_t>(IntBits(n, dt)); return;
    case DataType::kInt32: static_cast<int32_t*>(p)[k] = static_cast<int32_t>(IntBits(n, dt)); return;
    case DataType::kInt64: static_cast<int64_t*>(p)[k] = IntBits(n, dt); return;
    case DataType::kUInt8: *u8 = static_cast<uint8_t>(IntBits(n, dt)); return;
    // Sub-byte integers wrap as the wider ones do (a float out of range: -9.0 -> 7 in int4).
    case DataType::kInt4: {
      const int64_t v = IntBits(n, dt) & 0xf;
      static_cast<int8_t*>(p)[k] = static_cast<int8_t>((v ^ 8) - 8);
      return;
    }
    case DataType::kInt2: {
      const int64_t v = IntBits(n, dt) & 0x3;
      static_cast<int8_t*>(p)[k] = static_cast<int8_t>((v ^ 2) - 2);
      return;
    }
    case DataType::kUInt4: *u8 = static_cast<uint8_t>(IntBits(n, dt) & 0xf); return;
    case DataType::kUInt2: *u8 = static_cast<uint8_t>(IntBits(n, dt) & 0x3); return;
    case DataType::kFloat: static_cast<float*>(p)[k] = AsFloat(n); return;
    case DataType::kDouble: static_cast<double*>(p)[k] = AsDouble(n); return;
    case DataType::kFloat16: {
      const double v = AsDouble(n);
      static_cast<uint16_t*>(p)[k] =
          IsExactFloat(v) ? __half_as_ushort(__float2half_rn(static_cast<float>(v)))
                          : static_cast<uint16_t>(EncodeFloat(FloatFormat::kFloat16, v, false));
      return;
    }
    case DataType::kBFloat16: {
      const double v = AsDouble(n);
      static_cast<uint16_t*>(p)[k] =
          IsExactFloat(v) ? __bfloat16_as_ushort(__float2bfloat16_rn(static_cast<float>(v)))
                          : static_cast<uint16_t>(EncodeFloat(FloatFormat::kBFloat16, v, false));
      return;
    }
    case DataType::kFloat8E4M3FN: *u8 = static_cast<uint8_t>(EncodeFloat(FloatFormat::kE4M3FN, AsDouble(n), saturate)); return;
    case DataType::kFloat8E4M3FNUZ: *u8 = static_cast<uint8_t>(EncodeFloat(FloatFormat::kE4M3FNUZ, AsDouble(n), saturate)); return;
    case DataType::kFloat8E5M2: *u8 = static_cast<uint8_t>(EncodeFloat(FloatFormat::kE5M2, AsDouble(n), saturate)); return;
    case DataType::kFloat8E5M2FNUZ: *u8 = static_cast<uint8_t>(EncodeFloat(FloatFormat::kE5M2FNUZ, AsDouble(n), saturate)); return;
    case DataType::kFloat4E2M1: *u8 = static_cast<uint8_t>(EncodeFloat(FloatFormat::kE2M1, AsDouble(n), true)); return;
    case DataType::kFloat8E8M0: *u8 = FloatToFloat8E8M0(AsFloat(n), saturate, mode); return;
    default: return;
  }
}

__global__ void SmallCastKernel(const void* __restrict__ x, DataType from, void* __restrict__ y, DataType to,
                                int64_t n, bool saturate, E8M0Rounding mode) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    Write(to, y, i, Read(from, x, i), saturate, mode);
}

// The types Read/Write handle.
bool Handled(DataType dt) {
  switch (dt) {
    case DataType::kBool:
    case DataType::kInt8:
    case DataType::kInt32:
    case DataType::kInt64:
    case DataType::kUInt8:
    case DataType::kFloat:
    case DataType::kDouble:
    case DataType::kFloat16:
    case DataType::kBFloat16:
      return true;
    default:
      return IsSmallCastType(dt);
  }
}

class SmallCastOp final : public GpuOp {
 public:
  SmallCastOp(const Node& n, bool saturate, E8M0Rounding mode) : node_(n), saturate_(saturate), mode_(mode) {}
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    if (!Handled(in[0].dtype) || !Handled(out[0].dtype))
      return Unsupported(node_.Label() + ": cast " + std::string(DataTypeName(in[0].dtype)) + " → " +
                         std::string(DataTypeName(out[0].dtype)) + " is not supported on the GPU");
    const int64_t n = out[0].numel();
    if (n == 0) return Status::Ok();
    SmallCastKernel<<<GridFor(n, 256), 256, 0, stream>>>(in[0].data, in[0].dtype, out[0].data, out[0].dtype, n,
                                                         saturate_, mode_);
    KILN_CUDA_CHECK_LAUNCH("small-type cast kernel");
    return Status::Ok();
  }

 private:
  const Node& node_;
  bool saturate_;
  E8M0Rounding mode_;
};

__global__ void SubByteBitCastKernel(const uint8_t* __restrict__ x, uint8_t* __restrict__ y, int64_t n, int bits,
                                     bool sign) {
  const uint8_t mask = static_cast<uint8_t>((1u << bits) - 1u);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    uint8_t v = x[i] & mask;
    if (sign && (v >> (bits - 1)) & 1u) v = static_cast<uint8_t>(v | ~mask);
    y[i] = v;
  }
}

class BitCastOp final : public GpuOp {
 public:
  explicit BitCastOp(const Node& n) : node_(n) {}
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    const int64_t n = out[0].numel();
    if (n == 0) return Status::Ok();
    const int bits = ElementBits(out[0].dtype);
    if (bits != ElementBits(in[0].dtype) || ElementSize(in[0].dtype) != ElementSize(out[0].dtype))
      return Unsupported(node_.Label() + ": cannot reinterpret " + std::string(DataTypeName(in[0].dtype)) + " as " +
                         std::string(DataTypeName(out[0].dtype)));
    if (bits >= 8) {
      KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out[0].data, in[0].data, static_cast<size_t>(n) * ElementSize(out[0].dtype),
                                                cudaMemcpyDeviceToDevice, stream));
      return Status::Ok();
    }
    SubByteBitCastKernel<<<GridFor(n, 256), 256, 0, stream>>>(static_cast<const uint8_t*>(in[0].data),
                                                              static_cast<uint8_t*>(out[0].data), n, bits,
                                                              IsSignedInteger(out[0].dtype));
    KILN_CUDA_CHECK_LAUNCH("bitcast kernel");
    return Status::Ok();
  }

 private:
  const Node& node_;
};

}  // namespace

// Refuses strings and types of different widths at build time.
Expected<std::unique_ptr<GpuOp>> MakeBitCastOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  const DataType from = n.input(0) ? n.input(0)->dtype() : DataType::kUndefined;
  const DataType to = n.output(0) ? n.output(0)->dtype() : DataType::kUndefined;
  if (from == DataType::kString || to == DataType::kString || from == DataType::kComplex128 || to == DataType::kComplex128 ||
      (from != DataType::kUndefined && to != DataType::kUndefined && ElementBits(from) != ElementBits(to)))
    return Unsupported(n.Label() + ": BitCast " + std::string(DataTypeName(from)) + " → " +
                       std::string(DataTypeName(to)) + " on the GPU");
  return std::unique_ptr<GpuOp>(std::make_unique<BitCastOp>(n));
}

// Called by MakeCastOp (elementwise.cu) when either side is a small type;
// refuses at build time a type pair or round_mode it cannot convert.
Expected<std::unique_ptr<GpuOp>> MakeSmallCastOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  const DataType from = n.input(0) ? n.input(0)->dtype() : DataType::kUndefined;
  const DataType to = n.output(0) ? n.output(0)->dtype() : DataType::kUndefined;
  for (DataType dt : {from, to})
    if (dt != DataType::kUndefined && !Handled(dt))
      return Unsupported(n.Label() + ": cast " + std::string(DataTypeName(from)) + " → " +
                         std::string(DataTypeName(to)) + " is not supported on the GPU");
  const Attribute* sat = n.attr("saturate");
  const Attribute* rm = n.attr("round_mode");
  const std::string mode = rm ? rm->s : "up";
  E8M0Rounding round = E8M0Rounding::kUp;
  if (mode == "down") round = E8M0Rounding::kDown;
  else if (mode == "nearest") round = E8M0Rounding::kNearest;
  else if (mode != "up") return Unsupported(n.Label() + ": round_mode '" + mode + "' (up, down or nearest)");
  return std::unique_ptr<GpuOp>(std::make_unique<SmallCastOp>(n, sat ? sat->i != 0 : true, round));
}

}  // namespace kiln::cuda
