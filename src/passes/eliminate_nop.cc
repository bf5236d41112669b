// No-op removal (see eliminate_nop.h).
#include "passes/eliminate_nop.h"

#include <string>

#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::ConstInts;
using passes::IsConstant;
using passes::SameDims;

// Every element of the constant equals `value`.
bool AllEqual(const Value* v, double value) {
  if (!IsConstant(v)) return false;
  const Tensor& t = *v->data;
  if (t.dtype() == DataType::kString || t.numel() == 0) return false;
  for (int64_t i = 0; i < t.numel(); ++i)
    if (t.ScalarAt(i) != value) return false;
  return true;
}

bool ShapePreserved(const Node& n) {
  const Value* in = n.input(0);
  const Value* out = n.output(0);
  return in && out && in->type.known() && in->type.dtype == out->type.dtype &&
         SameDims(in->shape(), out->shape());
}

// Slice with unit steps (or none).
bool UnitSteps(const Node& n, int64_t opset) {
  if (opset < 10) return true;
  Value* steps = n.input(4);
  if (!steps) return true;
  auto s = ConstInts(steps);
  if (!s) return false;
  for (int64_t x : *s)
    if (x != 1) return false;
  return true;
}

bool IdentityPerm(const Node& n) {
  const Value* in = n.input(0);
  if (!in || !in->shape().rank_known()) return false;
  int64_t rank = in->shape().rank();
  auto perm = passes::AttrInts(n, "perm");
  if (!perm) return rank <= 1;  // default: reversed dims
  if (static_cast<int64_t>(perm->size()) != rank) return false;
  for (int64_t i = 0; i < rank; ++i)
    if ((*perm)[static_cast<size_t>(i)] != i) return false;
  return true;
}

// For x op c (or c op x): the index of x when the node is a no-op.
int ArithmeticIdentityInput(const Node& n) {
  if (n.num_inputs() != 2 || !n.input(0) || !n.input(1)) return -1;
  const std::string& op = n.op_type;
  for (int xi = 0; xi < 2; ++xi) {
    const Value* x = n.input(static_cast<size_t>(xi));
    const Value* c = n.input(static_cast<size_t>(1 - xi));
    bool unit = false;
    if (op == "Add") unit = AllEqual(c, 0.0);
    if (op == "Mul") unit = AllEqual(c, 1.0);
    if (op == "Sub" && xi == 0) unit = AllEqual(c, 0.0);
    if (op == "Div" && xi == 0) unit = AllEqual(c, 1.0);
    if (!unit) continue;
    const Value* out = n.output(0);
    if (x->type.known() && x->type.dtype == out->type.dtype && x->type.dtype == c->type.dtype &&
        SameDims(x->shape(), out->shape()))
      return xi;
  }
  return -1;
}

// The input the node passes through unchanged, or nullptr.
Value* PassThrough(const Node& n, int64_t opset) {
  if (n.num_outputs() != 1 || !n.output(0) || !n.input(0)) return nullptr;
  const std::string& op = n.op_type;
  Value* in = n.input(0);
  const Value* out = n.output(0);
  if (op == "Cast") {
    auto to = passes::AttrInt(n, "to", -1);
    return in->type.known() && static_cast<int64_t>(in->type.dtype) == to ? in : nullptr;
  }
  if (op == "CastLike")
    return n.input(1) && in->type.known() && in->type.dtype == n.input(1)->type.dtype ? in : nullptr;
  if (op == "Reshape" || op == "Expand" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze" ||
      op == "Tile")
    return ShapePreserved(n) ? in : nullptr;
  if (op == "Slice") return ShapePreserved(n) && UnitSteps(n, opset) ? in : nullptr;
  if (op == "Transpose") return IdentityPerm(n) ? in : nullptr;
  if (op == "Pad") {
    std::optional<std::vector<int64_t>> pads =
        opset < 11 ? passes::AttrInts(n, "pads") : (n.input(1) ? ConstInts(n.input(1)) : std::nullopt);
    if (!pads) return nullptr;
    for (int64_t p : *pads)
      if (p != 0) return nullptr;
    return in;
  }
  if (op == "Concat")
    return n.num_inputs() == 1 && in->type.known() && in->type.dtype == out->type.dtype ? in : nullptr;
  if (op == "Split") return ShapePreserved(n) ? in : nullptr;
  if (op == "Add" || op == "Mul" || op == "Sub" || op == "Div") {
    int xi = ArithmeticIdentityInput(n);
    return xi < 0 ? nullptr : n.input(static_cast<size_t>(xi));
  }
  return nullptr;
}

}  // namespace

Status RunEliminateNop(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  int64_t opset = model.OpsetOf("");
  passes::ForEachGraph(*model.graph, [&](Graph& g) {
    for (Node* n : g.nodes()) {
      if (!n->domain.empty() && n->domain != "ai.onnx") continue;
      Value* in = PassThrough(*n, opset);
      if (in && passes::BypassNode(n, n->output(0), in)) ctx.changed = true;
    }
  });
  return Status::Ok();
}

}  // namespace kiln
