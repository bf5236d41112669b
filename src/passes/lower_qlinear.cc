// QLinearConv / QLinearMatMul → kiln.QConv / kiln.QMatMul (see lower_qlinear.h).
#include "passes/lower_qlinear.h"

#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::IsConstant;
using passes::IsOnnxOp;

// A constant of `dtype` with one value, or `channels` values when channels > 0.
bool ConstantOf(const Value* v, DataType dtype, int64_t channels = 0) {
  if (!IsConstant(v) || v->data->dtype() != dtype) return false;
  const int64_t n = v->data->numel();
  return n == 1 || (channels > 0 && n == channels);
}

// A constant int8/uint8 zero point of `like`'s type (when known), one value or `channels` values.
bool ZeroPoint(const Value* zp, DataType like, int64_t channels = 0) {
  if (!IsConstant(zp) || !IsInt8Type(zp->data->dtype())) return false;
  if (like != DataType::kUndefined && zp->data->dtype() != like) return false;
  return ConstantOf(zp, zp->data->dtype(), channels);
}

// The kiln op's inputs (x, x_scale, x_zp, w, w_scale, w_zp, bias, y_scale, y_zp) when `n` matches, else
// empty. Both ONNX ops put those of x, w and y in slots 0-7; QLinearConv's bias comes last (slot 8).
std::vector<Value*> KilnInputs(const Node& n, bool conv) {
  if (n.num_inputs() < 8 || n.num_outputs() != 1 || !n.output(0)) return {};
  Value *x = n.input(0), *w = n.input(3);
  if (!x || !IsConstant(w) || !IsInt8Type(w->data->dtype())) return {};
  if (conv ? w->data->rank() < 3 : w->data->rank() != 2) return {};
  const int64_t channels = w->data->dim(conv ? 0 : 1);  // Conv: w's dim 0; MatMul: b's columns
  if (!ConstantOf(n.input(1), DataType::kFloat) || !ConstantOf(n.input(4), DataType::kFloat, channels) ||
      !ConstantOf(n.input(6), DataType::kFloat))
    return {};
  if (!ZeroPoint(n.input(2), x->dtype()) || !ZeroPoint(n.input(5), w->data->dtype(), channels) ||
      !ZeroPoint(n.input(7), DataType::kUndefined))
    return {};
  Value* bias = conv && n.num_inputs() > 8 ? n.input(8) : nullptr;
  if (bias &&
      !(IsConstant(bias) && bias->data->dtype() == DataType::kInt32 && bias->data->numel() == channels))
    return {};
  return {x, n.input(1), n.input(2), w, n.input(4), n.input(5), bias, n.input(6), n.input(7)};
}

// Scales must be positive and finite (the kiln ops refuse others at run time; leave such nodes alone).
bool ScalesUsable(const std::vector<Value*>& in) {
  for (size_t i : {1, 4, 7})
    for (int64_t k = 0; k < in[i]->data->numel(); ++k) {
      const float s = in[i]->data->data<float>()[k];
      if (!(s > 0.f) || s > 3.4e38f) return false;
    }
  return true;
}

}  // namespace

Status RunLowerQLinear(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  Graph& g = *model.graph;
  int count = 0;
  for (Node* n : g.nodes()) {  // a copy: the loop replaces nodes
    const bool conv = IsOnnxOp(n, "QLinearConv");
    if (!conv && !IsOnnxOp(n, "QLinearMatMul")) continue;
    std::vector<Value*> in = KilnInputs(*n, conv);
    if (in.empty() || !ScalesUsable(in)) continue;
    Node* f = g.InsertNode(n, conv ? "QConv" : "QMatMul", n->name, "kiln");
    if (conv) f->attrs = n->attrs;
    for (Value* v : in) f->AddInput(v);
    Value* out = n->output(0);
    g.RemoveNode(n);
    f->AddOutput(out);
    ++count;
  }
  passes::FinishKilnRewrite(model, ctx, count);
  return Status::Ok();
}

}  // namespace kiln
