// Lookup in the CUDA op table (cuda_ops.def).
#pragma once

#include <string_view>

#include "backend/cuda/gpu_op.h"

namespace kiln::cuda {

// nullptr when the op has no CUDA implementation.
GpuOpFactory FindGpuOp(std::string_view domain, std::string_view op_type);

#define KILN_CUDA_OP(domain, name, factory) Expected<std::unique_ptr<GpuOp>> factory(const GpuOpInfo&);
#include "backend/cuda/cuda_ops.def"
#undef KILN_CUDA_OP

}  // namespace kiln::cuda
