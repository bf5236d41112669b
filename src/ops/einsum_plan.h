// Einsum's plan, shared by the CPU reference (ops/linalg_einsum.cc) and the
// CUDA kernel (backend/cuda/einsum.cu): the equation parsed against concrete
// operand dims (ellipsis, implicit output, broadcast labels, repeated labels
// as summed strides) into one loop nest: the output labels, then the summed
// ones, and every operand's stride along each loop label (0 where the operand
// lacks the label or broadcasts it).
#pragma once

#include <cstddef>
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

// The equation's parts, for the plan and the CPU reference's shape inference
// (ops/linalg_einsum.cc); ops/einsum_plan.cc.
namespace einsum {

constexpr int kEllipsisBase = 52;  // label ids: 0-51 letters, then ellipsis dims

// One term of the equation: letters with an optional ellipsis position.
struct Term {
  std::vector<int> letters;  // letter ids in order (ellipsis excluded)
  int ellipsis_at = -1;      // index into letters where "..." sits, or -1
};

struct Equation {
  std::vector<Term> inputs;
  Term output;
  bool explicit_output = false;
};

Status ParseEquation(const NodeContext& ctx, size_t num_inputs, Equation* eq);

// Label ids of each dim of an operand of the given rank; ellipsis dims are
// right-aligned to `ell_rank` ids starting at kEllipsisBase.
Status OperandLabels(const NodeContext& ctx, const Term& t, int rank, int ell_rank, std::vector<int>* out);

// Output label ids (explicit, or numpy's implicit rule: ellipsis dims, then
// letters used once, in ASCII order).
std::vector<int> OutputLabels(const Equation& eq, int ell_rank);

int EllipsisRank(const Equation& eq, const std::vector<int>& ranks);

}  // namespace einsum

}  // namespace ops
}  // namespace kiln
