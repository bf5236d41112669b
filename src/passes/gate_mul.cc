// A squeeze-and-excitation gate's last convolution and its Mul as one node (see gate_mul.h).
#include "passes/gate_mul.h"

#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

bool IsFloat(DataType dt) {
  return dt == DataType::kFloat || dt == DataType::kFloat16 || dt == DataType::kBFloat16;
}

// `conv` computes a gate: a 1x1 convolution of a [N,1,1,R] H by a constant [C,1,1,R] W, bias optional.
bool IsGateConv(const Node* conv) {
  if (!passes::IsKilnOp(conv, "FusedConvNhwc") || conv->num_outputs() != 1 || conv->num_inputs() < 2 ||
      conv->num_inputs() > 3 || !conv->input(0) || !conv->input(1))
    return false;
  if (!passes::HasUnitConvGeometry(*conv)) return false;
  const Value* h = conv->input(0);
  const Value* w = conv->input(1);
  if (!passes::IsConstant(w) || w->data->rank() != 4 || w->data->dim(1) != 1 || w->data->dim(2) != 1)
    return false;
  if (!passes::HasRank(h, 4) || !h->shape()[1].known() || h->shape()[1].value() != 1 ||
      !h->shape()[2].known() || h->shape()[2].value() != 1)
    return false;
  const DataType dt = h->dtype();
  if (!IsFloat(dt) || w->dtype() != dt || conv->output(0)->dtype() != dt) return false;
  return conv->num_inputs() < 3 || !conv->input(2) || conv->input(2)->dtype() == dt;
}

// X [N,H,W,C] that the gate G [N,1,1,C] scales, Y of X's dims and type.
bool Scales(const Value* x, const Value* g, const Value* y) {
  if (!passes::HasRank(x, 4) || !passes::HasRank(g, 4) || !passes::SameDims(x->shape(), y->shape()))
    return false;
  const Shape& xs = x->shape();
  const Shape& gs = g->shape();
  return x->dtype() == g->dtype() && y->dtype() == g->dtype() && passes::SameDim(xs[0], gs[0]) &&
         passes::SameDim(xs[3], gs[3]) && gs[1].known() && gs[1].value() == 1 && gs[2].known() &&
         gs[2].value() == 1;
}

}  // namespace

Status RunFuseGateMul(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  Graph& g = *model.graph;
  int count = 0;
  for (Node* mul : g.nodes()) {
    if (!passes::IsOnnxOp(mul, "Mul") || !passes::IsPlainNode(mul, 2)) continue;
    for (size_t side = 0; side < 2; ++side) {
      Value* gate = mul->input(side);
      Value* x = mul->input(1 - side);
      Node* conv = passes::SoleProducer(g, gate);
      if (!IsGateConv(conv) || !Scales(x, gate, mul->output(0))) continue;
      mul->op_type = "GateMulNhwc";
      mul->domain = "kiln";
      mul->attrs = conv->attrs;
      std::vector<Value*> inputs = {x, conv->input(0), conv->input(1)};
      if (conv->num_inputs() > 2 && conv->input(2)) inputs.push_back(conv->input(2));
      mul->ClearInputs();
      for (Value* v : inputs) mul->AddInput(v);
      g.RemoveNode(conv);
      ++count;
      break;
    }
  }
  passes::FinishKilnRewrite(model, ctx, count);
  return Status::Ok();
}

}  // namespace kiln
