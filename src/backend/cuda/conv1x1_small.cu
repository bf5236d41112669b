// Channels-last 1x1 convolutions of few input channels (see conv1x1_small.h).
#include "backend/cuda/conv1x1_small.h"

#include <algorithm>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/epilogue.cuh"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/launch.h"

namespace kiln::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1024;  // grid-stride beyond: each block converts W once
constexpr int64_t kMaxChannels = 64;
constexpr int64_t kMaxWeights = 12288;  // K·C floats in 48 KB

template <class T>
constexpr int Vec() {
  return 16 / static_cast<int>(sizeof(T));
}

// Thread i: pixel i / (K / VEC), output channels n0 .. n0 + VEC - 1. wt: W transposed to [C][K] in FP32.
template <class T>
__global__ void SmallConv1x1Kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                                   const T* __restrict__ z, T* __restrict__ y, int pixels, int c, int k,
                                   ActivationSpec act) {
  WaitForPriorKernels();
  constexpr int VEC = Vec<T>();
  extern __shared__ float wt[];
  for (int i = threadIdx.x; i < c * k; i += blockDim.x) {
    const int n = i / c, ch = i % c;
    wt[ch * k + n] = ToFloat(w[i]);
  }
  __syncthreads();
  const int groups = k / VEC, total = pixels * groups;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    const int px = i / groups, n0 = (i % groups) * VEC;
    const T* xr = x + static_cast<int64_t>(px) * c;
    float acc[VEC];
#pragma unroll
    for (int j = 0; j < VEC; ++j) acc[j] = 0.f;
    for (int c0 = 0; c0 < c; c0 += VEC) {
      const Pack<T, VEC> in = *reinterpret_cast<const Pack<T, VEC>*>(xr + c0);
#pragma unroll
      for (int e = 0; e < VEC; ++e) {
        const float xv = ToFloat(in.v[e]);
        const float* wr = wt + (c0 + e) * k + n0;
#pragma unroll
        for (int j = 0; j < VEC; ++j) acc[j] += xv * wr[j];
      }
    }
    StoreEpilogue<T, VEC>(bias, z, y, static_cast<int64_t>(px) * k + n0, n0, acc, act);
  }
}

// Few pixels (P ≤ kMaxFewPixels: SE gates' 1x1 convolutions on pooled [N, 1, 1, C], batch-sized products): a
// product of so few rows is a matrix-vector product, bound by reading W once. A warp per output channel n:
// the lanes split W's row n into 16-byte chunks (all loads of a row in flight at once), each lane keeps the
// partial sums of every pixel, the warp adds them up, and lane p writes pixel p's output n.
constexpr int64_t kMaxFewPixels = 32;

template <class T, int P>
__global__ void FewPixelsConv1x1Kernel(const T* __restrict__ x, const T* __restrict__ w,
                                       const T* __restrict__ bias, const T* __restrict__ z, T* __restrict__ y,
                                       int pixels, int c, int k, ActivationSpec act) {
  WaitForPriorKernels();
  constexpr int VEC = Vec<T>();
  const int lane = threadIdx.x % 32, warps = gridDim.x * (blockDim.x / 32);
  for (int n = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; n < k; n += warps) {
    float acc[P];
#pragma unroll
    for (int p = 0; p < P; ++p) acc[p] = 0.f;
    const T* wr = w + static_cast<int64_t>(n) * c;
    for (int c0 = lane * VEC; c0 < c; c0 += 32 * VEC) {
      const Pack<T, VEC> wv = *reinterpret_cast<const Pack<T, VEC>*>(wr + c0);
#pragma unroll
      for (int p = 0; p < P; ++p) {
        if (p >= pixels) break;
        const Pack<T, VEC> xv = *reinterpret_cast<const Pack<T, VEC>*>(x + static_cast<int64_t>(p) * c + c0);
#pragma unroll
        for (int e = 0; e < VEC; ++e) acc[p] += ToFloat(xv.v[e]) * ToFloat(wv.v[e]);
      }
    }
    float mine = 0.f;  // lane p's pixel
#pragma unroll
    for (int p = 0; p < P; ++p) {
#pragma unroll
      for (int off = 16; off > 0; off /= 2) acc[p] += __shfl_xor_sync(0xffffffffu, acc[p], off);
      if (p == lane) mine = acc[p];
    }
    if (lane < pixels) StoreEpilogue<T, 1>(bias, z, y, static_cast<int64_t>(lane) * k + n, n, &mine, act);
  }
}

