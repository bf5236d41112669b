// FP8 E4M3 conversion on the device, shared by the kernels that store E4M3 (f8gemm.cu's quantization,
// norm.cu's kiln.LayerNormE4M3): v / s in float, then the hardware conversion (round to nearest even,
// saturate to ±448, NaN stays NaN): the bits of core/float8.h QuantizeE4M3, the CPU reference's function.
#pragma once

#include <cuda_fp8.h>

#include <cstdint>

namespace kiln::cuda {

__device__ inline uint8_t ToE4M3(float v, float s) {
  return __nv_cvt_float_to_fp8(v / s, __NV_SATFINITE, __NV_E4M3);
}

}  // namespace kiln::cuda
