// Build pass (run by RunBuildPasses after layout_nhwc): a chain of Transposes
// and reshapes (Reshape, Flatten, Squeeze, Unsqueeze) with single uses
// between them is one permutation of the source's elements whenever each
// reshape only splits or merges runs of the source's axes, refined into
// "atoms" as needed. Such a chain becomes
//
//   Reshape(x, atoms) → Transpose(atom permutation) → Reshape(y's shape)
//
// one copy instead of one per Transpose (none when the permutation is the
// identity). Window partitions are the common case: MaxViT's and Swin's
// Reshape → Transpose → Reshape around a layout Transpose or a head swap.
// A chain whose reshape regroups across atoms that are not adjacent (a
// gather, not a permutation) is split there and each part is tried alone.
// Symbolic dims stay whole atoms; the emitted Reshapes need at most one dim
// that is not known (written -1). Only the main graph.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunPermuteChains(Model& model, PassContext& ctx);

}  // namespace kiln
