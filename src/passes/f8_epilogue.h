// The next product's E4M3 quantization taken into the kernel that produces its input (`kiln build --fp8`,
// after the precision pass and the row-op lowering, before pointwise fusion):
//   F8MatMul(to float16, no z, activation "" | "Relu") [→ kiln.Gelu | Gelu, when the activation is ""]
//     → kiln.QuantizeE4M3(·, scale)
//                                ⇒ F8MatMul(to float8e4m3fn, activation, y_scale_inv = 1/scale)
// BERT's fc1 → GELU → fc2: the GELU and the quantization were one generated kernel that read fc1's float16
// output and wrote E4M3 (0.026 ms a layer at BERT-base batch 32 on an H100); now fc1 writes E4M3 itself.
// cuBLASLt's GELU is the tanh form: an erf GELU becomes activation "GeluTanh", within 4.8e-4 of the erf
// form everywhere (largest at x ≈ 2.7, 0.02% of GELU there; E4M3's rounding step is 6 to 12% of a value).
//   LayerNormalization (last axis, only Y used) with a kiln.QuantizeE4M3(Y, scale) among Y's users
//                                ⇒ kiln.LayerNormE4M3(x, scale, bias, q_scale) → (Y, the E4M3 copy)
// BERT's post-LN blocks: the LayerNorm's Y is the next block's residual and, quantized, its QKV (or fc1)
// input; the quantization was a kernel of its own (24 of 35 QuantizeE4M3 at BERT-base, 6 us each on an H100).
// Each rewrite adds a line to `report` (the plan's precision report) saying so. Intermediate values must have
// one use and not be graph outputs; the scale must be a constant positive finite float32 scalar.
#pragma once

#include <string>
#include <vector>

#include "passes/pass.h"

namespace kiln {

Status RunFuseF8Epilogue(Model& model, PassContext& ctx, std::vector<std::string>* report);

}  // namespace kiln