template <class T, int P>
void LaunchFewPixels(const Conv1x1Shape& s, const T* x, const T* w, const T* b, const T* z, T* y,
                     const ActivationSpec& act, cudaStream_t stream) {
  constexpr int kWarps = kThreads / 32;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((s.k + kWarps - 1) / kWarps, 65535));
  LaunchKernel(FewPixelsConv1x1Kernel<T, P>, blocks, kThreads, 0, stream, x, w, b, z, y,
               static_cast<int>(s.pixels), static_cast<int>(s.c), static_cast<int>(s.k), act);
}

template <class T>
Status Launch(const Conv1x1Shape& s, const void* x, const void* w, const void* b, const void* z, void* y,
              const ActivationSpec& act, cudaStream_t stream) {
  if (s.pixels <= kMaxFewPixels) {
    const auto* xt = static_cast<const T*>(x);
    const auto* wt = static_cast<const T*>(w);
    const auto* bt = static_cast<const T*>(b);
    const auto* zt = static_cast<const T*>(z);
    auto* yt = static_cast<T*>(y);
    if (s.pixels <= 1) LaunchFewPixels<T, 1>(s, xt, wt, bt, zt, yt, act, stream);
    else if (s.pixels <= 4) LaunchFewPixels<T, 4>(s, xt, wt, bt, zt, yt, act, stream);
    else if (s.pixels <= 8) LaunchFewPixels<T, 8>(s, xt, wt, bt, zt, yt, act, stream);
    else LaunchFewPixels<T, 32>(s, xt, wt, bt, zt, yt, act, stream);
    return CudaStatus(cudaGetLastError(), "few-pixel 1x1 conv kernel");
  }
  const int64_t threads = s.pixels * (s.k / Vec<T>());
  const unsigned blocks =
      static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((threads + kThreads - 1) / kThreads, kMaxBlocks)));
  const size_t smem = static_cast<size_t>(s.c * s.k) * sizeof(float);
  LaunchKernel(SmallConv1x1Kernel<T>, blocks, kThreads, smem, stream, static_cast<const T*>(x),
               static_cast<const T*>(w), static_cast<const T*>(b), static_cast<const T*>(z),
               static_cast<T*>(y), static_cast<int>(s.pixels), static_cast<int>(s.c), static_cast<int>(s.k),
               act);
  return CudaStatus(cudaGetLastError(), "small 1x1 conv kernel");
}

}  // namespace

bool SmallConv1x1Fits(DataType dt, const Conv1x1Shape& s) {
  const int64_t vec = dt == DataType::kFloat ? 4 : (dt == DataType::kFloat16 || dt == DataType::kBFloat16) ? 8 : 0;
  if (vec == 0 || s.c < 1 || s.k < 1 || s.c % vec != 0) return false;
  if (s.pixels >= 1 && s.pixels <= kMaxFewPixels) return s.c * s.k < (int64_t{1} << 31);  // any K
  if (s.k % vec != 0 || s.c > kMaxChannels || s.c * s.k > kMaxWeights) return false;
  return s.pixels * std::max(s.c, s.k) < (int64_t{1} << 31);
}

Status LaunchSmallConv1x1(DataType dt, const Conv1x1Shape& s, const void* x, const void* w, const void* b,
                          const void* z, void* y, const ActivationSpec& act, cudaStream_t stream) {
  if (!SmallConv1x1Fits(dt, s)) return Internal("small 1x1 conv: the shape or type does not fit its kernel");
  if (s.pixels == 0) return Status::Ok();
  switch (dt) {
    case DataType::kFloat: return Launch<float>(s, x, w, b, z, y, act, stream);
    case DataType::kFloat16: return Launch<__half>(s, x, w, b, z, y, act, stream);
    default: return Launch<__nv_bfloat16>(s, x, w, b, z, y, act, stream);
  }
}

}  // namespace kiln::cuda
