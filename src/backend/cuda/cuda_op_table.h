// Lookup in the CUDA op table (cuda_ops.def).
#pragma once

#include <string_view>

#include "backend/cuda/gpu_op.h"
#include "backend/gpu_caps.h"

namespace kiln::cuda {

// nullptr when the op has no CUDA implementation.
GpuOpFactory FindGpuOp(std::string_view domain, std::string_view op_type);

// Asks the node's factory whether it can make the op (no GPU needed): the
// probe FindGpuGaps runs after the declared capabilities.
GpuProbe FactoryProbe(bool fp16);

// The factories (Expected<std::unique_ptr<GpuOp>> F(const GpuOpInfo&)) are
// declared where the table is built (cuda_op_table.cc), so that a new row
// recompiles only that file; a factory defined with another signature fails
// to link.

}  // namespace kiln::cuda
