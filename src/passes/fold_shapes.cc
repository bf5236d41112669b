// Shape-subgraph folding (see fold_shapes.h).
#include "passes/fold_shapes.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace passes {

std::optional<std::vector<int64_t>> ReshapeTarget(const Shape& in, const Shape& out, bool allow_zero_copy,
                                                  int infer_at) {
  if (!out.rank_known()) return std::nullopt;
  std::vector<int64_t> target;
  bool inferred = false;
  for (int i = 0; i < out.rank(); ++i) {
    const Dim& d = out[static_cast<size_t>(i)];
    bool copyable = allow_zero_copy && in.rank_known() && i < in.rank() &&
                    !in[static_cast<size_t>(i)].unknown() && in[static_cast<size_t>(i)] == d;
    if (d.known() && d.value() > 0) {
      target.push_back(d.value());
    } else if (copyable) {
      target.push_back(0);
    } else if (d.known()) {  // 0 that cannot be copied: only allowzero=1 says "0"
      if (allow_zero_copy) return std::nullopt;
      target.push_back(0);
    } else if (!inferred) {
      inferred = true;
      target.push_back(-1);
    } else {
      return std::nullopt;
    }
  }
  // -1 cannot infer a dim when some other dim is 0 (0/0): with allowzero=1
  // that is invalid; a copied dim may be 0 at run time (an empty input), so
  // only where the original target had the same -1.
  for (size_t i = 0; inferred && i < target.size(); ++i) {
    if (target[i] != 0) continue;
    if (!allow_zero_copy) return std::nullopt;
    auto minus = std::find(target.begin(), target.end(), -1) - target.begin();
    if (minus != infer_at) return std::nullopt;
  }
  return target;
}

}  // namespace passes

namespace {

using passes::IsConstant;

// Every output computed by inference (tensors only).
bool OutputsKnown(const Node& n) {
  if (n.num_outputs() == 0) return false;
  bool any = false;
  for (const Value* v : n.outputs()) {
    if (!v) continue;
    if (!v->data || v->type.kind != ValueKind::kTensor) return false;
    any = true;
  }
  return any;
}

bool FoldKnownOutputs(Graph& g, Node& n) {
  if (passes::IsRandomOp(n) || passes::HasSubgraphs(n) || n.op_type == "Dropout" || !OutputsKnown(n))
    return false;
  std::vector<Value*> outs = n.outputs();
  g.RemoveNode(&n);
  for (Value* v : outs) {
    if (!v) continue;
    v->type = TypeInfo::Tensor(v->data->dtype(), v->data->shape());
    v->sym_data.reset();
    g.initializers.push_back(v);
  }
  return true;
}

// Position of a literal -1 in the value of `s` when s is a constant or a
// Concat of pieces of known length, one of them a constant holding that -1;
// -2 when there is none that can be proven.
int LiteralMinusOne(const Value* s) {
  if (auto c = passes::ConstInts(s)) {
    auto it = std::find(c->begin(), c->end(), -1);
    return it == c->end() ? -2 : static_cast<int>(it - c->begin());
  }
  const Node* cat = s->producer();
  if (!cat || cat->op_type != "Concat" || !cat->domain.empty()) return -2;
  int offset = 0;
  for (const Value* piece : cat->inputs()) {
    if (!piece) return -2;
    auto c = passes::ConstInts(piece);
    if (c) {
      auto it = std::find(c->begin(), c->end(), -1);
      if (it != c->end()) return offset + static_cast<int>(it - c->begin());
      offset += static_cast<int>(c->size());
      continue;
    }
    auto dims = piece->shape().concrete();
    if (!dims || dims->size() != 1) return -2;
    offset += static_cast<int>((*dims)[0]);
  }
  return -2;
}

// Reshape(x, s) with s not constant but the output shape known well enough.
bool ConstantReshapeTarget(Graph& g, Node& n) {
  if (n.op_type != "Reshape" || !n.domain.empty() || n.num_inputs() < 2) return false;
  Value* x = n.input(0);
  Value* s = n.input(1);
  Value* y = n.output(0);
  if (!x || !s || !y || IsConstant(s)) return false;
  bool allowzero = passes::AttrInt(n, "allowzero", 0) != 0;
  auto target = passes::ReshapeTarget(x->type.shape, y->type.shape, !allowzero, LiteralMinusOne(s));
  if (!target) return false;
  // The symbolic contents, when known, must agree with the target's rank.
  if (s->sym_data && s->sym_data->size() != target->size()) return false;
  n.SetInput(1, passes::AddInt64Initializer(g, y->name() + "_shape", *target));
  return true;
}

}  // namespace

Status RunFoldShapes(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  passes::ForEachGraph(*model.graph, [&](Graph& g) {
    for (Node* n : g.nodes()) {
      if (FoldKnownOutputs(g, *n)) {
        ctx.changed = true;
        continue;
      }
      if (ConstantReshapeTarget(g, *n)) ctx.changed = true;
    }
  });
  return Status::Ok();
}

}  // namespace kiln
