// Elementwise CUDA ops: unary math/activations, Cast, binary arithmetic and
// comparisons with numpy broadcasting, Where. Our own kernels because these
// are memory-bound one-pass loops: same-shape operands take a 16-byte vector
// path; broadcasting ones index through precomputed strides. Math runs in
// float (also for float16 storage).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "backend/cuda/activation.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_op_table.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/launch.h"
#include "backend/cuda/node_context.h"
#include "ops/bit_shift.h"

namespace kiln::cuda {

BroadcastIndex MakeBroadcastIndex(const std::vector<int64_t>& out_dims,
                                  const std::vector<std::vector<int64_t>>& in_dims) {
  BroadcastIndex b{};
  b.rank = static_cast<int>(out_dims.size());
  int64_t s = 1;
  for (int d = b.rank - 1; d >= 0; --d) {
    b.out_strides[d] = s;
    s *= out_dims[d];
  }
  for (size_t k = 0; k < in_dims.size() && k < 3; ++k) {
    const auto& in = in_dims[k];
    int off = b.rank - static_cast<int>(in.size());
    int64_t st = 1;
    for (int d = b.rank - 1; d >= 0; --d) {
      int id = d - off;
      if (id < 0) {
        b.in_strides[k][d] = 0;
        continue;
      }
      b.in_strides[k][d] = in[id] == 1 ? 0 : st;
      st *= in[id];
    }
  }
  return b;
}

namespace {

enum class Unary { kRelu, kSigmoid, kTanh, kExp, kLog, kSqrt, kErf, kNeg, kAbs, kReciprocal, kFloor, kCeil,
                   kSoftplus, kGelu, kGeluTanh, kHardSwish, kHardSigmoid, kLeakyRelu, kElu, kClip, kSin, kCos,
                   kIdentity, kSign, kRound, kSelu, kMish, kSoftsign, kSwish, kTan, kAsin, kAcos, kAtan, kSinh,
                   kCosh, kAsinh, kAcosh, kAtanh, kThresholdedRelu, kCelu, kShrink,
                   kNot, kBitwiseNot };  // the last two: bool / integer storage only (LogicUnaryKernel)

enum class Binary { kAdd, kSub, kMul, kDiv, kPow, kMax, kMin, kEqual, kLess, kGreater, kLessEq, kGreaterEq, kAnd,
                    kOr, kXor, kPRelu, kMod, kFMod,  // kMod: Mod fmod=0 (sign of the divisor); kFMod: fmod=1
                    kBitAnd, kBitOr, kBitXor, kShiftLeft, kShiftRight };  // integer storage only

struct UnaryParams {
  Unary op;
  float a, b;
};

__device__ inline float ApplyUnary(const UnaryParams& p, float x) {
  switch (p.op) {
    case Unary::kRelu: return x > 0.f ? x : 0.f;
    case Unary::kSigmoid: return 1.f / (1.f + expf(-x));
    case Unary::kTanh: return tanhf(x);
    case Unary::kExp: return expf(x);
    case Unary::kLog: return logf(x);
    case Unary::kSqrt: return sqrtf(x);
    case Unary::kErf: return erff(x);
    case Unary::kNeg: return -x;
    case Unary::kAbs: return fabsf(x);
    case Unary::kReciprocal: return 1.f / x;
    case Unary::kFloor: return floorf(x);
    case Unary::kCeil: return ceilf(x);
    case Unary::kSoftplus: return x > 20.f ? x : log1pf(expf(x));
    case Unary::kGelu: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    case Unary::kGeluTanh: return 0.5f * x * (1.f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    case Unary::kHardSwish: return x * fminf(fmaxf(x / 6.f + 0.5f, 0.f), 1.f);
    case Unary::kHardSigmoid: return fminf(fmaxf(p.a * x + p.b, 0.f), 1.f);
    case Unary::kLeakyRelu: return x >= 0.f ? x : p.a * x;
    case Unary::kElu: return x >= 0.f ? x : p.a * (expf(x) - 1.f);
    case Unary::kClip: return fminf(fmaxf(x, p.a), p.b);
    case Unary::kSin: return sinf(x);
    case Unary::kCos: return cosf(x);
    case Unary::kIdentity: return x;
    case Unary::kSign: return x > 0.f ? 1.f : (x < 0.f ? -1.f : 0.f);
    case Unary::kRound: return rintf(x);
    case Unary::kSelu: return x > 0.f ? p.b * x : p.b * p.a * (expf(x) - 1.f);
    case Unary::kMish: return x * tanhf(x > 20.f ? x : log1pf(expf(x)));
    case Unary::kSoftsign: return x / (1.f + fabsf(x));
    case Unary::kSwish: return x / (1.f + expf(-x));
    case Unary::kTan: return tanf(x);
    case Unary::kAsin: return asinf(x);
    case Unary::kAcos: return acosf(x);
    case Unary::kAtan: return atanf(x);
    case Unary::kSinh: return sinhf(x);
    case Unary::kCosh: return coshf(x);
    case Unary::kAsinh: return asinhf(x);
    case Unary::kAcosh: return acoshf(x);
    case Unary::kAtanh: return atanhf(x);
    case Unary::kThresholdedRelu: return x > p.a ? x : 0.f;
    case Unary::kCelu: return fmaxf(0.f, x) + fminf(0.f, p.a * (expf(x / p.a) - 1.f));
    case Unary::kShrink: return x < -p.a ? x + p.b : (x > p.a ? x - p.b : 0.f);
    default: break;  // kNot, kBitwiseNot: LogicUnaryKernel
  }
  return x;
}

template <class T>
__device__ inline float BinaryMath(Binary op, float a, float b) {
  switch (op) {
    case Binary::kAdd: return a + b;
    case Binary::kSub: return a - b;
    case Binary::kMul: return a * b;
    case Binary::kDiv: return a / b;
    case Binary::kPow: return powf(a, b);
    case Binary::kMax: return a != a || b != b ? a + b : fmaxf(a, b);  // NaN propagates, as numpy.maximum
    case Binary::kMin: return a != a || b != b ? a + b : fminf(a, b);
    case Binary::kPRelu: return a >= 0.f ? a : a * b;
    case Binary::kFMod: return fmodf(a, b);
    case Binary::kMod: {  // numpy's float modulo: the sign of the divisor
      float r = fmodf(a, b);
      if (b == 0.f) return r;
      if (r != 0.f) return (b < 0.f) != (r < 0.f) ? r + b : r;
      return copysignf(0.f, b);
    }
    default: return 0.f;
  }
}

// In the operands' own type for integers and double (exact, as the
// reference compares), float for the 16-bit floats.
template <class C>
__device__ inline bool Compare(Binary op, C a, C b) {
  switch (op) {
    case Binary::kEqual: return a == b;
    case Binary::kLess: return a < b;
    case Binary::kGreater: return a > b;
    case Binary::kLessEq: return a <= b;
    case Binary::kGreaterEq: return a >= b;
    default: return false;
  }
}

// Same-shape unary: VEC elements (16 bytes) per thread, scalar tail. x may be
// y (the in-place kernel below); each element is read before it is written by
// the same thread.
// kOp >= 0 fixes the op at compile time (the switch in ApplyUnary folds away);
// -1 reads it from p.
template <class T, int kOp>
__device__ __forceinline__ void UnaryRange(const T* x, T* y, int64_t n, UnaryParams p) {
  if constexpr (kOp >= 0) p.op = static_cast<Unary>(kOp);
  constexpr int VEC = 16 / sizeof(T);
  struct alignas(16) Pack {
    T v[VEC];
  };
  int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t nvec = n / VEC;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < nvec; i += stride) {
    Pack in = reinterpret_cast<const Pack*>(x)[i];
    Pack out;
#pragma unroll
    for (int k = 0; k < VEC; ++k) out.v[k] = FromFloat<T>(ApplyUnary(p, ToFloat(in.v[k])));
    reinterpret_cast<Pack*>(y)[i] = out;
  }
  for (int64_t i = nvec * VEC + blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride)
    y[i] = FromFloat<T>(ApplyUnary(p, ToFloat(x[i])));
}

template <class T, int kOp>
__global__ void UnaryKernel(const T* __restrict__ x, T* __restrict__ y, int64_t n, UnaryParams p) {
  WaitForPriorKernels();
  UnaryRange<T, kOp>(x, y, n, p);
}

// y = f(y): the activation after a library call (activation.h).
template <class T, int kOp>
__global__ void InPlaceUnaryKernel(T* y, int64_t n, UnaryParams p) {
  WaitForPriorKernels();
  UnaryRange<T, kOp>(y, y, n, p);
}

// Launches UnaryKernel (x != nullptr) or InPlaceUnaryKernel on y, with the op
// fixed at compile time for the activations models spend time in.
template <class T>
void LaunchUnaryKernel(const T* x, T* y, int64_t n, const UnaryParams& p, cudaStream_t stream) {
  const unsigned grid = GridFor(n / (16 / sizeof(T)) + 1, 256);
  auto go = [&](auto op) {
    constexpr int kOp = decltype(op)::value;
    if (x)
      LaunchKernel(UnaryKernel<T, kOp>, grid, 256, 0, stream, x, y, n, p);
    else
      LaunchKernel(InPlaceUnaryKernel<T, kOp>, grid, 256, 0, stream, y, n, p);
  };
  switch (p.op) {
    case Unary::kRelu: return go(std::integral_constant<int, static_cast<int>(Unary::kRelu)>{});
    case Unary::kSigmoid: return go(std::integral_constant<int, static_cast<int>(Unary::kSigmoid)>{});
    case Unary::kSwish: return go(std::integral_constant<int, static_cast<int>(Unary::kSwish)>{});
    case Unary::kClip: return go(std::integral_constant<int, static_cast<int>(Unary::kClip)>{});
    case Unary::kGelu: return go(std::integral_constant<int, static_cast<int>(Unary::kGelu)>{});
    case Unary::kGeluTanh: return go(std::integral_constant<int, static_cast<int>(Unary::kGeluTanh)>{});
    case Unary::kTanh: return go(std::integral_constant<int, static_cast<int>(Unary::kTanh)>{});
    case Unary::kErf: return go(std::integral_constant<int, static_cast<int>(Unary::kErf)>{});
    default: return go(std::integral_constant<int, -1>{});
  }
}

// How an operand is read for output element i: i itself, element 0, i modulo a
// trailing row length, a row per block of `period` elements (an SE gate
// [N, 1, 1, C] against [N, H, W, C]: row C, period H·W·C), or through general
// broadcast strides (slowest).
enum class Access : int { kSame, kScalar, kRow, kBlockRow, kGeneral };
struct Operand {
  Access access = Access::kGeneral;
  int64_t row = 1;
  int64_t period = 1;  // kBlockRow
};

template <class I>
__device__ inline I OperandOffset(const Operand& o, const BroadcastIndex& bi, int k, I i) {
  switch (o.access) {
    case Access::kSame: return i;
    case Access::kScalar: return 0;
    case Access::kRow: return i % static_cast<I>(o.row);
    case Access::kBlockRow:
      return i / static_cast<I>(o.period) * static_cast<I>(o.row) + i % static_cast<I>(o.row);
    default: return InputOffset<I>(bi, k, i);
  }
}

// I: int32_t when the output has fewer than 2^31 elements (cheaper index math).
template <class T, class Out, bool kCompare, class I>
__global__ void BinaryKernel(const T* __restrict__ a, const T* __restrict__ b, Out* __restrict__ y, I n,
                             Binary op, BroadcastIndex bi, Operand oa, Operand ob) {
  WaitForPriorKernels();
  I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < n; i += stride) {
    I ia = OperandOffset(oa, bi, 0, i);
    I ib = OperandOffset(ob, bi, 1, i);
    if constexpr (kCompare) {
      if constexpr (std::is_integral<T>::value || std::is_same<T, double>::value) y[i] = Compare<T>(op, a[ia], b[ib]);
      else y[i] = Compare<float>(op, ToFloat(a[ia]), ToFloat(b[ib]));
    } else if constexpr (std::is_integral<T>::value) {
      T va = a[ia], vb = b[ib];
      T r = 0;
      switch (op) {
        case Binary::kAdd: r = va + vb; break;
        case Binary::kSub: r = va - vb; break;
        case Binary::kMul: r = va * vb; break;
        case Binary::kDiv: r = vb == 0 ? T(0) : va / vb; break;
        case Binary::kMax: r = va > vb ? va : vb; break;
        case Binary::kMin: r = va < vb ? va : vb; break;
        case Binary::kAnd: r = va && vb; break;
        case Binary::kOr: r = va || vb; break;
        case Binary::kXor: r = (va != 0) != (vb != 0); break;
        case Binary::kBitAnd: r = static_cast<T>(va & vb); break;
        case Binary::kBitOr: r = static_cast<T>(va | vb); break;
        case Binary::kBitXor: r = static_cast<T>(va ^ vb); break;
        case Binary::kShiftLeft:
        case Binary::kShiftRight:
          if constexpr (!std::is_same<T, bool>::value) r = ops::BitShift(va, vb, op == Binary::kShiftLeft);
          break;
        case Binary::kMod:
        case Binary::kFMod:  // as the reference: 0 for a zero divisor; fmod=0 takes the divisor's sign
          if constexpr (std::is_signed<T>::value) {
            r = vb == 0 || vb == T(-1) ? T(0) : static_cast<T>(va % vb);
            if (op == Binary::kMod && r != 0 && ((r < 0) != (vb < 0))) r = static_cast<T>(r + vb);
          } else {
            r = vb == 0 ? T(0) : static_cast<T>(va % vb);
          }
          break;
        default: r = static_cast<T>(BinaryMath<float>(op, float(va), float(vb)));
      }
      y[i] = r;
    } else {
      y[i] = FromFloat<Out>(BinaryMath<T>(op, ToFloat(a[ia]), ToFloat(b[ib])));
    }
  }
}

// Float ops with 16 bytes of output per thread: each operand is read whole
// (kSame), as one value (kScalar) or as rows of whole vectors (kRow and
// kBlockRow with row % VEC == 0). kOp >= 0 fixes the op at compile time. Needs 16-byte
// aligned pointers and n % VEC == 0 (BinaryOp::Enqueue checks).
template <class T, int kOp>
__global__ void BinaryVecKernel(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ y, int64_t nvec,
                                Binary op, Operand oa, Operand ob) {
  WaitForPriorKernels();
  constexpr int VEC = 16 / sizeof(T);
  struct alignas(16) Pack {
    T v[VEC];
  };
  if constexpr (kOp >= 0) op = static_cast<Binary>(kOp);
  auto load = [](const T* p, const Operand& o, int64_t e) {
    Pack r;
    if (o.access == Access::kScalar) {
#pragma unroll
      for (int k = 0; k < VEC; ++k) r.v[k] = p[0];
    } else {
      const int64_t at = o.access == Access::kRow        ? e % o.row
                         : o.access == Access::kBlockRow ? e / o.period * o.row + e % o.row
                                                         : e;
      r = reinterpret_cast<const Pack*>(p)[at / VEC];
    }
    return r;
  };
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < nvec; i += stride) {
    const Pack pa = load(a, oa, i * VEC), pb = load(b, ob, i * VEC);
    Pack out;
#pragma unroll
    for (int k = 0; k < VEC; ++k) out.v[k] = FromFloat<T>(BinaryMath<T>(op, ToFloat(pa.v[k]), ToFloat(pb.v[k])));
    reinterpret_cast<Pack*>(y)[i] = out;
  }
}

