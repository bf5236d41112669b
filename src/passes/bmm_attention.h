// Build pass (run by RunBuildPasses right before fuse_attention): BART-style
// attention (HF BART, CLIP, Whisper, Marian, Pegasus) multiplies 3-D
// [B·H, S, D] views and adds its mask to a 4-D view of the scores in between:
//
//   Q3 = Reshape(Q4, [B·H, Sq, D])      Q4 = Transpose(.., [0, 2, 1, 3]) [B, H, Sq, D]
//   K3, V3 likewise; S3 = MatMul(Q3, Transpose(K3, [0, 2, 1]))
//   A  = Add(...Add(Reshape(S3, [B, H, Sq, L]), mask)...)      one or more Adds
//   Y3 = MatMul(Softmax(Reshape(A, [B·H, Sq, L])), V3)
//   Y4 = Reshape(Y3, [B, H, Sq, Dv])
//
// The same computes in 4-D, every Reshape above being a view of the same
// bytes: S4 = MatMul(Q4, Transpose(K4, [0, 1, 3, 2])), A as before on S4,
// Y4 = MatMul(Softmax(A), V4). fuse_attention then finds its usual 4-D
// pattern with the mask as the bias (before, the Reshape between the mask Add
// and the Softmax hid both), and attention_views takes the head Transposes.
// Every intermediate has one use; H, D and Dv are known; only the main graph.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunBmmAttention(Model& model, PassContext& ctx);

}  // namespace kiln
