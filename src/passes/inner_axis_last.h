// Build pass (run by RunBuildPasses before permute_chains): in a chain of Transposes and reshapes whose
// source and result both end with the same axis (the channels of a channels-last tensor), every value in
// between is rewritten to end with that axis too, when it passes through each reshape whole. Each Transpose
// then moves rows of that axis (the GPU's copy moves them as 16-byte words) instead of single elements.
//
// MaxViT's window departition into NCHW followed by its grid partition back to channels-last,
//   [B, 8, 8, 7, 7, C] → Transpose → [B, C, 8, 7, 8, 7] → Reshape [B, C, 7, 8, 7, 8]
//                      → Transpose → [B, 8, 8, 7, 7, C]
// is a gather, not one permutation (H = 8·7 regrouped as 7·8), so permute_chains keeps both Transposes; both
// moved C away from the end (one a strided copy of 2-byte elements, one a tiled transpose 8 columns wide).
// Rewritten, the middle value is [B, 8, 7, 8, 7, C] → [B, 7, 8, 7, 8, C]. The axis must be at least
// kMinRow (8) long; a reshape keeps it whole when the result has an axis of the same length and the same
// known product of the axes after it.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunInnerAxisLast(Model& model, PassContext& ctx);

}  // namespace kiln