template <class T>
__global__ void WhereKernel(const bool* __restrict__ c, const T* __restrict__ x, const T* __restrict__ y,
                            T* __restrict__ out, int64_t n, BroadcastIndex bi) {
  int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride)
    out[i] = c[InputOffset(bi, 0, i)] ? x[InputOffset(bi, 1, i)] : y[InputOffset(bi, 2, i)];
}

// IsNaN / IsInf (detect_positive, detect_negative) → bool.
template <class T>
__global__ void ClassifyKernel(const T* __restrict__ x, bool* __restrict__ y, int64_t n, bool nan, bool pos, bool neg) {
  int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride) {
    float v = ToFloat(x[i]);
    y[i] = nan ? isnan(v) : (isinf(v) && ((pos && v > 0.f) || (neg && v < 0.f)));
  }
}

// Not (bool) and BitwiseNot (integers).
template <class T>
__global__ void LogicUnaryKernel(const T* __restrict__ x, T* __restrict__ y, int64_t n, bool logical) {
  int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride)
    y[i] = logical ? static_cast<T>(!x[i]) : static_cast<T>(~x[i]);
}

// Clip whose bounds are device scalars (lo/hi null: the host value, or none).
template <class T>
__global__ void ClipKernel(const T* __restrict__ x, T* __restrict__ y, int64_t n, float lo, float hi,
                           const T* lo_dev, const T* hi_dev) {
  if (lo_dev) lo = ToFloat(*lo_dev);
  if (hi_dev) hi = ToFloat(*hi_dev);
  int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride)
    y[i] = FromFloat<T>(fminf(fmaxf(ToFloat(x[i]), lo), hi));
}

