// Build pass (run by RunBuildPasses before fuse_pointwise, with pointwise fusion on): a channel shuffle of a
// Concat interleaves the Concat's operands. ShuffleNet's
//   S = Reshape(Transpose(Reshape(Concat(X_0, .., X_{G-1}, axis a), [.., G, m, ..]), a <-> a+1), [.., G·m,
//   ..])
// with every X_j of extent m along a is S[.., G·i + j, ..] = X_j[.., i, ..]:
//   S = Reshape(Concat(Reshape(X_j, [.., m, 1, ..]) for each j, axis a + 1), S's dims),
// and a Slice of S along a from s to e (multiples of G; ShuffleNetV2's chunk(2) of the shuffled channels,
// also as a Split) is the same interleave of the operands' Slices from s/G to e/G. fuse_pointwise makes each
// such Concat one generated kernel that reads its operands through the Slices (Reshapes are no copies): a
// ShuffleNetV2 unit's Concat, Transpose and two Slices (four passes over its channels) become two kernels,
// each reading and writing half of them.
// Other readers of S read the whole interleave. Only the main graph, opset 13 and later.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunInterleaveConcat(Model& model, PassContext& ctx);

}  // namespace kiln
