// The row kernel of a kiln.Pointwise body with reductions over the last axis
// (called by GeneratePointwise, pointwise_source.h). The domain [rows..., C]
// is walked one row per block (grid-stride over rows); each body value is
// element-level (varies along the row) or row-level (one per row: a
// reduction's result and what is computed from it). The kernel runs in
// phases: phase k loops over the row computing the element values the k-th
// level of reductions reads, the block combines the partial results
// (kiln_block_sum/max/min), every thread computes the row-level values that
// follow, and the last loop computes and stores the outputs. Element values
// are recomputed in each loop from the inputs (a row stays in L1/L2), so
// nothing but the outputs is written.
#pragma once

#include <string>

#include "build/codegen/pointwise_source.h"

namespace kiln::codegen {

// True when `s` is `domain` with its last dim 1: one value per row (a
// reduction's result, and what is computed from it).
bool RowShaped(const Shape& s, const Shape& domain);

Expected<PointwiseKernel> GenerateRowKernel(const Node& fused, int64_t opset, const std::string& name);

}  // namespace kiln::codegen
