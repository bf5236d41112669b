// n / d for 0 <= n, d < 2^31 as a multiply-high and a shift (d >= 1), the round-up-multiplier method
// CUTLASS's FastDivmod uses: two instructions on the GPU where a 32-bit division by a runtime value takes
// ~20. The constants are made on the host (MakeFastDiv) and passed to kernels; Divide computes the same bits
// on either side (the host's 64-bit product is the device's __umulhi), so a CPU test checks what the kernels
// compute.
#pragma once

#include <cstdint>

#include "core/host_device.h"

namespace kiln {

struct FastDiv {
  uint32_t d = 1, mul = 0, shr = 0;
};

inline FastDiv MakeFastDiv(uint32_t d) {
  FastDiv f;
  f.d = d;
  if (d <= 1) return f;
  uint32_t log2_up = 0;
  while ((uint64_t{1} << log2_up) < d) ++log2_up;
  const uint32_t p = 31 + log2_up;
  f.mul = static_cast<uint32_t>(((uint64_t{1} << p) + d - 1) / d);
  f.shr = p - 32;
  return f;
}

KILN_HOST_DEVICE inline uint32_t Divide(const FastDiv& f, uint32_t n) {
  if (f.d == 1) return n;
#if defined(__CUDA_ARCH__)
  return __umulhi(n, f.mul) >> f.shr;
#else
  return static_cast<uint32_t>((static_cast<uint64_t>(n) * f.mul) >> 32) >> f.shr;
#endif
}

}  // namespace kiln
