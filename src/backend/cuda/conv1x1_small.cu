// Channels-last 1x1 convolutions of few input channels (see conv1x1_small.h).
#include "backend/cuda/conv1x1_small.h"

#include <algorithm>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/epilogue.cuh"

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

template <class T>
Status Launch(const Conv1x1Shape& s, const void* x, const void* w, const void* b, const void* z, void* y,
              const ActivationSpec& act, cudaStream_t stream) {
  const int64_t threads = s.pixels * (s.k / Vec<T>());
  const unsigned blocks =
      static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((threads + kThreads - 1) / kThreads, kMaxBlocks)));
  const size_t smem = static_cast<size_t>(s.c * s.k) * sizeof(float);
  SmallConv1x1Kernel<T><<<blocks, kThreads, smem, stream>>>(
      static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(b), static_cast<const T*>(z),
      static_cast<T*>(y), static_cast<int>(s.pixels), static_cast<int>(s.c), static_cast<int>(s.k), act);
  return CudaStatus(cudaGetLastError(), "small 1x1 conv kernel");
}

}  // namespace

bool SmallConv1x1Fits(DataType dt, const Conv1x1Shape& s) {
  const int64_t vec = dt == DataType::kFloat ? 4 : (dt == DataType::kFloat16 || dt == DataType::kBFloat16) ? 8 : 0;
  if (vec == 0 || s.c < 1 || s.k < 1 || s.c % vec != 0 || s.k % vec != 0) return false;
  if (s.c > kMaxChannels || s.c * s.k > kMaxWeights) return false;
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
