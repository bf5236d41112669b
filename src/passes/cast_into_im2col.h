// Build-time rewrite for the CUDA engine (run by RunBuildPasses after the fp16
// pass): kiln.Im2Col reads through the Cast before it,
//
//   A = kiln.Im2Col(Cast(X, to = T))  ⇒  A = kiln.Im2Col(X, to = T)
//
// for float types (float32/float16/bfloat16 both sides). Each element of A is
// still Cast's conversion of the element it copies, so A is unchanged; the
// Cast (a full pass over the model's input: 0.058 ms of ResNet-50's 1.28 ms at
// batch 32 on an H100, `input_to_fp16`) goes when nothing else reads it. The
// Im2Col of an RGB stem (stem_im2col) reads the model's input, which the fp16
// pass converts first.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunCastIntoIm2Col(Model& model, PassContext& ctx);

}  // namespace kiln
