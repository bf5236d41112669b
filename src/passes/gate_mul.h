// Build-time rewrite for the CUDA engine (run by RunBuildPasses after the channels-last layout and the
// precision pass, before pointwise fusion): a squeeze-and-excitation gate's last convolution and the Mul
// that applies it become one node,
//
//   G = kiln.FusedConvNhwc(H [N,1,1,R], W [C,1,1,R], B?)   Y = Mul(X [N,H,W,C], G)   (either order)
//     ⇒ Y = kiln.GateMulNhwc(X, H, W, B?)   (the convolution's attributes; src/ops/kiln_gate_mul.cc)
//
// whose kernel computes each block's C-slice of gates from H and W before it scales X
// (src/backend/cuda/gate_mul.cu): one launch instead of two per gate. MobileNetV3 has 8 such gates and
// EfficientNetV2-S 30; at batch 1 their launches, not their bytes, are the cost. Taken when the
// convolution is 1x1 (group 1, stride 1, no padding, dilation 1, no residual) on a 1x1 map, W is constant,
// G has no other use, X has G's N and C with Y of X's dims (the gate broadcasts over the pixels only), and
// X, H, W, B are one float type.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunFuseGateMul(Model& model, PassContext& ctx);

}  // namespace kiln
