// Identity / Dropout removal (see eliminate_identity.h).
#include "passes/eliminate_identity.h"

#include "passes/pass_util.h"

namespace kiln {
namespace {

// Dropout computes y = x: inference mode and no mask wanted.
bool IsIdentityDropout(Graph& root, const Node& n, int64_t opset) {
  if (n.num_outputs() > 1 && n.output(1) &&
      (!n.output(1)->uses().empty() || passes::IsAnyGraphOutput(root, n.output(1))))
    return false;
  if (opset >= 12) {
    if (Value* mode = n.input(2)) {
      auto v = passes::ConstScalar(mode);
      if (!v || *v != 0.0) return false;
    }
    return true;
  }
  if (opset < 7) return passes::AttrInt(n, "is_test", 0) != 0;
  return true;  // opsets 7..11: Dropout is an identity at inference
}

}  // namespace

Status RunEliminateIdentity(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  Graph& root = *model.graph;
  int64_t opset = model.OpsetOf("");
  passes::ForEachGraph(root, [&](Graph& g) {
    for (Node* n : g.nodes()) {
      if (!n->domain.empty() && n->domain != "ai.onnx") continue;
      bool identity = n->op_type == "Identity" && n->num_outputs() == 1;
      bool dropout = n->op_type == "Dropout" && IsIdentityDropout(root, *n, opset);
      if (!identity && !dropout) continue;
      Value* in = n->input(0);
      Value* out = n->output(0);
      if (!in || !out) continue;
      if (passes::BypassNode(n, out, in)) ctx.changed = true;
    }
  });
  return Status::Ok();
}

}  // namespace kiln
