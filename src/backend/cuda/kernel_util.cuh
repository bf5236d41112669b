// Small helpers shared by kiln's CUDA kernels: grid sizing, broadcast index
// math, and float conversion of the storage types.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/dtype.h"
#include "core/fast_div.h"

namespace kiln::cuda {

constexpr int kMaxRank = 8;

// Output-to-input index mapping for broadcasting, passed by value to kernels.
struct BroadcastIndex {
  int rank = 0;
  int64_t out_strides[kMaxRank];
  int64_t in_strides[3][kMaxRank];  // up to three inputs (Where); 0 on broadcast dims
};

// Builds the mapping for inputs of `in_dims` broadcast to `out_dims`.
BroadcastIndex MakeBroadcastIndex(const std::vector<int64_t>& out_dims,
                                  const std::vector<std::vector<int64_t>>& in_dims);

// I = int32_t when every offset fits (cheaper division), else int64_t.
template <class I>
__device__ inline I InputOffset(const BroadcastIndex& b, int k, I i) {
  I off = 0;
  for (int d = 0; d < b.rank; ++d) {
    I q = i / static_cast<I>(b.out_strides[d]);
    i -= q * static_cast<I>(b.out_strides[d]);
    off += q * static_cast<I>(b.in_strides[k][d]);
  }
  return off;
}

template <class T>
__device__ inline float ToFloat(T v) {
  return static_cast<float>(v);
}
template <>
__device__ inline float ToFloat<__half>(__half v) {
  return __half2float(v);
}
template <>
__device__ inline float ToFloat<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
template <class T>
__device__ inline T FromFloat(float v) {
  return static_cast<T>(v);
}
template <>
__device__ inline __half FromFloat<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ inline __nv_bfloat16 FromFloat<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// The reference's compute type (ops/op_util.h's ToCompute): float for the
// 16-bit float types, the storage type otherwise; FromCompute converts back.
template <class T>
__device__ inline auto ToCompute(T v) {
  if constexpr (std::is_same<T, __half>::value || std::is_same<T, __nv_bfloat16>::value) return ToFloat(v);
  else return v;
}
template <class T, class C>
__device__ inline T FromCompute(C v) {
  if constexpr (std::is_same<T, __half>::value || std::is_same<T, __nv_bfloat16>::value) return FromFloat<T>(v);
  else return static_cast<T>(v);
}
template <class C>
__device__ inline bool IsNan(C v) {
  if constexpr (std::is_floating_point<C>::value) return v != v;
  else return false;
}
// True when a ranks strictly above b in "largest first" order, NaN largest
// (the reference's TopK / ArgMax order).
template <class C>
__device__ inline bool Above(C a, C b) {
  if (IsNan(a)) return !IsNan(b);
  if (IsNan(b)) return false;
  return a > b;
}

// Butterfly reductions over a full warp; every lane gets the result.
// (max of floats ignores a NaN operand, as fmaxf does.)
template <class C>
__device__ inline C WarpSum(C v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <class C>
__device__ inline C WarpMax(C v) {
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Calls f(T{}) with the device storage type of dt: float, __half or
// __nv_bfloat16; false (f not called) for any other type.
template <class F>
bool DispatchFloatDevice(DataType dt, F&& f) {
  switch (dt) {
    case DataType::kFloat: f(float{}); return true;
    case DataType::kFloat16: f(__half{}); return true;
    case DataType::kBFloat16: f(__nv_bfloat16{}); return true;
    default: return false;
  }
}

// The same over every type kiln's typed elementwise kernels instantiate: the
// float types, double, int64, int32, int8, uint8 and bool.
template <class F>
bool DispatchDevice(DataType dt, F&& f) {
  switch (dt) {
    case DataType::kDouble: f(double{}); return true;
    case DataType::kInt64: f(int64_t{}); return true;
    case DataType::kInt32: f(int32_t{}); return true;
    case DataType::kInt8: f(int8_t{}); return true;
    case DataType::kUInt8: f(uint8_t{}); return true;
    case DataType::kBool: f(bool{}); return true;
    default: return DispatchFloatDevice(dt, f);
  }
}

// Calls f(W{}) with the unsigned word type of `bytes` (1, 2, 4, 8): data
// movement of any element type of that size; false for other sizes.
template <class F>
bool DispatchWord(size_t bytes, F&& f) {
  switch (bytes) {
    case 1: f(uint8_t{}); return true;
    case 2: f(uint16_t{}); return true;
    case 4: f(uint32_t{}); return true;
    case 8: f(uint64_t{}); return true;
    default: return false;
  }
}

// The combining operation of BlockReduceOp.
enum class BlockOp { kSum, kMax, kMin, kProd };
template <BlockOp kOp, class C>
__device__ inline C BlockCombine(C a, C b) {
  switch (kOp) {
    case BlockOp::kSum: return a + b;
    case BlockOp::kMax: return a < b ? b : a;
    case BlockOp::kMin: return b < a ? b : a;
    default: return a * b;
  }
}

// Block-wide reduction of one value per thread (float, int32 or int64);
// `identity` fills the missing lanes. Every thread gets the result. Any block
// size up to 1024. (Float max/min ignore a NaN operand, as fmaxf does.)
template <BlockOp kOp, class C>
__device__ C BlockReduceOp(C v, C identity) {
  __shared__ C part[32];
  __shared__ C result;
  auto warp_reduce = [](C x) {
    for (int o = 16; o > 0; o >>= 1) {
      const C other = __shfl_xor_sync(0xffffffffu, x, o);
      if constexpr (std::is_floating_point<C>::value && kOp == BlockOp::kMax) x = fmaxf(x, other);
      else if constexpr (std::is_floating_point<C>::value && kOp == BlockOp::kMin) x = fminf(x, other);
      else x = BlockCombine<kOp>(x, other);
    }
    return x;
  };
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_reduce(v);
  if (lane == 0) part[warp] = v;
  __syncthreads();
  if (warp == 0) {
    int nw = (blockDim.x + 31) >> 5;
    C x = warp_reduce(lane < nw ? part[lane] : identity);
    if (lane == 0) result = x;
  }
  __syncthreads();
  C r = result;
  __syncthreads();
  return r;
}

// Block-wide sum (kMax: max) of one float per thread; every thread gets the
// result. Any block size up to 1024.
template <bool kMax>
__device__ float BlockReduce(float v) {
  return kMax ? BlockReduceOp<BlockOp::kMax>(v, -INFINITY) : BlockReduceOp<BlockOp::kSum>(v, 0.f);
}

// Exclusive prefix sum of one value per thread over the block (a multiple of
// 32 threads, every thread calling); *total receives the block's sum.
__device__ inline int64_t BlockExclusiveScan(int64_t value, int64_t* total) {
  __shared__ int64_t warp_sums[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  int64_t v = value;
  for (int o = 1; o < 32; o <<= 1) {
    const int64_t up = __shfl_up_sync(0xffffffffu, v, o);
    if (lane >= o) v += up;
  }
  if (lane == 31) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    int64_t w = lane < warps ? warp_sums[lane] : 0;
    for (int o = 1; o < 32; o <<= 1) {
      const int64_t up = __shfl_up_sync(0xffffffffu, w, o);
      if (lane >= o) w += up;
    }
    warp_sums[lane] = w;
  }
  __syncthreads();
  const int64_t excl = (warp > 0 ? warp_sums[warp - 1] : 0) + v - value;
  *total = warp_sums[warps - 1];
  __syncthreads();  // warp_sums is reused by the next call
  return excl;
}

// Kernels that keep float64 in float64 and compute every other float type in
// float (attention, ONNX Attention): the compute type and its conversions.
template <class T>
struct Compute {
  using type = float;
  __device__ static float From(T v) { return ToFloat(v); }
  __device__ static T To(float v) { return FromFloat<T>(v); }
};
template <>
struct Compute<double> {
  using type = double;
  __device__ static double From(double v) { return v; }
  __device__ static double To(double v) { return v; }
};
__device__ inline float Exp(float v) { return expf(v); }
__device__ inline double Exp(double v) { return exp(v); }

// Kernels that compute in float64 whatever the storage type, as the CPU
// reference does (the losses, GridSample).
template <class T>
__device__ inline double LoadF64(T v) {
  return static_cast<double>(ToCompute(v));
}
template <class T>
__device__ inline T StoreF64(double v) {
  if constexpr (std::is_same<T, double>::value) return v;
  else return FromFloat<T>(static_cast<float>(v));
}

// The first statement of a kernel launched by LaunchKernel (launch.h): waits until the kernels before it in
// the stream have finished and their writes are visible. A no-op before sm_90 and for plain launches.
__device__ inline void WaitForPriorKernels() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Whether p is 16-byte aligned (a uint4 / 16-byte Pack may be read or written there).
inline bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

inline unsigned GridFor(int64_t n, int block) {
  int64_t g = (n + block - 1) / block;
  if (g > 65535LL * 32) g = 65535LL * 32;  // grid-stride loops cover the rest
  return static_cast<unsigned>(g < 1 ? 1 : g);
}

}  // namespace kiln::cuda
