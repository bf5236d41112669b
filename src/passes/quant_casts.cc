// Build pass: Casts at the borders of INT8 layers in FP16 graphs, folded (see quant_casts.h).
#include "passes/quant_casts.h"

#include <vector>

#include "ops/quant_slots.h"
#include "passes/dce.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::IsInt8Layer;
using quant_slots::kYScale;
using quant_slots::kZ;

bool IsCastTo(const Node* n, DataType to) {
  return passes::IsOnnxOp(n, "Cast") && n->num_inputs() == 1 && n->num_outputs() == 1 &&
         passes::AttrInt(*n, "to", 0) == static_cast<int64_t>(to);
}

// A user that reads the float32 value v as well as it would read its float16 source: a per-tensor
// QuantizeLinear's x (without a precision attribute), or a layer's z and nothing else.
bool ReadsFloat16Alike(const Node* u, const Value* v) {
  if (passes::IsOnnxOp(u, "QuantizeLinear")) {
    if (u->input(0) != v || u->attr("precision") || u->num_inputs() < 2 || !u->input(1) ||
        u->input(1)->dtype() != DataType::kFloat)
      return false;
    for (size_t i = 1; i < u->num_inputs(); ++i)
      if (u->input(i) == v) return false;
    return true;
  }
  if (!IsInt8Layer(u)) return false;
  for (size_t i = 0; i < u->num_inputs(); ++i)
    if (u->input(i) == v && i != kZ) return false;
  return true;
}

// Cast(float16 → float32) whose every user reads the float16 source as well: they read it.
bool FoldWidening(Graph& g, Node* cast) {
  Value* v = cast->output(0);
  Value* src = cast->input(0);
  if (!src || src->dtype() != DataType::kFloat16 || v->uses().empty() || passes::IsAnyGraphOutput(g, v))
    return false;
  for (const Node* u : v->uses())
    if (u->graph() != &g || !ReadsFloat16Alike(u, v)) return false;
  for (Node* u : std::vector<Node*>(v->uses().begin(), v->uses().end()))
    for (size_t i = 0; i < u->num_inputs(); ++i)
      if (u->input(i) == v) u->SetInput(i, src);
  return true;
}

// A layer's float32 output whose only user is a Cast to float16: the layer writes float16.
bool FoldNarrowing(Graph& g, Node* layer) {
  if (layer->num_outputs() != 1 || (layer->num_inputs() > kYScale && layer->input(kYScale))) return false;
  Value* y = layer->output(0);
  if (y->dtype() != DataType::kFloat) return false;
  Node* cast = passes::SoleUser(g, y);
  if (!cast || !IsCastTo(cast, DataType::kFloat16)) return false;
  layer->attrs["to"] = Attribute::FromInt(static_cast<int64_t>(DataType::kFloat16));
  Value* out = cast->output(0);
  g.RemoveNode(cast);
  layer->SetOutput(0, out);
  return true;
}

}  // namespace

Status RunQuantCasts(Model& model, PassContext& ctx) {
  if (!model.graph) return Status::Ok();
  Graph& g = *model.graph;
  std::vector<Node*> casts, layers;
  for (Node* n : g.nodes()) {
    if (IsCastTo(n, DataType::kFloat)) casts.push_back(n);
    if (IsInt8Layer(n)) layers.push_back(n);
  }
  // Widening Casts keep their node (DCE removes it once unused); narrowing ones are the layer's sole user,
  // in neither list.
  int count = 0;
  for (Node* c : casts) count += FoldWidening(g, c) ? 1 : 0;
  for (Node* l : layers) count += FoldNarrowing(g, l) ? 1 : 0;
  if (count == 0) return Status::Ok();
  ctx.changed = true;
  g.RemoveUnusedValues();
  PassContext dce;
  return RunDeadCodeElimination(model, dce);
}

}  // namespace kiln
