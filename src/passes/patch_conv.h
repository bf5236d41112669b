// Build-time rewrite for the CUDA engine (run by RunBuildPasses after the
// simplifier, before fuse_gpu): a 2-D "patch" convolution — kernel equal to
// stride, no padding, no dilation, one group, as ViT-style patch embeddings
// are — is one GEMM over non-overlapping patches:
//
//   Y = Conv(X[N,C,H,W], W[K,C,p,q], B)          (H % p == 0, W % q == 0)
//     ⇒ A = Reshape(Transpose(Reshape(X, [-1,C,H/p,p,W/q,q]), [0,2,4,1,3,5]), [-1, C·p·q])
//       Y = Transpose(Reshape(Gemm(A, W[K, C·p·q], B, transB=1), [-1,H/p,W/q,K]), [0,3,1,2])
//
// and when Y's only use is the flatten-and-transpose that follows patch
// embeddings (Reshape to [N, K, H/p·W/q], then Transpose [0,2,1]), that pair
// becomes one Reshape of the GEMM's output to [-1, H/p·W/q, K].
// cuDNN runs these convolutions (3 input channels, 16x16 stride-16 kernels)
// far below GEMM speed, in NHWC above all. Needs a constant W (and B), known
// C, H, W, p·q > 1, and opset >= 11 when there is no bias (Gemm's optional C).
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunPatchConvToGemm(Model& model, PassContext& ctx);

}  // namespace kiln
