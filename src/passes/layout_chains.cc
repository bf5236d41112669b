// Chains of layout ops (see layout_chains.h).
#include "passes/layout_chains.h"

#include "passes/pass_util.h"

namespace kiln::passes {

bool IsLayoutTranspose(const Node* n) { return IsOnnxOp(n, "Transpose") && IsPlainNode(n, 1); }

bool IsLayoutReshape(const Node* n) {
  if (!n || n->num_outputs() != 1 || n->num_inputs() < 1 || !n->output(0)->shape().rank_known()) return false;
  if (IsOnnxOp(n, "Reshape") && AttrInt(*n, "allowzero", 0) != 0) return false;
  return IsOnnxOp(n, "Reshape") || IsOnnxOp(n, "Flatten") || IsOnnxOp(n, "Squeeze") ||
         IsOnnxOp(n, "Unsqueeze");
}

bool IsLayoutOp(const Node* n) { return IsLayoutTranspose(n) || IsLayoutReshape(n); }

std::vector<int64_t> TransposePermOf(const Node& n, size_t rank) {
  if (auto p = AttrInts(n, "perm")) return *p;
  std::vector<int64_t> perm;
  for (size_t i = rank; i-- > 0;) perm.push_back(static_cast<int64_t>(i));
  return perm;
}

std::vector<std::vector<Node*>> LayoutChains(Graph& g) {
  std::vector<std::vector<Node*>> chains;
  for (Node* n : g.nodes()) {
    if (!IsLayoutOp(n) || IsLayoutOp(SoleProducer(g, n->input(0)))) continue;  // not a chain's first op
    std::vector<Node*> chain = {n};
    for (Node* last = n; HasSingleUse(g, last->output(0));) {
      Node* next = last->output(0)->uses()[0];
      if (next->graph() != &g || !IsLayoutOp(next) || next->input(0) != last->output(0)) break;
      chain.push_back(next);
      last = next;
    }
    chains.push_back(std::move(chain));
  }
  return chains;
}

}  // namespace kiln::passes
