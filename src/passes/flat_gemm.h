// Build pass (run by RunBuildPasses before the attention passes): a Gemm on
// tokens flattened to 2-D and viewed back,
//   Reshape(Gemm(Reshape(x [..., K], [-1, K]), B, C?), [..., N]),
// becomes MatMul(x, B') [+ Add(C)] on x as it is: transformers' GPT-2 Conv1D
// (`addmm(bias, x.view(-1, K), w).view(size_out)`) and other exports that
// flatten before a Linear. B' is B, or B transposed at build time for
// transB = 1; alpha, when not 1, scales B'. Downstream, the fusions written for
// Linear layers apply: the bias, a GELU and the residual Add in the product's
// epilogue, Q/K/V packing, attention. Needs transA 0, constant B, a constant
// C of N values (or one) and beta 1 when C is given, the view back to x's
// leading dims (equal dims by shape inference), and single uses.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunFlatGemm(Model& model, PassContext& ctx);

}  // namespace kiln
