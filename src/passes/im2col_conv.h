// Build-time rewrite for the CUDA engine (run by RunBuildPasses after cast_into_im2col, in FP16 builds): the
// pair stem_im2col writes for a convolution of few input channels becomes one node,
//
//   A = kiln.Im2Col(X)  Y = kiln.FusedConvNhwc(A, W[K,1,1,columns], B?)
//     ⇒ Y = kiln.Im2ColConv(X, W, B?)          (both nodes' attributes; src/ops/kiln_im2col_conv.cc)
//
// whose kernel gathers each block's windows into shared memory and multiplies them there
// (src/backend/cuda/im2col_conv.cu), so A (ResNet-50's stem at batch 32: 122 MB) is never written or read
// back. Taken when A is float16 and read by that convolution alone, W is a float16 constant of at most 256
// columns (a multiple of 8, as stem_im2col writes them) and a multiple of 8 rows, B (if any) float16, there
// is no residual, and the input rows 128 output pixels' windows cover fit 64 KB as float16 (the kernel's
// tile). Runs with --im2col-conv only (BuildOptions::im2col_conv): the kernel is exact against the CPU
// reference but slower than the pair so far (H100, batch 32: ResNet-50's stem 0.212 ms against 0.099 + 0.072,
// EfficientNetV2-S's 0.387 against 0.150 for the gather alone; a version without the tile 0.194 ms). ncu:
// instruction-bound (SM 62%, DRAM 6%, occupancy 37.5%); the pair is within 2x of the bandwidth bound.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunFuseIm2ColConv(Model& model, PassContext& ctx);

}  // namespace kiln
