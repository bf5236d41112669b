// The FP16 precision pass of `kiln build --fp16`: float32 weights and
// activations become float16; graph inputs and outputs keep their float32
// type through Cast nodes at the edges, so callers see the same interface.
// Kernels still accumulate in FP32 (and Softmax/LayerNorm/reductions compute
// in FP32 internally).
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunConvertToFp16(Model& model, PassContext& ctx);

}  // namespace kiln