template <class From, class To>
__global__ void CastKernel(const From* __restrict__ x, To* __restrict__ y, int64_t n) {
  int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride) {
    if constexpr (std::is_same<To, bool>::value) {
      y[i] = ToFloat(x[i]) != 0.f;
    } else if constexpr (std::is_same<From, __half>::value || std::is_same<From, __nv_bfloat16>::value ||
                         std::is_same<To, __half>::value || std::is_same<To, __nv_bfloat16>::value) {
      y[i] = FromFloat<To>(ToFloat(x[i]));
    } else {
      y[i] = static_cast<To>(x[i]);
    }
  }
}

// DispatchDevice plus the integer types only the binary and bitwise kernels
// instantiate: int16, uint16, uint32, uint64.
template <class F>
bool DispatchBinaryTypes(DataType dt, F&& f) {
  switch (dt) {
    case DataType::kInt16: f(int16_t{}); return true;
    case DataType::kUInt16: f(uint16_t{}); return true;
    case DataType::kUInt32: f(uint32_t{}); return true;
    case DataType::kUInt64: f(uint64_t{}); return true;
    default: return DispatchDevice(dt, f);
  }
}

Status BadType(const Node& n, DataType dt) {
  return Unsupported(n.Label() + ": " + std::string(DataTypeName(dt)) + " is not supported on the GPU");
}

