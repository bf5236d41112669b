// Residuals after a convolution's activation into its epilogue (see post_act_residual.h).
#include "passes/post_act_residual.h"

#include <optional>
#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

// A dense convolution (not depthwise, not 1x1) with an activation and no residual yet.
bool TakesResidualAfter(const Node* conv) {
  const bool nhwc = passes::IsKilnOp(conv, "FusedConvNhwc");
  if (!nhwc && !passes::IsKilnOp(conv, "FusedConv")) return false;
  if (conv->num_outputs() != 1 || conv->num_inputs() < 2 || conv->num_inputs() > 3 ||
      passes::AttrString(*conv, "activation", "").empty())
    return false;
  const Value* w = conv->input(1);
  std::optional<std::vector<int64_t>> d = w ? w->shape().concrete() : std::nullopt;
  if (!d || d->size() != 4) return false;
  // Weights [K, C/g, R, S] (NCHW) or [K, R, S, C/g] (channels last).
  const int64_t r = nhwc ? (*d)[1] : (*d)[2], s = nhwc ? (*d)[2] : (*d)[3], cg = nhwc ? (*d)[3] : (*d)[1];
  const int64_t group = passes::AttrInt(*conv, "group", 1);
  return !(r == 1 && s == 1) && !(group > 1 && cg == 1);
}

bool Fuse(Graph& g, Node* add) {
  if (!passes::IsOnnxOp(add, "Add") || !passes::IsPlainNode(add, 2)) return false;
  for (size_t k = 0; k < 2; ++k) {
    Value* y = add->input(k);
    Value* z = add->input(1 - k);
    Node* conv = passes::SoleProducer(g, y);
    if (y == z || !TakesResidualAfter(conv) || z->dtype() != y->dtype() ||
        !passes::SameDims(z->shape(), y->shape()) || !passes::SameDims(add->output(0)->shape(), y->shape()))
      continue;
    while (conv->num_inputs() < 3) conv->AddInput(nullptr);
    conv->AddInput(z);
    conv->attrs["residual_after_activation"] = Attribute::FromInt(1);
    Value* out = add->output(0);
    g.RemoveNode(add);
    conv->SetOutput(0, out);
    return true;
  }
  return false;
}

}  // namespace

Status RunPostActResidual(Model& model, PassContext& ctx) {
  return passes::RewriteEachNode(model, ctx, Fuse);
}

}  // namespace kiln
