// The matrix-product epilogue of kiln's fused ops (ops/kiln_fused.cc):
//   Y = act(product + bias + Z)
// with bias a 1-D vector of one value per column (optional), Z a residual of
// the product's shape (optional) and act the "activation" attribute, "" or
// "Relu" (the cuBLASLt epilogues). Shared by kiln.FusedMatMul and kiln.F8MatMul
// (ops/kiln_f8.cc), whose bias and Z sit at different input positions.
#pragma once

#include <cstddef>

#include "ops/op_context.h"

namespace kiln {
namespace ops {

// Checks the epilogue's inputs and attribute at shape inference. `n`: the
// product's column count (unknown allowed); `type`: the product's element type
// (kUndefined when not known yet), which bias and Z must share. Call after the
// product's output is set (Z is checked against it).
Status InferProductEpilogue(InferContext& ctx, size_t bias_at, size_t z_at, const Dim& n, DataType type);

// Applies the epilogue to the product `y` in place, rounding to y's storage
// type after each step exactly as the unfused Add, Add and Relu do.
Status RunProductEpilogue(RunContext& ctx, Tensor* y, size_t bias_at, size_t z_at);

}  // namespace ops
}  // namespace kiln
