// The FusedConv epilogue on the device, VEC consecutive channels of one output
// pixel at a time: y = act(acc + bias + z), FP32 math, one 16-byte store. The
// kernels of our own convolutions share it (depthwise.cu, conv1x1_small.cu).
#pragma once

#include <cstdint>

#include "backend/cuda/activation.h"
#include "backend/cuda/kernel_util.cuh"

namespace kiln::cuda {

template <class T, int VEC>
struct alignas(sizeof(T) * VEC) Pack {
  T v[VEC];
};

__device__ inline float Activate(const ActivationSpec& a, float v) {
  switch (a.kind) {
    case Activation::kRelu: return v > 0.f ? v : (v == v ? 0.f : v);
    case Activation::kClip: return fminf(fmaxf(v, a.lo), a.hi);
    case Activation::kSigmoid: return 1.f / (1.f + expf(-v));
    case Activation::kSwish: return v / (1.f + expf(-v));
    case Activation::kHardSwish: return v * fminf(fmaxf(v / 6.f + 0.5f, 0.f), 1.f);
    case Activation::kHardSigmoid: return fminf(fmaxf(a.alpha * v + a.beta, 0.f), 1.f);
    default: return v;
  }
}

// y[out + k] = act(acc[k] + bias[c0 + k] + z[out + k]) for k < VEC; bias, z may be null. `out` is the flat
// index of channel c0 of the pixel.
template <class T, int VEC>
__device__ inline void StoreEpilogue(const T* __restrict__ bias, const T* __restrict__ z, T* __restrict__ y,
                                     int64_t out, int c0, const float acc[VEC], const ActivationSpec& act) {
  Pack<T, VEC> zin;
  if (z) zin = *reinterpret_cast<const Pack<T, VEC>*>(z + out);
  Pack<T, VEC> r;
#pragma unroll
  for (int k = 0; k < VEC; ++k) {
    float v = acc[k];
    if (bias) v += ToFloat(bias[c0 + k]);
    if (z) v += ToFloat(zin.v[k]);
    r.v[k] = FromFloat<T>(Activate(act, v));
  }
  *reinterpret_cast<Pack<T, VEC>*>(y + out) = r;
}

}  // namespace kiln::cuda
