// Build-time rewrite for the CUDA engine (run by RunBuildPasses before
// fuse_attention): a Gather of one constant index through a Transpose (and an
// optional Squeeze) reads the Transpose's input instead,
//
//   Gather(Squeeze(Transpose(Y, perm), axes), i, axis=a)
//     ⇒ Reshape(Gather(Y, i, axis=perm[t]), shape of the old result)
//
// (t: the Transpose output axis that a names), when the axes left after the
// Gather keep their order in Y up to size-1 axes, so that a Reshape (no data
// movement) stands for the rest of the Transpose. torch 2's
// nn.MultiheadAttention splits Q, K and V this way (unflatten to [.., 3, E],
// Transpose the 3 to the front, Squeeze, Gather 0/1/2): the rewrite drops
// that full copy of the projection. The Transpose and Squeeze go once their
// last Gather is rewritten. Needs a scalar constant index, known ranks, and
// at most one unknown dim in the result (the Reshape's -1).
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunGatherThroughTranspose(Model& model, PassContext& ctx);

}  // namespace kiln
