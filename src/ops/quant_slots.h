// Input slots of kiln's INT8 layers, kiln.QConv / kiln.QConvNhwc / kiln.QMatMul (ops/kiln_quant.cc), shared
// by the CPU reference, the passes that build and rewrite them and the CUDA kernels (backend/cuda/qgemm.cu).
#pragma once

#include <cstddef>

namespace kiln::quant_slots {

constexpr size_t kX = 0, kXScale = 1, kXZp = 2, kW = 3, kWScale = 4, kWZp = 5, kBias = 6, kYScale = 7,
                 kYZp = 8, kZ = 9, kZScale = 10, kZZp = 11;

}  // namespace kiln::quant_slots