class UnaryOp final : public GpuOp {
 public:
  UnaryOp(const Node& n, UnaryParams p) : node_(n), p_(p) {}
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    int64_t n = out[0].numel();
    if (n == 0) return Status::Ok();
    bool ok = false;
    auto launch = [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_floating_point<T>::value || std::is_same<T, __half>::value ||
                    std::is_same<T, __nv_bfloat16>::value) {
        ok = p_.op != Unary::kNot && p_.op != Unary::kBitwiseNot;
        if (ok) LaunchUnaryKernel<T>(static_cast<const T*>(in[0].data), static_cast<T*>(out[0].data), n, p_, stream);
      } else {
        ok = p_.op == Unary::kNot || p_.op == Unary::kBitwiseNot;
        if (ok)
          LogicUnaryKernel<T><<<GridFor(n, 256), 256, 0, stream>>>(static_cast<const T*>(in[0].data),
                                                                   static_cast<T*>(out[0].data), n,
                                                                   p_.op == Unary::kNot);
      }
    };
    DispatchBinaryTypes(in[0].dtype, launch);
    if (!ok) return BadType(node_, in[0].dtype);
    KILN_CUDA_CHECK_LAUNCH("unary kernel");
    return Status::Ok();
  }

 private:
  const Node& node_;
  UnaryParams p_;
};

