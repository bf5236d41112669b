// Views of kiln.Pointwise inputs (see pointwise_view.h).
#include "build/codegen/pointwise_view.h"

#include <limits>
#include <optional>

#include "passes/pass_util.h"

namespace kiln::codegen {
namespace {

bool SliceOf(const Node& n, int64_t opset, int64_t rank, PwViewOp* op) {
  std::vector<int64_t> axes;
  bool has_axes = false, has_steps = false;
  if (opset < 10) {
    if (n.num_inputs() != 1) return false;
    for (const auto& [name, a] : n.attrs)
      if (name != "starts" && name != "ends" && name != "axes") return false;
    auto starts = passes::AttrInts(n, "starts"), ends = passes::AttrInts(n, "ends");
    auto ax = passes::AttrInts(n, "axes");
    if (!starts || !ends) return false;
    op->starts = *starts;
    op->ends = *ends;
    has_axes = ax.has_value();
    if (ax) axes = *ax;
  } else {
    if (n.num_inputs() < 3 || n.num_inputs() > 5 || !n.attrs.empty()) return false;
    auto starts = passes::ConstInts(n.input(1)), ends = passes::ConstInts(n.input(2));
    if (!starts || !ends) return false;
    op->starts = *starts;
    op->ends = *ends;
    has_axes = n.num_inputs() > 3 && n.input(3);
    has_steps = n.num_inputs() > 4 && n.input(4);
    if (has_axes) {
      auto ax = passes::ConstInts(n.input(3));
      if (!ax) return false;
      axes = *ax;
    }
    if (has_steps) {
      auto st = passes::ConstInts(n.input(4));
      if (!st) return false;
      op->steps = *st;
    }
  }
  const size_t count = op->starts.size();
  if (op->ends.size() != count || static_cast<int64_t>(count) > rank) return false;
  if (!has_axes)
    for (size_t i = 0; i < count; ++i) axes.push_back(static_cast<int64_t>(i));
  if (!has_steps) op->steps.assign(count, 1);
  if (axes.size() != count || op->steps.size() != count) return false;
  for (int64_t s : op->steps)
    if (s == 0 || s == std::numeric_limits<int64_t>::min()) return false;
  for (int64_t& a : axes) {
    if (a < -rank || a >= rank) return false;
    if (a < 0) a += rank;
  }
  if (!passes::NormalizeAxes(axes, rank)) return false;  // repeated
  op->axes = axes;
  return true;
}

}  // namespace

bool ViewOpOf(const Node& n, int64_t opset, PwViewOp* op) {
  if ((n.domain != "" && n.domain != "ai.onnx") || n.num_outputs() != 1 || !n.output(0) ||
      n.num_inputs() < 1 || !n.input(0) || !n.input(0)->shape().rank_known())
    return false;
  const int64_t rank = n.input(0)->shape().rank();
  *op = PwViewOp{};
  if (n.op_type == "Slice") {
    op->kind = PwViewOp::kSlice;
    return SliceOf(n, opset, rank, op);
  }
  if (n.op_type == "Expand") {
    op->kind = PwViewOp::kExpand;
    auto shape = n.num_inputs() == 2 && n.attrs.empty() ? passes::ConstInts(n.input(1)) : std::nullopt;
    if (!shape || shape->size() > KILN_PW_MAX_RANK) return false;
    for (int64_t d : *shape)
      if (d < 0) return false;
    op->shape = *shape;
    return true;
  }
  op->kind = PwViewOp::kTranspose;
  if (n.op_type != "Transpose" || n.num_inputs() != 1 || rank == 0) return false;
  if (const Attribute* p = n.attr("perm")) {
    if (static_cast<int64_t>(p->ints.size()) != rank) return false;
    op->perm = p->ints;
    return true;
  }
  for (int64_t a = rank - 1; a >= 0; --a) op->perm.push_back(a);
  return true;
}

BodyView AbsorbedView(const Value& in, int64_t opset) {
  BodyView v;
  v.value = &in;
  PwViewOp op;
  while (v.value->uses().size() == 1) {
    const Node* u = v.value->uses()[0];
    if (u->input(0) != v.value || !ViewOpOf(*u, opset, &op)) break;
    v.view.ops.push_back(op);
    v.value = u->output(0);
  }
  return v;
}

}  // namespace kiln::codegen
