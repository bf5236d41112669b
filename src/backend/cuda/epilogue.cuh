// The FusedConv epilogue on the device, VEC consecutive channels of one output
// pixel at a time: y = act(acc + bias + z), FP32 math, one 16-byte store. The
// kernels of our own convolutions share it (depthwise.cu, conv1x1_small.cu).
#pragma once

#include <cstdint>
#include <type_traits>

#include "backend/cuda/activation.h"
#include "backend/cuda/kernel_util.cuh"

namespace kiln::cuda {

template <class T, int VEC>
struct alignas(sizeof(T) * VEC) Pack {
  T v[VEC];
};

// 1 / (1 + e^-v) on the special-function unit: ex2.approx and rcp.approx, ~6 instructions against ~25 for
// expf and an IEEE division (SASS of the depthwise kernels: a Swish epilogue of 8 channels went from ~210 to
// ~70 instructions; with FastDiv, the suite's depthwise layers ran 1.3-1.9x faster on an H100).
// Error: __expf's 2 + 1.16·|v| ulp, rcp.approx's 1 ulp — below 1e-5 relative for |v| < 20, far below FP16's
// rounding. v < -87 gives 0 where the true value is below FP32's normal range; NaN stays NaN.
__device__ inline float FastSigmoid(float v) { return __fdividef(1.f, 1.f + __expf(-v)); }

template <Activation kKind>
__device__ inline float ActivateAs(const ActivationSpec& a, float v) {
  if constexpr (kKind == Activation::kRelu)
    return v > 0.f ? v : (v == v ? 0.f : v);
  else if constexpr (kKind == Activation::kClip)
    return fminf(fmaxf(v, a.lo), a.hi);
  else if constexpr (kKind == Activation::kSigmoid)
    return FastSigmoid(v);
  else if constexpr (kKind == Activation::kSwish)
    return v * FastSigmoid(v);
  else if constexpr (kKind == Activation::kHardSwish)
    return v * fminf(fmaxf(fmaf(v, 1.f / 6.f, 0.5f), 0.f), 1.f);  // (v / 6: an IEEE division)
  else if constexpr (kKind == Activation::kHardSigmoid)
    return fminf(fmaxf(a.alpha * v + a.beta, 0.f), 1.f);
  else if constexpr (kKind == Activation::kLeakyRelu)  // NaN passes, as the LeakyRelu kernel
    return v < 0.f ? a.alpha * v : v;
  else if constexpr (kKind == Activation::kGelu)  // as the Gelu kernel (elementwise.cu)
    return 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
  else
    return v;
}

// f(kind) with a's kind as a std::integral_constant: one switch, whatever f does per element.
template <class F>
__device__ inline void WithActivation(const ActivationSpec& a, F f) {
  switch (a.kind) {
    case Activation::kRelu:
      return f(std::integral_constant<Activation, Activation::kRelu>{});
    case Activation::kClip:
      return f(std::integral_constant<Activation, Activation::kClip>{});
    case Activation::kSigmoid:
      return f(std::integral_constant<Activation, Activation::kSigmoid>{});
    case Activation::kSwish:
      return f(std::integral_constant<Activation, Activation::kSwish>{});
    case Activation::kHardSwish:
      return f(std::integral_constant<Activation, Activation::kHardSwish>{});
    case Activation::kHardSigmoid:
      return f(std::integral_constant<Activation, Activation::kHardSigmoid>{});
    case Activation::kGelu:
      return f(std::integral_constant<Activation, Activation::kGelu>{});
    case Activation::kLeakyRelu:
      return f(std::integral_constant<Activation, Activation::kLeakyRelu>{});
    default:
      return f(std::integral_constant<Activation, Activation::kNone>{});
  }
}

__device__ inline float Activate(const ActivationSpec& a, float v) {
  float r = v;
  WithActivation(a, [&](auto kind) { r = ActivateAs<decltype(kind)::value>(a, v); });
  return r;
}

// y[out + k] = act(acc[k] + bias[c0 + k] + z[out + k]) for k < VEC; bias, z may be null. `out` is the flat
// index of channel c0 of the pixel.
template <class T, int VEC>
__device__ inline void StoreEpilogue(const T* __restrict__ bias, const T* __restrict__ z, T* __restrict__ y,
                                     int64_t out, int c0, const float acc[VEC], const ActivationSpec& act) {
  Pack<T, VEC> zin;
  if (z) zin = *reinterpret_cast<const Pack<T, VEC>*>(z + out);
  float v[VEC];
#pragma unroll
  for (int k = 0; k < VEC; ++k) {
    v[k] = acc[k];
    if (bias) v[k] += ToFloat(bias[c0 + k]);
    if (z) v[k] += ToFloat(zin.v[k]);
  }
  Pack<T, VEC> r;
  // One switch on the activation for the VEC values (it was one per value: ncu counted ~1300 instructions
  // per depthwise thread-pixel, the epilogue a large share of them).
  WithActivation(act, [&](auto kind) {
#pragma unroll
    for (int k = 0; k < VEC; ++k) r.v[k] = FromFloat<T>(ActivateAs<decltype(kind)::value>(act, v[k]));
  });
  *reinterpret_cast<Pack<T, VEC>*>(y + out) = r;
}

}  // namespace kiln::cuda