class BinaryOp final : public GpuOp {
 public:
  BinaryOp(const Node& n, Binary op) : node_(n), op_(op) {}
  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources&) override {
    if (out[0].dims.size() > kMaxRank) return Unsupported(node_.Label() + ": rank over 8");
    bi_ = MakeBroadcastIndex(out[0].dims, {in[0].dims, in[1].dims});
    oa_ = Classify(in[0].dims, out[0].dims);
    ob_ = Classify(in[1].dims, out[0].dims);
    return Status::Ok();
  }

  // An operand BinaryVecKernel can read: 16-byte aligned, rows of whole vectors.
  template <class T>
  static bool Vectorizable(const void* p, const Operand& o) {
    constexpr int64_t kVec = 16 / sizeof(T);
    if (o.access == Access::kScalar) return true;
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
    return o.access == Access::kSame ||
           ((o.access == Access::kRow || o.access == Access::kBlockRow) && o.row % kVec == 0);
  }

  template <class T>
  void LaunchVec(const T* a, const T* b, T* y, int64_t nvec, cudaStream_t stream) const {
    const unsigned grid = GridFor(nvec, 256);
    switch (op_) {
      case Binary::kAdd:
        LaunchKernel(BinaryVecKernel<T, static_cast<int>(Binary::kAdd)>, grid, 256, 0, stream, a, b, y, nvec,
                     op_, oa_, ob_);
        break;
      case Binary::kMul:
        LaunchKernel(BinaryVecKernel<T, static_cast<int>(Binary::kMul)>, grid, 256, 0, stream, a, b, y, nvec,
                     op_, oa_, ob_);
        break;
      default:
        LaunchKernel(BinaryVecKernel<T, -1>, grid, 256, 0, stream, a, b, y, nvec, op_, oa_, ob_);
    }
  }

  // The cheapest access pattern that reads `in` broadcast to `out`.
  static Operand Classify(const std::vector<int64_t>& in, const std::vector<int64_t>& out) {
    int64_t n = 1, on = 1;
    for (int64_t d : in) n *= d;
    for (int64_t d : out) on *= d;
    if (n == on) return {Access::kSame, 1};
    if (n == 1) return {Access::kScalar, 1};
    // Row: in (without leading 1s) equals out's trailing dims.
    size_t lead = 0;
    while (lead < in.size() && in[lead] == 1) ++lead;
    size_t k = in.size() - lead;
    if (k <= out.size() && std::equal(in.begin() + static_cast<std::ptrdiff_t>(lead), in.end(),
                                      out.end() - static_cast<std::ptrdiff_t>(k)))
      return {Access::kRow, n};
    // Block row: in (right-aligned) equals out on some leading dims, is 1 on
    // the next ones and equals out on the trailing ones.
    if (in.size() > out.size()) return {Access::kGeneral, 1};
    std::vector<int64_t> d(out.size() - in.size(), 1);
    d.insert(d.end(), in.begin(), in.end());
    size_t a = 0;
    while (a < d.size() && d[a] == out[a]) ++a;
    size_t b = a;
    while (b < d.size() && d[b] == 1) ++b;
    int64_t row = 1, period = 1;
    for (size_t k = b; k < d.size(); ++k) {
      if (d[k] != out[k]) return {Access::kGeneral, 1};
      row *= d[k];
    }
    for (size_t k = a; k < d.size(); ++k) period *= out[k];
    return {Access::kBlockRow, row, period};
  }
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    int64_t n = out[0].numel();
    if (n == 0) return Status::Ok();
    bool compare = out[0].dtype == DataType::kBool && in[0].dtype != DataType::kBool;
    auto launch = [&](auto tag) {
      using T = decltype(tag);
      const T* a = static_cast<const T*>(in[0].data);
      const T* b = static_cast<const T*>(in[1].data);
      bool small = n < (int64_t{1} << 31);
      unsigned grid = GridFor(n, 256);
      if constexpr (std::is_same<T, float>::value || std::is_same<T, __half>::value ||
                    std::is_same<T, __nv_bfloat16>::value) {
        if (!compare && Vectorizable<T>(in[0].data, oa_) && Vectorizable<T>(in[1].data, ob_) &&
            Vectorizable<T>(out[0].data, Operand{Access::kSame, 1}) && n % (16 / sizeof(T)) == 0) {
          LaunchVec<T>(a, b, static_cast<T*>(out[0].data), n / (16 / sizeof(T)), stream);
          return;
        }
      }
      if (compare && small)
        LaunchKernel(BinaryKernel<T, bool, true, int32_t>, grid, 256, 0, stream, a, b,
                     static_cast<bool*>(out[0].data), static_cast<int32_t>(n), op_, bi_, oa_, ob_);
      else if (compare)
        LaunchKernel(BinaryKernel<T, bool, true, int64_t>, grid, 256, 0, stream, a, b,
                     static_cast<bool*>(out[0].data), n, op_, bi_, oa_, ob_);
      else if (small)
        LaunchKernel(BinaryKernel<T, T, false, int32_t>, grid, 256, 0, stream, a, b,
                     static_cast<T*>(out[0].data), static_cast<int32_t>(n), op_, bi_, oa_, ob_);
      else
        LaunchKernel(BinaryKernel<T, T, false, int64_t>, grid, 256, 0, stream, a, b,
                     static_cast<T*>(out[0].data), n, op_, bi_, oa_, ob_);
    };
    if (!DispatchBinaryTypes(in[0].dtype, launch)) return BadType(node_, in[0].dtype);
    KILN_CUDA_CHECK_LAUNCH("binary kernel");
    return Status::Ok();
  }

 private:
  const Node& node_;
  Binary op_;
  BroadcastIndex bi_{};
  Operand oa_, ob_;
};

