// Means over the spatial axes as global average pools (see global_pool.h).
#include "passes/global_pool.h"

#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

// ReduceMean node `n` averages each [N, C] plane of its input of rank >= 4 over all its other axes. Not rank
// 3: the mean over the last axis of [B, S, H] is a LayerNorm's (lower_row_ops and the row kernels take it).
bool IsSpatialMean(const Node& n, int64_t opset) {
  if (!passes::IsOnnxOp(&n, "ReduceMean") || n.num_outputs() != 1 || n.num_inputs() < 1 || !n.input(0))
    return false;
  const Value* x = n.input(0);
  const DataType dt = x->dtype();
  if (dt != DataType::kFloat && dt != DataType::kFloat16 && dt != DataType::kBFloat16 &&
      dt != DataType::kDouble)
    return false;
  if (!x->shape().rank_known() || x->shape().rank() < 4) return false;
  const int64_t rank = x->shape().rank();
  std::optional<std::vector<int64_t>> axes = passes::NodeAxes(n, opset, 18, 1);
  if (!axes || axes->empty()) return false;  // none given: every axis (or none, noop_with_empty_axes)
  std::optional<std::vector<int64_t>> sorted = passes::NormalizeAxes(*axes, rank);
  if (!sorted || static_cast<int64_t>(sorted->size()) != rank - 2) return false;
  for (int64_t i = 0; i < rank - 2; ++i)
    if ((*sorted)[static_cast<size_t>(i)] != i + 2) return false;
  return true;
}

}  // namespace

Status RunGlobalPool(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  const int64_t opset = model.OpsetOf("");
  passes::ForEachGraph(*model.graph, [&](Graph& g) {
    std::vector<Node*> means;
    for (Node* n : g.nodes())
      if (IsSpatialMean(*n, opset)) means.push_back(n);
    for (Node* n : means) {
      Value* x = n->input(0);
      Value* y = n->output(0);
      const bool keep = passes::AttrInt(*n, "keepdims", 1) != 0;
      std::vector<Dim> pooled = {x->shape()[0], x->shape()[1]};
      for (int64_t i = 2; i < x->shape().rank(); ++i) pooled.emplace_back(1);
      Node* pool = g.InsertNode(n, "GlobalAveragePool", n->name);
      pool->AddInput(x);
      Value* out = keep ? y : passes::NewTensorValue(g, y->name() + "/pooled", x->dtype(), Shape(pooled));
      Node* reshape = nullptr;
      if (!keep) {
        reshape = g.InsertNode(n, "Reshape", g.UniqueName(n->name + "/flat"));
        reshape->AddInput(out);
        reshape->AddInput(passes::AddInt64Initializer(g, n->name + "/flat_shape", {0, -1}));
      }
      g.RemoveNode(n);
      pool->AddOutput(out);
      if (reshape) reshape->AddOutput(y);
      ctx.changed = true;
    }
  });
  return Status::Ok();
}

}  // namespace kiln
