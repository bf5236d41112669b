// Build pass (after gate_mul, before pointwise fusion): a squeeze-and-excitation gate applied right before a
// 1x1 projection scales the projection's weights instead of the activations, per sample:
//
//   Y = kiln.GateMulNhwc(X [N,H,W,C], Hs, We, be?)       (Y = X · g, g = act(We·Hs + be) [N,1,1,C])
//   P = kiln.FusedConvNhwc(Y, Wp [K,1,1,C], bp?, Z?)     (1x1, stride 1, activation "" or Relu)
//     ⇒ g  = kiln.FusedConvNhwc(Hs, We, be?)             (the gate, [N,1,1,C])
//       Wn = Mul(Reshape(g, [N, C, 1]), Wpᵀ [C, K])       (N weight matrices)
//       P  = Reshape(FusedMatMul(Reshape(X, [N, H·W, C]), Wn, bp?, Z as [N, H·W, K]), [N, H, W, K])
//
// (X · g)·Wp = X·(diag(g)·Wp): GateMulNhwc read and wrote the expanded map (EfficientNetV2-S's stage 5 at
// batch 32: 2 × 35 MB a block) where Wn is N·C·K values (10 MB), and the product reads X as before, one
// strided-batched GEMM over the samples. EfficientNet, EfficientNetV2, MobileNetV3, RegNetY, MnasNet-A put
// the projection right after the gate. The rewrite costs a launch (three kernels for two): it is taken where
// the traffic it saves at the build's batch (the samples dim's value, or its opt in `profiles`; 1 when
// neither says), 2·N·H·W·C values less the 2·N·C·K of Wn, is 8 MB or more (about what a launch costs at an
// H100's bandwidth), Y has no other use, and the types are one float type. At batch 32 EfficientNetV2-S's
// stages 4 and 5 qualify (stage 6's 12x12 maps do not); at batch 1 nothing does.
#pragma once

#include <map>
#include <string>

#include "kiln/engine.h"
#include "passes/pass.h"

namespace kiln {

Status RunGateIntoProjection(Model& model, PassContext& ctx,
                             const std::map<std::string, ShapeRange>& profiles);

}  // namespace kiln
