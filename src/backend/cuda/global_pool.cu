// Global pooling over channels-last pixels (see global_pool.h).
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/global_pool.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/launch.h"

namespace kiln::cuda {
namespace {

constexpr int kChannelsPerBlock = 32;  // threadIdx.x: consecutive channels (coalesced reads)
constexpr int kRows = 8;               // threadIdx.y: pixels p ≡ y (mod kRows)

template <bool kMax>
__device__ inline float Combine(float acc, float v) {
  if constexpr (kMax) return (v > acc || v != v) ? v : acc;  // NaN, once seen, stays
  return acc + v;
}

// grid: (channel tiles, N).
template <class T, bool kMax>
__global__ void GlobalPoolNhwcKernel(const T* __restrict__ x, T* __restrict__ y, int64_t pixels, int64_t c) {
  WaitForPriorKernels();
  __shared__ float part[kRows][kChannelsPerBlock + 1];
  const int64_t ch = static_cast<int64_t>(blockIdx.x) * kChannelsPerBlock + threadIdx.x;
  const T* img = x + static_cast<int64_t>(blockIdx.y) * pixels * c;
  float acc = kMax ? -INFINITY : 0.f;
  if (ch < c)
    for (int64_t p = threadIdx.y; p < pixels; p += kRows) acc = Combine<kMax>(acc, ToFloat(img[p * c + ch]));
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y != 0 || ch >= c) return;
  for (int r = 1; r < kRows; ++r) acc = Combine<kMax>(acc, part[r][threadIdx.x]);
  y[static_cast<int64_t>(blockIdx.y) * c + ch] = FromFloat<T>(kMax ? acc : acc / static_cast<float>(pixels));
}

template <class T>
Status Launch(bool max, int64_t n, int64_t pixels, int64_t c, const void* x, void* y, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((c + kChannelsPerBlock - 1) / kChannelsPerBlock), static_cast<unsigned>(n));
  const dim3 block(kChannelsPerBlock, kRows);
  if (max)
    LaunchKernel(GlobalPoolNhwcKernel<T, true>, grid, block, 0, stream, static_cast<const T*>(x),
                 static_cast<T*>(y), pixels, c);
  else
    LaunchKernel(GlobalPoolNhwcKernel<T, false>, grid, block, 0, stream, static_cast<const T*>(x),
                 static_cast<T*>(y), pixels, c);
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
