// Build pass: LayerNormalization and Softmax → primitive ops where they fuse
// (see lower_row_ops.h).
#include "passes/lower_row_ops.h"

#include <string>
#include <vector>

#include "build/codegen/pointwise_ops.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

class LowerRowOps {
 public:
  explicit LowerRowOps(Model& model) : g_(*model.graph), opset_(model.OpsetOf("")) {}

  int Run() {
    std::vector<Node*> ops;
    for (Node* n : g_.nodes())
      if (Lowerable(*n)) ops.push_back(n);
    for (Node* n : ops) {
      if (n->op_type == "Softmax")
        LowerSoftmax(n);
      else
        LowerLayerNorm(n);
    }
    return static_cast<int>(ops.size());
  }

 private:
  // A neighbour worth lowering for: it joins the row kernel and saves a pass over the tensor. Not
  // kiln.QuantizeE4M3: measured on an H100 (BERT-base FP8, batch 32, 2026-12-06), the generated row kernel
  // took 0.035 ms per LayerNorm where the hand-written one takes 0.0075 and the separate quantization
  // about 0.009 (24 LayerNorms: 2.30 ms in all against 1.75 with them kept).
  bool Fusable(const Node* n) const {
    return n && !(n->domain == "kiln" && n->op_type == "QuantizeE4M3") &&
           codegen::CanGeneratePointwise(*n, opset_);
  }

  bool Lowerable(const Node& n) const {
    const bool norm = passes::IsOnnxOp(&n, "LayerNormalization"), softmax = passes::IsOnnxOp(&n, "Softmax");
    if (!norm && !softmax) return false;
    if (n.num_inputs() < 1 || !n.input(0) || !n.output(0)) return false;
    for (size_t i = 1; i < n.num_outputs(); ++i)  // a norm's Mean and InvStdDev
      if (n.output(i) && (!n.output(i)->uses().empty() || passes::IsGraphOutput(g_, n.output(i)))) return false;
    const Value* x = n.input(0);
    const Shape& s = x->shape();
    // float32 and 16-bit types (computed in float32); a float64 op keeps its own precision.
    if (!s.rank_known() || s.rank() < 1 || !passes::IsArithmeticFloat(x->dtype()) || x->dtype() == DataType::kDouble)
      return false;
    for (const Dim& d : s.dims())
      if (d.unknown()) return false;
    // The last axis only. Softmax before opset 13 normalises over the axes
    // from `axis` (default 1) on, which is the last axis only when it is rank-1.
    const Attribute* axis = n.attr("axis");
    const int64_t a = axis ? axis->i : (softmax && opset_ < 13 ? 1 : -1);
    if (a != -1 && a != s.rank() - 1) return false;
    if (norm) {
      if (n.num_inputs() < 2 || !n.input(1) || n.input(1)->dtype() != x->dtype()) return false;
      if (n.num_inputs() > 2 && n.input(2) && n.input(2)->dtype() != x->dtype()) return false;
    }
    // Worth it only when a neighbour joins the kernel.
    if (Fusable(x->producer())) return true;
    for (const Node* use : n.output(0)->uses())
      if (Fusable(use)) return true;
    return false;
  }

  Value* Op(Node* before, const char* op, std::vector<Value*> inputs, const Shape& shape) {
    Node* n = g_.InsertNode(before, op, g_.UniqueName(base_ + "/" + op));
    for (Value* v : inputs) n->AddInput(v);
    Value* out = passes::NewTensorValue(g_, base_ + "/" + op + "_output", DataType::kFloat, shape);
    n->AddOutput(out);
    return out;
  }

  // `v` in float32: itself, a float32 copy of a constant (a norm's scale and
  // bias), or a Cast.
  Value* ToFloat(Node* before, Value* v) {
    const DataType f = DataType::kFloat;
    if (v->dtype() == f) return v;
    if (passes::IsConstant(v))
      return passes::AddInitializer(g_, v->name() + "_fp32",
                                    passes::FromDoubles(f, v->data->dims(), passes::ToDoubles(*v->data)));
    Value* out = Op(before, "Cast", {v}, v->shape());
    out->producer()->attrs["to"] = Attribute::FromInt(static_cast<int64_t>(f));
    return out;
  }

