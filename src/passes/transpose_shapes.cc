// Build pass: Transposes read only by Shape nodes go (see transpose_shapes.h).
#include "passes/transpose_shapes.h"

#include <vector>

#include "passes/pass_util.h"

namespace kiln {

Status RunTransposeShapes(Model& model, PassContext& ctx) {
  if (!model.graph) return Status::Ok();
  Graph& g = *model.graph;
  std::vector<Node*> transposes;
  for (Node* n : g.nodes()) {
    if (!passes::IsOnnxOp(n, "Transpose") || !passes::IsPlainNode(n, 1)) continue;
    Value* y = n->output(0);
    if (y->uses().empty() || passes::IsAnyGraphOutput(g, y) || !passes::AttrInts(*n, "perm")) continue;
    bool only_shapes = true;
    for (const Node* u : y->uses())
      only_shapes &= passes::IsOnnxOp(u, "Shape") && u->graph() == &g && !u->attr("start") && !u->attr("end");
    if (only_shapes) transposes.push_back(n);
  }
  for (Node* t : transposes) {
    const std::vector<int64_t> perm = *passes::AttrInts(*t, "perm");
    const std::vector<Node*> readers = t->output(0)->uses();
    for (Node* shape : readers) passes::ReadShapeThroughPermutation(g, shape, t->input(0), perm);
    g.RemoveNode(t);
  }
  if (!transposes.empty()) {
    g.RemoveUnusedValues();
    ctx.changed = true;
  }
  return Status::Ok();
}

}  // namespace kiln
