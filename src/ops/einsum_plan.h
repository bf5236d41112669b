// Einsum's plan, shared by the CPU reference (ops/linalg_einsum.cc) and the
// CUDA kernel (backend/cuda/einsum.cu): the equation parsed against concrete
// operand dims (ellipsis, implicit output, broadcast labels, repeated labels
// as summed strides) into one loop nest: the output labels, then the summed
// ones, and every operand's stride along each loop label (0 where the operand
// lacks the label or broadcasts it).
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "ops/op_context.h"

namespace kiln {
namespace ops {

struct EinsumPlan {
  std::vector<std::vector<int>> labels;      // label id of each dim of each operand
  std::map<int, int64_t> size;               // label id → extent
  std::vector<int> order;                    // loop labels: the output's, then the summed ones
  size_t n_out = 0;                          // how many of `order` are output labels
  std::vector<int64_t> out_dims, loop_dims;  // extents of order[:n_out] and of order
  std::vector<std::vector<int64_t>> strides; // [operand][loop label]
  int64_t out_count = 1, inner_count = 1;    // products of the output / summed loop dims
};

Status PlanEinsum(const NodeContext& ctx, const std::vector<std::vector<int64_t>>& dims, EinsumPlan* plan);

}  // namespace ops
}  // namespace kiln
