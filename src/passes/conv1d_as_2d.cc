// Build pass: a 1-D convolution as the 2-D one of height 1 (see conv1d_as_2d.h).
#include "passes/conv1d_as_2d.h"

#include <optional>
#include <string>
#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

bool IsFloat(DataType dt) {
  return dt == DataType::kFloat || dt == DataType::kFloat16 || dt == DataType::kBFloat16;
}

bool Convertible(const Node& n) {
  const bool conv = passes::IsOnnxOp(&n, "Conv"), fused = passes::IsKilnOp(&n, "FusedConv");
  if ((!conv && !fused) || n.num_outputs() != 1 || n.num_inputs() < 2 || !n.input(0) || !n.input(1))
    return false;
  const Value* w = n.input(1);
  const std::string pad = passes::AttrString(n, "auto_pad", "NOTSET");
  return passes::HasRank(n.input(0), 3) && passes::HasRank(n.output(0), 3) && passes::IsConstant(w) &&
         w->data->rank() == 3 && IsFloat(n.output(0)->dtype()) && (pad == "NOTSET" || pad == "VALID");
}

// A Reshape target's entry for dim d: its value when known (no -1, which an empty batch leaves undefined),
// else -1.
int64_t Entry(const Dim& d) { return d.known() ? d.value() : -1; }

// v [N, C, W] viewed as [N, C, 1, W], inserted before `at`.
Value* HeightOne(Graph& g, Node* at, Value* v) {
  const Shape& s = v->shape();
  return passes::InsertOp(
      g, at, "Reshape", v->name() + "/h1",
      {v, passes::AddInt64Initializer(g, v->name() + "/h1_shape", {0, 0, 1, Entry(s[2])})}, v->dtype(),
      Shape({s[0], s[1], Dim(1), s[2]}));
}

// A 1-D attribute's value [a] as [first, a]; `pads` [b, e] as [0, b, 0, e].
void Widen(Node* n, const char* name, int64_t first) {
  std::optional<std::vector<int64_t>> v = passes::AttrInts(*n, name);
  if (!v) return;
  std::vector<int64_t> two;
  if (std::string(name) == "pads")
    two = v->size() == 2 ? std::vector<int64_t>{0, (*v)[0], 0, (*v)[1]} : *v;
  else
    two = v->size() == 1 ? std::vector<int64_t>{first, (*v)[0]} : *v;
  n->attrs[name] = Attribute::FromInts(two);
}

void Rewrite(Graph& g, Node* n, Node* next) {
  Value* x = n->input(0);
  Value* y = n->output(0);
  const Tensor& w = *n->input(1)->data;
  n->SetInput(0, HeightOne(g, n, x));
  n->SetInput(1, passes::AddInitializer(g, n->input(1)->name() + "_h1",
                                        w.Reshaped({w.dims()[0], w.dims()[1], 1, w.dims()[2]})));
  // kiln.FusedConv's residual Z (input 3) has Y's shape.
  if (passes::IsKilnOp(n, "FusedConv") && n->num_inputs() > 3 && n->input(3) &&
      passes::HasRank(n->input(3), 3))
    n->SetInput(3, HeightOne(g, n, n->input(3)));
  Widen(n, "kernel_shape", 1);
  Widen(n, "strides", 1);
  Widen(n, "dilations", 1);
  Widen(n, "pads", 0);
  const Shape& ys = y->shape();
  Value* y4 = passes::NewTensorValue(g, y->name() + "/h1", y->dtype(), Shape({ys[0], ys[1], Dim(1), ys[2]}));
  n->SetOutput(0, y4);
  Node* back = g.InsertNode(next, "Reshape", g.UniqueName(y->name() + "/w"));
  back->AddInput(y4);
  back->AddInput(passes::AddInt64Initializer(g, y->name() + "/w_shape", {0, 0, Entry(ys[2])}));
  back->AddOutput(y);
}

}  // namespace

Status RunConv1dAs2d(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  Graph& g = *model.graph;
  const std::vector<Node*> nodes = g.nodes();
  int rewritten = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (!Convertible(*nodes[i])) continue;
    Rewrite(g, nodes[i], i + 1 < nodes.size() ? nodes[i + 1] : nullptr);
    ++rewritten;
  }
  passes::FinishKilnRewrite(model, ctx, rewritten);
  return Status::Ok();
}

}  // namespace kiln