class WhereOp final : public GpuOp {
 public:
  explicit WhereOp(const Node& n) : node_(n) {}
  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources&) override {
    if (out[0].dims.size() > kMaxRank) return Unsupported(node_.Label() + ": rank over 8");
    bi_ = MakeBroadcastIndex(out[0].dims, {in[0].dims, in[1].dims, in[2].dims});
    return Status::Ok();
  }
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    int64_t n = out[0].numel();
    if (n == 0) return Status::Ok();
    auto launch = [&](auto tag) {
      using T = decltype(tag);
      WhereKernel<T><<<GridFor(n, 256), 256, 0, stream>>>(static_cast<const bool*>(in[0].data),
                                                          static_cast<const T*>(in[1].data),
                                                          static_cast<const T*>(in[2].data),
                                                          static_cast<T*>(out[0].data), n, bi_);
    };
    if (!DispatchDevice(in[1].dtype, launch)) return BadType(node_, in[1].dtype);
    KILN_CUDA_CHECK_LAUNCH("where kernel");
    return Status::Ok();
  }

 private:
  const Node& node_;
  BroadcastIndex bi_{};
};

class CastOp final : public GpuOp {
 public:
  explicit CastOp(const Node& n) : node_(n) {}
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    int64_t n = out[0].numel();
    if (n == 0) return Status::Ok();
    bool ok = true;
    ok &= DispatchDevice(in[0].dtype, [&](auto from) {
      using From = decltype(from);
      ok &= DispatchDevice(out[0].dtype, [&](auto to) {
        using To = decltype(to);
        CastKernel<From, To><<<GridFor(n, 256), 256, 0, stream>>>(static_cast<const From*>(in[0].data),
                                                                  static_cast<To*>(out[0].data), n);
      });
    });
    if (!ok) return Unsupported(node_.Label() + ": cast " + std::string(DataTypeName(in[0].dtype)) + " → " +
                                std::string(DataTypeName(out[0].dtype)) + " is not supported on the GPU");
    KILN_CUDA_CHECK_LAUNCH("cast kernel");
    return Status::Ok();
  }

 private:
  const Node& node_;
};

class ClassifyOp final : public GpuOp {
 public:
  ClassifyOp(const Node& n, bool nan, bool pos, bool neg) : node_(n), nan_(nan), pos_(pos), neg_(neg) {}
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    int64_t n = out[0].numel();
    if (n == 0) return Status::Ok();
    bool ok = false;
    DispatchDevice(in[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_floating_point<T>::value || std::is_same<T, __half>::value ||
                    std::is_same<T, __nv_bfloat16>::value) {
        ClassifyKernel<T><<<GridFor(n, 256), 256, 0, stream>>>(static_cast<const T*>(in[0].data),
                                                               static_cast<bool*>(out[0].data), n, nan_, pos_, neg_);
        ok = true;
      }
    });
    if (!ok) return BadType(node_, in[0].dtype);
    KILN_CUDA_CHECK_LAUNCH("isnan/isinf kernel");
    return Status::Ok();
  }

 private:
  const Node& node_;
  bool nan_, pos_, neg_;
};

// Clip from opset 11: each bound a host value (constant or folded from
// shapes: the unary kernel's fast path when both are) or a device scalar.
class ClipOp final : public GpuOp {
 public:
  ClipOp(const Node& n, int64_t opset) : node_(n), opset_(opset) {}
  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>&, GpuResources&) override {
    GpuNodeContext ctx(node_, opset_, &in);
    for (size_t b = 0; b < 2; ++b) {
      const size_t i = b + 1;
      bound_[b] = b == 0 ? -INFINITY : INFINITY;
      device_[b] = false;
      if (i >= in.size() || !Present(in[i])) continue;
      if (in[i].numel() != 1) return ctx.Error("min and max must be scalars");
      if (const Tensor* t = HostInput(node_, in, i)) {
        bound_[b] = static_cast<float>(t->ScalarAt(0));
        continue;
      }
      if (in[i].dtype != in[0].dtype) return ctx.Error("min and max must have the input's type");
      device_[b] = true;
    }
    return Status::Ok();
  }
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    int64_t n = out[0].numel();
    if (n == 0) return Status::Ok();
    bool ok = false;
    DispatchFloatDevice(in[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      const T* x = static_cast<const T*>(in[0].data);
      T* y = static_cast<T*>(out[0].data);
      ok = true;
      if (!device_[0] && !device_[1])
        return LaunchUnaryKernel<T>(x, y, n, UnaryParams{Unary::kClip, bound_[0], bound_[1]}, stream);
      ClipKernel<T><<<GridFor(n, 256), 256, 0, stream>>>(x, y, n, bound_[0], bound_[1],
                                                         device_[0] ? static_cast<const T*>(in[1].data) : nullptr,
                                                         device_[1] ? static_cast<const T*>(in[2].data) : nullptr);
    });
    if (!ok) return BadType(node_, in[0].dtype);
    KILN_CUDA_CHECK_LAUNCH("clip kernel");
    return Status::Ok();
  }

 private:
  const Node& node_;
  int64_t opset_;
  float bound_[2] = {-INFINITY, INFINITY};
  bool device_[2] = {false, false};
};

