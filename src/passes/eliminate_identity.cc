// Identity / Dropout removal (see eliminate_identity.h).
#include "passes/eliminate_identity.h"

#include <optional>

#include "passes/pass_util.h"

namespace kiln {
namespace {

// Dropout computes y = x: inference mode, or training mode with a constant ratio of 0 (torchvision's Swin
// exports its attention dropout as Dropout(ratio 0, training_mode true): x / (1 - 0) with every element
// kept), and no mask wanted.
bool IsIdentityDropout(Graph& root, const Node& n, int64_t opset) {
  if (n.num_outputs() > 1 && n.output(1) &&
      (!n.output(1)->uses().empty() || passes::IsAnyGraphOutput(root, n.output(1))))
    return false;
  if (opset >= 12) {
    if (Value* mode = n.input(2)) {
      auto v = passes::ConstScalar(mode);
      if (!v) return false;
      if (*v != 0.0) {
        std::optional<double> ratio =
            n.num_inputs() > 1 && n.input(1) ? passes::ConstScalar(n.input(1)) : 0.5;
        return ratio && *ratio == 0.0;  // the default ratio is 0.5
      }
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
