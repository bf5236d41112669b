// Build pass: Shape reads of Transposes read the Transpose's input (see transpose_shapes.h).
#include "passes/transpose_shapes.h"

#include <optional>
#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

// The permutation entries a Shape node reads (its start/end).
std::vector<int64_t> ReadEntries(const Node& shape, const std::vector<int64_t>& perm) {
  int64_t start = 0, end = 0;
  passes::ShapeReadRange(shape, static_cast<int64_t>(perm.size()), &start, &end);
  return std::vector<int64_t>(perm.begin() + start, perm.begin() + end);
}

}  // namespace

Status RunTransposeShapes(Model& model, PassContext& ctx) {
  if (!model.graph) return Status::Ok();
  Graph& g = *model.graph;
  bool changed = false;
  std::vector<Node*> transposes;  // first: a rewrite removes the Shape nodes after its Transpose
  for (Node* n : g.nodes())
    if (passes::IsOnnxOp(n, "Transpose") && passes::IsPlainNode(n, 1)) transposes.push_back(n);
  for (Node* t : transposes) {
    Value* y = t->output(0);
    std::optional<std::vector<int64_t>> perm = passes::AttrInts(*t, "perm");
    if (!perm || passes::IsAnyGraphOutput(g, y)) continue;
    std::vector<Node*> shapes;
    for (Node* u : y->uses())
      if (passes::IsOnnxOp(u, "Shape") && u->graph() == &g && passes::IsPlainNode(u, 1)) shapes.push_back(u);
    if (shapes.empty()) continue;
    for (Node* shape : shapes) {
      const std::vector<int64_t> entries = ReadEntries(*shape, *perm);
      if (entries.empty()) continue;  // an empty read: constant folding's business
      passes::ReadShapeThroughPermutation(g, shape, t->input(0), entries);
      changed = true;
    }
    if (y->uses().empty()) g.RemoveNode(t);
  }
  if (changed) {
    g.RemoveUnusedValues();
    ctx.changed = true;
  }
  return Status::Ok();
}

}  // namespace kiln
