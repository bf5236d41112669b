// x.expand_as(y) read by an op that broadcasts with y (see drop_expand_as.h).
#include "passes/drop_expand_as.h"

#include <algorithm>
#include <string>
#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

// Elementwise ops with numpy broadcasting over all their inputs (opset 7+).
bool BroadcastsAll(const Node* n) {
  static const char* kOps[] = {"Add",   "Sub",   "Mul",     "Div",         "Pow",
                               "Mod",   "Where", "And",     "Or",          "Xor",
                               "Equal", "Less",  "Greater", "LessOrEqual", "GreaterOrEqual",
                               "Max",   "Min",   "Sum",     "Mean"};
  return std::any_of(std::begin(kOps), std::end(kOps),
                     [n](const char* op) { return passes::IsOnnxOp(n, op); });
}

// Rewires input `slot` of `op` when it is Cast*(Expand(x, Shape(y))) with y
// another input of `op`; true when it did.
bool DropExpand(Graph& g, Node* op, size_t slot) {
  std::vector<Node*> casts;  // from `op` up to the Expand
  Value* v = op->input(slot);
  Node* p = passes::SoleProducer(g, v);
  while (passes::IsOnnxOp(p, "Cast") && passes::IsPlainNode(p, 1)) {
    casts.push_back(p);
    v = p->input(0);
    p = passes::SoleProducer(g, v);
  }
  if (!passes::IsOnnxOp(p, "Expand") || !passes::IsPlainNode(p, 2)) return false;
  Node* shape = p->input(1)->producer();
  if (!passes::IsOnnxOp(shape, "Shape") || !passes::IsPlainNode(shape, 1) || !shape->attrs.empty())
    return false;
  const Value* y = shape->input(0);
  bool sibling = false;
  for (size_t i = 0; i < op->num_inputs(); ++i) sibling |= i != slot && op->input(i) == y;
  if (!sibling) return false;
  Value* x = p->input(0);
  if (casts.empty()) {
    op->SetInput(slot, x);
  } else {
    casts.back()->SetInput(0, x);
    for (Node* c : casts) c->output(0)->type.shape = x->shape();  // elementwise: x's shape now
  }
  g.RemoveNode(p);
  return true;
}

}  // namespace

Status RunDropExpandAs(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  if (model.OpsetOf("") < 7) return Status::Ok();  // before numpy broadcasting
  passes::ForEachGraph(*model.graph, [&](Graph& g) {
    std::vector<Node*> ops;  // first: the rewrite removes (Expand) nodes
    for (Node* n : g.nodes())
      if (BroadcastsAll(n) && n->attrs.empty() && n->num_outputs() == 1) ops.push_back(n);
    for (Node* n : ops)
      for (size_t i = 0; i < n->num_inputs(); ++i)
        if (n->input(i) && DropExpand(g, n, i)) ctx.changed = true;
  });
  return Status::Ok();
}

}  // namespace kiln
