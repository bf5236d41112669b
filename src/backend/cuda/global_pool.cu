// Global pooling over channels-last pixels (see global_pool.h).
#include "backend/cuda/global_pool.h"

#include <algorithm>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/epilogue.cuh"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/launch.h"

namespace kiln::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxGroups = 32;  // channel vectors of a block (consecutive: coalesced reads)

template <bool kMax>
__device__ inline float Combine(float acc, float v) {
  if constexpr (kMax) return (v > acc || v != v) ? v : acc;  // NaN, once seen, stays
  return acc + v;
}

// grid: (channel tiles of up to kMaxGroups vectors of VEC channels, N). Thread (g, r) = (threadIdx.x %
// groups, threadIdx.x / groups) combines the pixels p ≡ r (mod rows) of its VEC channels (16-byte loads when
// VEC > 1, four in flight); the rows then combine in shared memory, in row order.
template <class T, int VEC, bool kMax>
__global__ void __launch_bounds__(kThreads)
    GlobalPoolNhwcKernel(const T* __restrict__ x, T* __restrict__ y, int64_t pixels, int64_t c, int groups) {
  WaitForPriorKernels();
  __shared__ float part[kThreads * VEC];
  const int rows = kThreads / groups, g = threadIdx.x % groups, r = threadIdx.x / groups;
  const int64_t c0 = (static_cast<int64_t>(blockIdx.x) * groups + g) * VEC;
  const bool active = r < rows && c0 < c;
  float acc[VEC];
#pragma unroll
  for (int k = 0; k < VEC; ++k) acc[k] = kMax ? -INFINITY : 0.f;
  if (active) {
    const T* img = x + static_cast<int64_t>(blockIdx.y) * pixels * c + c0;
#pragma unroll 4
    for (int64_t p = r; p < pixels; p += rows) {
      const Pack<T, VEC> v = *reinterpret_cast<const Pack<T, VEC>*>(img + p * c);
#pragma unroll
      for (int k = 0; k < VEC; ++k) acc[k] = Combine<kMax>(acc[k], ToFloat(v.v[k]));
    }
  }
#pragma unroll
  for (int k = 0; k < VEC; ++k) part[threadIdx.x * VEC + k] = acc[k];
  __syncthreads();
  if (r != 0 || c0 >= c) return;
  for (int row = 1; row < rows; ++row)
#pragma unroll
    for (int k = 0; k < VEC; ++k) acc[k] = Combine<kMax>(acc[k], part[(row * groups + g) * VEC + k]);
  Pack<T, VEC> out;
#pragma unroll
  for (int k = 0; k < VEC; ++k) out.v[k] = FromFloat<T>(kMax ? acc[k] : acc[k] / static_cast<float>(pixels));
  *reinterpret_cast<Pack<T, VEC>*>(y + static_cast<int64_t>(blockIdx.y) * c + c0) = out;
}

// Vectors per block: enough rows of threads that each thread combines at most kPixelsPerThread pixels (a
// small image at batch 1 spreads its channels over more blocks instead of walking its pixels on a few
// SMs), but at least 4 vectors (64 contiguous bytes of a pixel per load instruction) and at most kMaxGroups.
constexpr int64_t kPixelsPerThread = 8;

template <class T, int VEC>
void LaunchVec(bool max, int64_t n, int64_t pixels, int64_t c, const T* x, T* y, cudaStream_t stream) {
  const int64_t vectors = c / VEC;
  const int64_t rows_wanted = std::max<int64_t>(1, (pixels + kPixelsPerThread - 1) / kPixelsPerThread);
  const int64_t lo = std::min<int64_t>(vectors, 4), hi = std::min<int64_t>(vectors, kMaxGroups);
  const int groups = static_cast<int>(std::clamp<int64_t>(kThreads / rows_wanted, lo, hi));
  const dim3 grid(static_cast<unsigned>((vectors + groups - 1) / groups), static_cast<unsigned>(n));
  if (max)
    LaunchKernel(GlobalPoolNhwcKernel<T, VEC, true>, grid, kThreads, 0, stream, x, y, pixels, c, groups);
  else
    LaunchKernel(GlobalPoolNhwcKernel<T, VEC, false>, grid, kThreads, 0, stream, x, y, pixels, c, groups);
}

template <class T>
Status Launch(bool max, int64_t n, int64_t pixels, int64_t c, const void* x, void* y, cudaStream_t stream) {
  constexpr int kWide = 16 / sizeof(T);
  const T* xt = static_cast<const T*>(x);
  T* yt = static_cast<T*>(y);
  if (c % kWide == 0 && Aligned16(x) && Aligned16(y))
    LaunchVec<T, kWide>(max, n, pixels, c, xt, yt, stream);
  else
    LaunchVec<T, 1>(max, n, pixels, c, xt, yt, stream);
  return CudaStatus(cudaGetLastError(), "global pooling kernel");
}

}  // namespace

Status LaunchGlobalPoolNhwc(DataType dt, bool max, int64_t n, int64_t pixels, int64_t c, const void* x, void* y,
                            cudaStream_t stream) {
  if (n == 0 || c == 0) return Status::Ok();
  if (n > 65535) return Unsupported("global pooling: a batch over 65535 is not supported on the GPU yet");  // grid.y
  switch (dt) {
    case DataType::kFloat: return Launch<float>(max, n, pixels, c, x, y, stream);
    case DataType::kFloat16: return Launch<__half>(max, n, pixels, c, x, y, stream);
    case DataType::kBFloat16: return Launch<__nv_bfloat16>(max, n, pixels, c, x, y, stream);
    default: return Unsupported("global pooling on " + std::string(DataTypeName(dt)) + " is not supported on the GPU");
  }
}

}  // namespace kiln::cuda
