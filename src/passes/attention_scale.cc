// Build pass: scalar Muls on Q and K go into kiln.Attention's scale (see attention_scale.h).
#include "passes/attention_scale.h"

#include <cmath>
#include <optional>

#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::IsOnnxOp;

bool IsView(const Node* n) {
  return IsOnnxOp(n, "Reshape") || IsOnnxOp(n, "Transpose") || IsOnnxOp(n, "Squeeze") ||
         IsOnnxOp(n, "Unsqueeze");
}

// The factor a Mul(x, c) / Mul(c, x) / Div(x, c) applies, c a finite non-zero one-element constant of x's
// type; sets *data to x's slot. nullopt otherwise.
std::optional<double> ScalarFactor(const Node& n, size_t* data) {
  const bool div = IsOnnxOp(&n, "Div");
  if ((!IsOnnxOp(&n, "Mul") && !div) || !passes::IsPlainNode(&n, 2)) return std::nullopt;
  for (size_t i = 0; i < (div ? 1u : 2u); ++i) {
    const Value* c = n.input(1 - i);
    if (n.input(i) == c || !passes::IsConstant(c) || c->data->numel() != 1 ||
        c->dtype() != n.input(i)->dtype())
      continue;
    std::optional<double> f = passes::ConstScalar(c);
    if (!f || *f == 0 || !std::isfinite(*f)) continue;
    *data = i;
    return div ? 1.0 / *f : *f;
  }
  return std::nullopt;
}

// Finds a scalar Mul on the path into attention input `slot` and removes it; returns its factor.
std::optional<double> TakeScale(Graph& g, Node* attention, size_t slot) {
  Node* reader = attention;
  size_t at = slot;
  for (int depth = 0; depth < 6; ++depth) {
    Value* v = reader->input(at);
    Node* p = passes::SoleProducer(g, v);
    if (!p || p->graph() != &g) return std::nullopt;
    if (IsView(p) && p->num_outputs() == 1 && p->input(0)) {
      reader = p;
      at = 0;
      continue;
    }
    size_t data = 0;
    std::optional<double> f = ScalarFactor(*p, &data);
    if (!f) return std::nullopt;
    reader->SetInput(at, p->input(data));
    g.RemoveNode(p);
    return f;
  }
  return std::nullopt;
}

}  // namespace

Status RunAttentionScale(Model& model, PassContext& ctx) {
  if (!model.graph) return Status::Ok();
  Graph& g = *model.graph;
  int taken = 0;
  for (Node* a : passes::KilnNodes(g, "Attention")) {
    const Attribute* scale = a->attr("scale");
    if (!scale || a->num_inputs() < 3) continue;
    double s = scale->f;
    for (size_t slot : {size_t{0}, size_t{1}}) {
      if (slot == 1 && a->input(1) == a->input(0)) break;  // one tensor read as both (head ranges)
      while (std::optional<double> f = TakeScale(g, a, slot)) {
        s *= *f;
        ++taken;
      }
    }
    a->attrs["scale"] = Attribute::FromFloat(static_cast<float>(s));
  }
  if (taken > 0) {
    g.RemoveUnusedValues();
    ctx.changed = true;
  }
  return Status::Ok();
}

}  // namespace kiln
