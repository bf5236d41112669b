// Build pass (after the precision pass, before the row-op lowering and
// pointwise fusion): a kiln.FusedMatMul with no activation and no residual
// whose only reader is a GELU (kiln.Gelu or ONNX Gelu) takes it into its
// cuBLASLt epilogue (activation "GeluTanh": CUBLASLT_EPILOGUE_GELU_BIAS), so
// fc1's output is written once, already activated, instead of written, read
// and written again by a GELU kernel (BERT-base at batch 32: [4096, 3072]
// float16 twice a layer).
//   - tanh GELU (GPT-2, GPT-J, BLOOM, Gemma; fuse_gpu's kiln.Gelu(approximate
//     = "tanh")): exact, in every float type.
//   - erf GELU (BERT, ViT, most encoders): cuBLASLt has only the tanh form,
//     which differs from erf by at most 4.8e-4 (at x ≈ 2.7, where float16's
//     spacing is 2e-3): taken only when the product's output is float16 or
//     bfloat16, where that is below the storage's resolution. The precision
//     report says so. FP32 builds keep the exact GELU kernel.
// RunBuildPasses runs it unless BuildOptions::gelu_epilogue is off (--no-gelu-epilogue: every GELU its own
// kernel, for A/B timing).
#pragma once

#include <string>
#include <vector>

#include "passes/pass.h"

namespace kiln {

Status RunGeluEpilogue(Model& model, PassContext& ctx, std::vector<std::string>* report);

}  // namespace kiln