float AttrF(const Node& n, const char* name, float def) {
  const Attribute* a = n.attr(name);
  return a ? a->f : def;
}

}  // namespace

Status LaunchActivation(DataType dt, void* y, int64_t n, const ActivationSpec& act, cudaStream_t stream) {
  UnaryParams p{Unary::kIdentity, act.lo, act.hi};
  switch (act.kind) {
    case Activation::kNone: return Status::Ok();
    case Activation::kRelu: p.op = Unary::kRelu; break;
    case Activation::kClip: p.op = Unary::kClip; break;
    case Activation::kSigmoid: p.op = Unary::kSigmoid; break;
    case Activation::kSwish: p.op = Unary::kSwish; break;
    case Activation::kHardSwish: p.op = Unary::kHardSwish; break;
    case Activation::kHardSigmoid: p = UnaryParams{Unary::kHardSigmoid, act.alpha, act.beta}; break;
    case Activation::kGelu: p.op = Unary::kGelu; break;
    case Activation::kLeakyRelu: p = UnaryParams{Unary::kLeakyRelu, act.alpha, 0.f}; break;
  }
  if (n == 0) return Status::Ok();
  auto launch = [&](auto tag) {
    using T = decltype(tag);
    LaunchUnaryKernel<T>(nullptr, static_cast<T*>(y), n, p, stream);
  };
  switch (dt) {
    case DataType::kFloat: launch(float{}); break;
    case DataType::kFloat16: launch(__half{}); break;
    case DataType::kBFloat16: launch(__nv_bfloat16{}); break;
    default: return Unsupported("activation on " + std::string(DataTypeName(dt)) + " is not supported on the GPU");
  }
  KILN_CUDA_CHECK_LAUNCH("activation kernel");
  return Status::Ok();
}

Expected<std::unique_ptr<GpuOp>> MakeUnaryOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  static const std::pair<const char*, Unary> kTable[] = {
      {"Relu", Unary::kRelu},       {"Sigmoid", Unary::kSigmoid}, {"Tanh", Unary::kTanh},
      {"Exp", Unary::kExp},         {"Log", Unary::kLog},         {"Sqrt", Unary::kSqrt},
      {"Erf", Unary::kErf},         {"Neg", Unary::kNeg},         {"Abs", Unary::kAbs},
      {"Reciprocal", Unary::kReciprocal}, {"Floor", Unary::kFloor}, {"Ceil", Unary::kCeil},
      {"Softplus", Unary::kSoftplus}, {"HardSwish", Unary::kHardSwish}, {"HardSigmoid", Unary::kHardSigmoid},
      {"LeakyRelu", Unary::kLeakyRelu}, {"Elu", Unary::kElu},     {"Clip", Unary::kClip},
      {"Sin", Unary::kSin},         {"Cos", Unary::kCos},         {"Sign", Unary::kSign},
      {"Round", Unary::kRound},     {"Selu", Unary::kSelu},       {"Mish", Unary::kMish},
      {"Softsign", Unary::kSoftsign}, {"Gelu", Unary::kGelu},   {"Tan", Unary::kTan},
      {"Asin", Unary::kAsin},       {"Acos", Unary::kAcos},       {"Atan", Unary::kAtan},
      {"Sinh", Unary::kSinh},       {"Cosh", Unary::kCosh},       {"Asinh", Unary::kAsinh},
      {"Acosh", Unary::kAcosh},     {"Atanh", Unary::kAtanh},     {"ThresholdedRelu", Unary::kThresholdedRelu},
      {"Celu", Unary::kCelu},       {"Shrink", Unary::kShrink},   {"Not", Unary::kNot},
      {"BitwiseNot", Unary::kBitwiseNot}};
  UnaryParams p{Unary::kIdentity, 0.f, 0.f};
  bool found = false;
  for (const auto& [name, op] : kTable)
    if (n.op_type == name) {
      p.op = op;
      found = true;
    }
  if (!found) return Unsupported(n.Label() + ": not a unary op");
  switch (p.op) {
    case Unary::kHardSigmoid: p.a = AttrF(n, "alpha", 0.2f); p.b = AttrF(n, "beta", 0.5f); break;
    case Unary::kLeakyRelu: p.a = AttrF(n, "alpha", 0.01f); break;
    case Unary::kElu: p.a = AttrF(n, "alpha", 1.0f); break;
    case Unary::kThresholdedRelu: p.a = AttrF(n, "alpha", 1.0f); break;
    case Unary::kCelu: p.a = AttrF(n, "alpha", 1.0f); break;
    case Unary::kShrink: p.a = AttrF(n, "lambd", 0.5f); p.b = AttrF(n, "bias", 0.0f); break;
    case Unary::kSelu: p.a = AttrF(n, "alpha", 1.67326319217681884765625f); p.b = AttrF(n, "gamma", 1.05070102214813232421875f); break;
    case Unary::kGelu: {
      const Attribute* a = n.attr("approximate");
      if (a && a->s == "tanh") p.op = Unary::kGeluTanh;
      break;
    }
    case Unary::kClip:
      if (info.opset < 11) {
        p.a = AttrF(n, "min", -INFINITY);
        p.b = AttrF(n, "max", INFINITY);
        break;
      }
      return std::unique_ptr<GpuOp>(new ClipOp(n, info.opset));
    default: break;
  }
  return std::unique_ptr<GpuOp>(new UnaryOp(n, p));
}

