// Build pass (run by RunBuildPasses before fuse_attention): an Einsum that is
// a batched matrix product becomes MatMul, which runs on cuBLAS and which the
// attention fusion recognizes. Models that write attention with einsum
// (MaxViT: "B G H I D, B G H J D -> B G H I J"; Stable Diffusion's and many
// hand-written ones: "b i d, b j d -> b i j") then take the same path as
// those that write MatMul:
//
//   "<P>ik,<P>kj-><P>ij"  ⇒  MatMul(A, B)
//   "<P>ik,<P>jk-><P>ij"  ⇒  MatMul(A, Transpose(B, last two axes swapped))
//
// P: the same batch letters, in the same order, in both operands and the
// result; i, j, k distinct letters not in P; no ellipsis, no repeated letter.
// Both operands' batch dims must be provably equal (Einsum does not
// broadcast them; MatMul would). Only the main graph.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunEinsumToMatMul(Model& model, PassContext& ctx);

}  // namespace kiln
