// Build pass: LayerNormalization → primitive ops where they fuse (see lower_layernorm.h).
#include "passes/lower_layernorm.h"

#include <string>
#include <vector>

#include "build/codegen/pointwise_ops.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

class LowerLayerNorm {
 public:
  explicit LowerLayerNorm(Model& model) : g_(*model.graph), opset_(model.OpsetOf("")) {}

  int Run() {
    std::vector<Node*> norms;
    for (Node* n : g_.nodes())
      if (Lowerable(*n)) norms.push_back(n);
    for (Node* n : norms) Lower(n);
    return static_cast<int>(norms.size());
  }

 private:
  bool Fusable(const Node* n) const { return n && codegen::CanGeneratePointwise(*n, opset_); }

  bool Lowerable(const Node& n) const {
    if (!passes::IsOnnxOp(&n, "LayerNormalization") || n.num_inputs() < 2 || !n.input(1)) return false;
    for (size_t i = 1; i < n.num_outputs(); ++i)
      if (n.output(i) && (!n.output(i)->uses().empty() || passes::IsGraphOutput(g_, n.output(i)))) return false;
    const Value* x = n.input(0);
    const Shape& s = x->shape();
    if (!s.rank_known() || s.rank() < 1 || !passes::IsArithmeticFloat(x->dtype())) return false;
    for (const Dim& d : s.dims())
      if (d.unknown()) return false;
    const Attribute* axis = n.attr("axis");
    const int64_t a = axis ? axis->i : -1;
    if (a != -1 && a != s.rank() - 1) return false;
    if (n.input(1)->dtype() != x->dtype() || (n.input(2) && n.input(2)->dtype() != x->dtype())) return false;
    // Worth it only when a neighbour joins the kernel.
    if (Fusable(x->producer())) return true;
    for (const Node* use : n.output(0)->uses())
      if (Fusable(use)) return true;
    return false;
  }

  Value* Op(Node* before, const char* op, std::vector<Value*> inputs, DataType dt, const Shape& shape) {
    Node* n = g_.InsertNode(before, op, g_.UniqueName(base_ + "/" + op));
    for (Value* v : inputs) n->AddInput(v);
    Value* out = passes::NewTensorValue(g_, base_ + "/" + op + "_output", dt, shape);
    n->AddOutput(out);
    return out;
  }

  Value* Cast(Node* before, Value* v, DataType to) {
    if (v->dtype() == to) return v;
    if (passes::IsConstant(v))  // scale and bias: a float32 copy, no Cast to run
      return passes::AddInitializer(g_, v->name() + "_fp32",
                                    passes::FromDoubles(to, v->data->dims(), passes::ToDoubles(*v->data)));
    Value* out = Op(before, "Cast", {v}, to, v->shape());
    out->producer()->attrs["to"] = Attribute::FromInt(static_cast<int64_t>(to));
    return out;
  }

  Value* Mean(Node* before, Value* v, const Shape& rows) {
    if (opset_ >= 18) return Op(before, "ReduceMean", {v, passes::AddInt64Initializer(g_, base_ + "/axes", {-1})},
                                DataType::kFloat, rows);
    Value* out = Op(before, "ReduceMean", {v}, DataType::kFloat, rows);
    out->producer()->attrs["axes"] = Attribute::FromInts({-1});
    return out;
  }

  void Lower(Node* ln) {
    base_ = ln->name.empty() ? ln->output(0)->name() : ln->name;
    const DataType f = DataType::kFloat, dt = ln->input(0)->dtype();
    const Attribute* eps_attr = ln->attr("epsilon");
    const float eps = eps_attr ? eps_attr->f : 1e-5f;
    Value* y = ln->output(0);
    const Shape shape = ln->input(0)->shape();
    std::vector<Dim> row_dims = shape.dims();
    row_dims.back() = Dim(1);
    const Shape rows(row_dims);

    Value* x = Cast(ln, ln->input(0), f);
    Value* mean = Mean(ln, x, rows);
    Value* d = Op(ln, "Sub", {x, mean}, f, shape);
    Value* var = Mean(ln, Op(ln, "Mul", {d, d}, f, shape), rows);
    Value* eps_v = passes::AddInitializer(g_, base_ + "/epsilon", Tensor::Scalar(eps));
    Value* den = Op(ln, "Sqrt", {Op(ln, "Add", {var, eps_v}, f, rows)}, f, rows);
    // Mul by scale, Add bias, Cast back: the last of these produces the norm's
    // own output value (its name may be a graph output).
    struct Step {
      const char* op;
      Value* operand;  // nullptr for the Cast
    };
    std::vector<Step> steps = {{"Mul", Cast(ln, ln->input(1), f)}};
    if (ln->input(2)) steps.push_back({"Add", Cast(ln, ln->input(2), f)});
    if (dt != f) steps.push_back({"Cast", nullptr});
    Value* cur = Op(ln, "Div", {d, den}, f, shape);
    for (size_t i = 0; i + 1 < steps.size(); ++i) cur = Op(ln, steps[i].op, {cur, steps[i].operand}, f, shape);
    Node* last = g_.InsertNode(ln, steps.back().op, g_.UniqueName(base_ + "/" + steps.back().op));
    last->AddInput(cur);
    if (steps.back().operand) last->AddInput(steps.back().operand);
    if (dt != f) last->attrs["to"] = Attribute::FromInt(static_cast<int64_t>(dt));
    g_.RemoveNode(ln);
    last->AddOutput(y);
  }

  Graph& g_;
  int64_t opset_;
  std::string base_;
};

}  // namespace

Status RunLowerLayerNorm(Model& model, PassContext& ctx) {
  if (!model.graph) return Status::Ok();
  if (LowerLayerNorm(model).Run() > 0) {
    model.graph->RemoveUnusedValues();
    ctx.changed = true;
  }
  return Status::Ok();
}

}  // namespace kiln