Expected<std::unique_ptr<GpuOp>> MakeFoldOp(const GpuOpInfo& info);  // variadic.cu

Expected<std::unique_ptr<GpuOp>> MakeBinaryOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  static const std::pair<const char*, Binary> kTable[] = {
      {"Add", Binary::kAdd},     {"Sub", Binary::kSub},         {"Mul", Binary::kMul},
      {"Div", Binary::kDiv},     {"Pow", Binary::kPow},         {"Max", Binary::kMax},
      {"Min", Binary::kMin},     {"Equal", Binary::kEqual},     {"Less", Binary::kLess},
      {"Greater", Binary::kGreater}, {"LessOrEqual", Binary::kLessEq}, {"GreaterOrEqual", Binary::kGreaterEq},
      {"And", Binary::kAnd},     {"Or", Binary::kOr},           {"Xor", Binary::kXor},
      {"PRelu", Binary::kPRelu}, {"Mod", Binary::kMod},         {"BitwiseAnd", Binary::kBitAnd},
      {"BitwiseOr", Binary::kBitOr}, {"BitwiseXor", Binary::kBitXor}};
  if (n.op_type == "BitShift") {
    const Attribute* dir = n.attr("direction");
    if (!dir || (dir->s != "LEFT" && dir->s != "RIGHT"))
      return InvalidArgument(n.Label() + ": attribute direction must be LEFT or RIGHT");
    return std::unique_ptr<GpuOp>(new BinaryOp(n, dir->s == "LEFT" ? Binary::kShiftLeft : Binary::kShiftRight));
  }
  if ((n.op_type == "Max" || n.op_type == "Min") && n.num_inputs() != 2) {
    const DataType dt = n.input(0) ? n.input(0)->dtype() : DataType::kUndefined;
    if (dt == DataType::kInt16 || dt == DataType::kUInt16 || dt == DataType::kUInt32 || dt == DataType::kUInt64)
      return Unsupported(n.Label() + ": " + n.op_type + " of " + std::to_string(n.num_inputs()) + " " +
                         std::string(DataTypeName(dt)) + " inputs on the GPU (two-input only)");
    return MakeFoldOp(info);
  }
  for (const auto& [name, op] : kTable)
    if (n.op_type == name) {
      if (n.num_inputs() != 2) return Unsupported(n.Label() + ": only two-input " + n.op_type + " runs on the GPU");
      if (op == Binary::kPow && n.input(0) && n.input(1) && n.input(0)->dtype() != n.input(1)->dtype())
        return Unsupported(n.Label() + ": Pow with mixed input types is not supported on the GPU");
      const bool fmod = op == Binary::kMod && n.attr("fmod") && n.attr("fmod")->i != 0;
      return std::unique_ptr<GpuOp>(new BinaryOp(n, fmod ? Binary::kFMod : op));
    }
  return Unsupported(n.Label() + ": not a binary op");
}

Expected<std::unique_ptr<GpuOp>> MakeWhereOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(new WhereOp(*info.node));
}

Expected<std::unique_ptr<GpuOp>> MakeClassifyOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  auto flag = [&](const char* k) { const Attribute* a = n.attr(k); return a ? a->i != 0 : true; };
  bool nan = n.op_type == "IsNaN";
  return std::unique_ptr<GpuOp>(new ClassifyOp(n, nan, nan ? false : flag("detect_positive"),
                                               nan ? false : flag("detect_negative")));
}

// cast_small.cu: casts to/from the float8/float4/sub-byte integer types.
bool IsSmallCastType(DataType dt);
Expected<std::unique_ptr<GpuOp>> MakeSmallCastOp(const GpuOpInfo& info);

Expected<std::unique_ptr<GpuOp>> MakeCastOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  if ((n.input(0) && IsSmallCastType(n.input(0)->dtype())) || (n.output(0) && IsSmallCastType(n.output(0)->dtype())))
    return MakeSmallCastOp(info);
  return std::unique_ptr<GpuOp>(new CastOp(*info.node));
}

}  // namespace kiln::cuda