  // A keepdims reduction over the last axis (axes as an input from opset 18,
  // or 13 for ReduceSum).
  Value* Reduce(Node* before, const char* op, Value* v, const Shape& rows) {
    const bool axes_input = std::string(op) == "ReduceSum" ? opset_ >= 13 : opset_ >= 18;
    if (axes_input) return Op(before, op, {v, passes::AddInt64Initializer(g_, base_ + "/axes", {-1})}, rows);
    Value* out = Op(before, op, {v}, rows);
    out->producer()->attrs["axes"] = Attribute::FromInts({-1});
    return out;
  }

  // The op's input in float32 (`x`), its shape and its rows' shape (last dim 1).
  void Begin(Node* n, Value** x, Shape* shape, Shape* rows) {
    base_ = n->name.empty() ? n->output(0)->name() : n->name;
    *shape = n->input(0)->shape();
    std::vector<Dim> row_dims = shape->dims();
    row_dims.back() = Dim(1);
    *rows = Shape(row_dims);
    *x = ToFloat(n, n->input(0));
  }

  // Replaces `n` by `op`(inputs), which produces n's own output value (its
  // name may be a graph output), then by a Cast back when n's type is not
  // float32: the last new node always produces that value.
  void Finish(Node* n, const char* op, std::vector<Value*> inputs) {
    const DataType dt = n->output(0)->dtype();
    Value* y = n->output(0);
    if (dt != DataType::kFloat) {
      inputs = {Op(n, op, inputs, y->shape())};
      op = "Cast";
    }
    Node* last = g_.InsertNode(n, op, g_.UniqueName(base_ + "/" + op));
    for (Value* v : inputs) last->AddInput(v);
    if (dt != DataType::kFloat) last->attrs["to"] = Attribute::FromInt(static_cast<int64_t>(dt));
    g_.RemoveNode(n);
    last->AddOutput(y);
  }

  void LowerLayerNorm(Node* n) {
    Value* x;
    Shape shape, rows;
    Begin(n, &x, &shape, &rows);
    const Attribute* eps_attr = n->attr("epsilon");
    Value* eps = passes::AddInitializer(g_, base_ + "/epsilon", Tensor::Scalar(eps_attr ? eps_attr->f : 1e-5f));
    Value* d = Op(n, "Sub", {x, Reduce(n, "ReduceMean", x, rows)}, shape);
    Value* var = Reduce(n, "ReduceMean", Op(n, "Mul", {d, d}, shape), rows);
    Value* den = Op(n, "Sqrt", {Op(n, "Add", {var, eps}, rows)}, rows);
    Value* scaled = Op(n, "Div", {d, den}, shape);
    Value* scale = ToFloat(n, n->input(1));
    if (n->num_inputs() > 2 && n->input(2)) {
      Value* bias = ToFloat(n, n->input(2));
      Finish(n, "Add", {Op(n, "Mul", {scaled, scale}, shape), bias});
    } else {
      Finish(n, "Mul", {scaled, scale});
    }
  }

  void LowerSoftmax(Node* n) {
    Value* x;
    Shape shape, rows;
    Begin(n, &x, &shape, &rows);
    Value* e = Op(n, "Exp", {Op(n, "Sub", {x, Reduce(n, "ReduceMax", x, rows)}, shape)}, shape);
    Finish(n, "Div", {e, Reduce(n, "ReduceSum", e, rows)});
  }

  Graph& g_;
  int64_t opset_;
  std::string base_;
};

}  // namespace

Status RunLowerRowOps(Model& model, PassContext& ctx) {
  if (!model.graph) return Status::Ok();
  if (LowerRowOps(model).Run() > 0) {
    model.graph->RemoveUnusedValues();
    ctx.changed = true;
  }
  return Status::Ok();
}

}  // namespace kiln
