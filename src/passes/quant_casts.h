// Build pass (run by RunBuildPasses after the fp16 pass): the Casts that join
// an FP16 graph to its INT8 layers, folded into the layers and the
// QuantizeLinears around them. The fp16 pass keeps the INT8 layers' nodes in
// float32 (their scales and epilogues are float32) and casts at the borders:
//
//   Cast(float16 → float32) → QuantizeLinear(x)   ⇒  QuantizeLinear(float16 x)
//   Cast(float16 → float32) → kiln.QConv… as z     ⇒  the layer reads the float16 z
//   kiln.QConv/QConvNhwc/QMatMul (float32 y) → Cast(→ float16)  ⇒  the layer writes float16 (to = 10)
//
// Bit for bit: a float16 value converts to float32 exactly, QuantizeLinear of a
// float16 x with a float32 scale divides in float32 (the CPU reference's numpy
// promotion, and the CUDA kernel), and the layer rounds its float32 result to
// float16 once, as the Cast did. Each Cast was a pass over the activation
// (ResNet-50's stem output: 6.4M values at batch 32, read 2 and written 4 bytes
// each, then read again by the QuantizeLinear).
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunQuantCasts(Model& model, PassContext& ctx);

}  // namespace kiln
