// Scatter attribute and shape checks (scatter_plan.h); the CUDA kernel shares them with the CPU reference.
#include "ops/scatter_plan.h"

#include <string>

#include "ops/op_util.h"

namespace kiln {
namespace ops {

Status ReadScatterReduction(const NodeContext& ctx, ScatterReduction* r) {
  const std::string s = ctx.attr_string("reduction", "none");
  if (s == "none")
    *r = ScatterReduction::kNone;
  else if (s == "add")
    *r = ScatterReduction::kAdd;
  else if (s == "mul")
    *r = ScatterReduction::kMul;
  else if (s == "max")
    *r = ScatterReduction::kMax;
  else if (s == "min")
    *r = ScatterReduction::kMin;
  else
    return ctx.Error("unknown reduction '" + s + "'");
  return Status::Ok();
}

Status CheckScatterElements(const NodeContext& ctx, const std::vector<int64_t>& data,
                            const std::vector<int64_t>& indices, const std::vector<int64_t>& updates,
                            int64_t* axis) {
  const int64_t rank = static_cast<int64_t>(data.size());
  if (static_cast<int64_t>(indices.size()) != rank || updates != indices)
    return ctx.Error("indices must match updates in shape and data in rank");
  KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", 0), rank, axis));
  for (size_t d = 0; d < data.size(); ++d)
    if (static_cast<int64_t>(d) != *axis && indices[d] > data[d])
      return ctx.Error("indices dim " + std::to_string(d) + " exceeds data");
  return Status::Ok();
}

Status CheckScatterND(const NodeContext& ctx, const std::vector<int64_t>& data,
                      const std::vector<int64_t>& indices, const std::vector<int64_t>& updates,
                      ScatterNDPlan* plan) {
  if (indices.empty()) return ctx.Error("indices must have rank >= 1");
  const int64_t m = indices.back();
  if (m < 0 || m > static_cast<int64_t>(data.size())) return ctx.Error("index depth exceeds the data's rank");
  // updates shape = indices.shape[:-1] + data.shape[m:]
  std::vector<int64_t> want(indices.begin(), indices.end() - 1);
  want.insert(want.end(), data.begin() + m, data.end());
  if (updates != want) return ctx.Error("updates shape does not match indices and data");
  *plan = ScatterNDPlan{m, 1, 1};
  for (size_t d = static_cast<size_t>(m); d < data.size(); ++d) plan->slab *= data[d];
  for (size_t d = 0; d + 1 < indices.size(); ++d) plan->picks *= indices[d];
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
