// Epilogues behind layout Reshapes (see reshape_epilogue.h).
#include "passes/reshape_epilogue.h"

#include <string>
#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

// A product whose epilogue can still take a residual: a FusedMatMul without Z or activation, or a MatMul by
// constant weights of rank 2.
bool TakesResidual(const Node* p) {
  if (passes::IsKilnOp(p, "FusedMatMul")) {
    const std::string act = passes::AttrString(*p, "activation", "");
    return p->num_outputs() == 1 && p->num_inputs() >= 2 && p->num_inputs() <= 3 && act.empty();
  }
  if (!passes::IsOnnxOp(p, "MatMul") || !passes::IsPlainNode(p, 2)) return false;
  const Value* w = p->input(1);
  return passes::IsConstant(w) && w->data->rank() == 2 && w->data->dtype() == p->output(0)->dtype();
}

// act(Reshape*(conv output)) → the convolution with act as its epilogue, the Reshapes after it.
bool FuseActivation(Graph& g, Node* act) {
  AttributeMap attrs;
  if (!passes::SetConvActivation(act, &attrs)) return false;
  std::vector<Node*> reshapes;
  Node* p = passes::SoleProducer(g, act->input(0));
  while (passes::IsOnnxOp(p, "Reshape")) {
    reshapes.push_back(p);
    p = passes::SoleProducer(g, p->input(0));
  }
  if (reshapes.empty() || !(passes::IsKilnOp(p, "FusedConvNhwc") || passes::IsKilnOp(p, "FusedConv")) ||
      !passes::AttrString(*p, "activation", "").empty() || p->output(0)->dtype() != act->output(0)->dtype())
    return false;
  for (auto& [name, a] : attrs) p->attrs[name] = a;
  // The last Reshape now makes the activation's output.
  Value* y = act->output(0);
  g.RemoveNode(act);
  reshapes.front()->SetOutput(0, y);
  return true;
}

bool Fuse(Graph& g, Node* add) {
  if (!passes::IsOnnxOp(add, "Add") || !passes::IsPlainNode(add, 2)) return false;
  const Shape& out = add->output(0)->shape();
  for (size_t k = 0; k < 2; ++k) {
    Value* z = add->input(1 - k);
    Value* v = add->input(k);
    if (z == v || z->dtype() != v->dtype() || !passes::SameDims(z->shape(), out) ||
        !passes::SameDims(v->shape(), out))
      continue;
    std::vector<Node*> reshapes;
    Node* p = passes::SoleProducer(g, v);
    while (passes::IsOnnxOp(p, "Reshape") && passes::SameDims(p->input(0)->shape(), out)) {
      reshapes.push_back(p);
      p = passes::SoleProducer(g, p->input(0));
    }
    if (reshapes.empty() || !p || !TakesResidual(p) || !passes::SameDims(p->output(0)->shape(), out))
      continue;
    Node* fused = p;
    if (passes::IsOnnxOp(p, "MatMul")) {
      fused = g.InsertNode(p, "FusedMatMul", p->name, "kiln");
      fused->AddInput(p->input(0));
      fused->AddInput(p->input(1));
    }
    while (fused->num_inputs() < 3) fused->AddInput(nullptr);
    fused->AddInput(z);
    Value* y = add->output(0);
    g.RemoveNode(add);
    for (Node* r : reshapes) g.RemoveNode(r);
    if (fused != p) {
      g.RemoveNode(p);
      fused->AddOutput(y);
    } else {
      fused->SetOutput(0, y);
    }
    return true;
  }
  return false;
}

}  // namespace

Status RunReshapeEpilogue(Model& model, PassContext& ctx) {
  return passes::RewriteEachNode(model, ctx,
                                 [](Graph& g, Node* n) { return Fuse(g, n) || FuseActivation(g, n); });
}

}  // namespace kiln
