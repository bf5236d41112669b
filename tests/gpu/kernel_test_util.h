// Helpers of the GPU kernel tests that call a kernel's launcher directly (conv1x1_small_test,
// depthwise_test): a device check, the activations as the host computes them, and device buffers filled
// from / read back into host float vectors as float32 or float16.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backend/cuda/activation.h"

namespace kiln::cuda::test {

inline bool HaveGpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

// The current device's SMs, as a context's GpuResources::sm_count holds them.
inline int SmCount() {
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess)
    return 0;
  return sms;
}

inline float Act(const ActivationSpec& a, float v) {
  switch (a.kind) {
    case Activation::kRelu:
      return v > 0.f ? v : 0.f;
    case Activation::kClip:
      return std::fmin(std::fmax(v, a.lo), a.hi);
    case Activation::kSwish:
      return v / (1.f + std::exp(-v));
    case Activation::kSigmoid:
      return 1.f / (1.f + std::exp(-v));
    case Activation::kHardSigmoid:
      return std::fmin(std::fmax(a.alpha * v + a.beta, 0.f), 1.f);
    case Activation::kHardSwish:
      return v * std::fmin(std::fmax(v / 6.f + 0.5f, 0.f), 1.f);
    case Activation::kGelu:
      return 0.5f * v * (1.f + std::erf(v * 0.70710678f));
    default:
      return v;
  }
}

// n values uniform in [-1, 1), each exact in the storage type (float16 when `half`).
inline std::vector<float> RandomValues(size_t n, bool half, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& f : v) f = half ? __half2float(__float2half(u(rng))) : u(rng);
  return v;
}

// A device allocation freed on scope exit.
struct Buf {
  void* p = nullptr;
  ~Buf() { cudaFree(p); }
};

inline void Upload(Buf& b, const std::vector<float>& v, bool half) {
  const size_t bytes = v.size() * (half ? 2 : 4);
  ASSERT_EQ(cudaMalloc(&b.p, bytes), cudaSuccess);
  if (half) {
    std::vector<__half> h(v.size());
    for (size_t i = 0; i < v.size(); ++i) h[i] = __float2half(v[i]);
    ASSERT_EQ(cudaMemcpy(b.p, h.data(), bytes, cudaMemcpyHostToDevice), cudaSuccess);
  } else {
    ASSERT_EQ(cudaMemcpy(b.p, v.data(), bytes, cudaMemcpyHostToDevice), cudaSuccess);
  }
}

inline void Download(const Buf& b, std::vector<float>* v, bool half) {
  const size_t bytes = v->size() * (half ? 2 : 4);
  if (half) {
    std::vector<__half> h(v->size());
    ASSERT_EQ(cudaMemcpy(h.data(), b.p, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
    for (size_t i = 0; i < h.size(); ++i) (*v)[i] = __half2float(h[i]);
  } else {
    ASSERT_EQ(cudaMemcpy(v->data(), b.p, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
  }
}

}  // namespace kiln::cuda::test
