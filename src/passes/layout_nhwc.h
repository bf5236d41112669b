// Channels-last layout for the CUDA engine (run by RunBuildPasses after
// fuse_gpu, before the precision pass, for FP16 builds). cuDNN's tensor-core
// convolutions work on NHWC; fed NCHW they transform layouts on every call
// (most of resnet50's GPU time at batch 32). This pass rewrites, in the main
// graph:
//   Conv / kiln.FusedConv (2 spatial dims, constant 4-D W, float types)
//       ⇒ kiln.FusedConvNhwc (X, Z, Y in NHWC; W permuted once to [K,R,S,C/g])
//   MaxPool / AveragePool / GlobalAveragePool / GlobalMaxPool whose input is
//   already available in NHWC ⇒ kiln.PoolNhwc
//   inference BatchNormalization whose input is available in NHWC ⇒ its
//   per-channel affine as Mul and Add by [C] constants
//   elementwise ops (unary, kiln.Gelu, and binary Add/Sub/Mul/Div/Max/Min/PRelu) on 4-D
//   tensors where an input is available in NHWC: they run on the NHWC tensors
//   (constant operands are permuted; other 4-D operands get a Transpose)
//   Concat, Slice and Pad on 4-D tensors with an input available in NHWC: on
//   the NHWC tensors, with their axis, axes or pads remapped (Inception's
//   branch concats, ShuffleNet's channel splits)
//   ShuffleNet's channel shuffle (Reshape to 5-D, Transpose(0,2,1,3,4),
//   Reshape back) on an NHWC input: the same shuffle written for NHWC
// A 4-D value made by a permutation chain (a Transpose, then reshapes) counts
// as available in NHWC when all its users are ops above and one of them is a
// convolution, pooling or BatchNorm: permute_chains then folds its Transpose
// to NHWC into the chain (MaxViT's window departition feeding the next
// block's BatchNorm and shortcut pooling).
// Walking the schedule once, it keeps for each NCHW value its NHWC twin. A
// rewritten node produces the twin, and a Transpose back to NCHW produces the
// original value (same name), so every other user, and graph outputs, see
// what they saw before; Transposes nobody uses are removed at the end. An
// NCHW input of a rewritten node gets one Transpose to NHWC, shared by all its
// NHWC users. The graph's results are unchanged (bit for bit on the CPU).
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunChannelsLast(Model& model, PassContext& ctx);

}  // namespace kiln
