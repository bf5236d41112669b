// ScatterElements' and ScatterND's attribute reader and shape checks, shared
// by the CPU reference (ops/shape_scatter.cc) and the CUDA kernel
// (backend/cuda/scatter.cu), so both accept the same nodes and name the same
// errors.
#pragma once

#include <cstdint>
#include <vector>

#include "ops/op_context.h"

namespace kiln {
namespace ops {

enum class ScatterReduction { kNone, kAdd, kMul, kMax, kMin };

Status ReadScatterReduction(const NodeContext& ctx, ScatterReduction* r);

// ScatterElements: indices and updates of one shape and the data's rank, no
// dim over the data's off the axis. Sets the normalised axis.
Status CheckScatterElements(const NodeContext& ctx, const std::vector<int64_t>& data,
                            const std::vector<int64_t>& indices, const std::vector<int64_t>& updates,
                            int64_t* axis);

// ScatterND: updates = indices[:-1] + data[m:] for index depth m. Sets m, the
// number of index tuples (picks) and the elements each one writes (slab).
struct ScatterNDPlan {
  int64_t depth = 0, picks = 1, slab = 1;
};
Status CheckScatterND(const NodeContext& ctx, const std::vector<int64_t>& data, const std::vector<int64_t>& indices,
                      const std::vector<int64_t>& updates, ScatterNDPlan* plan);

}  // namespace ops
}  // namespace kiln
