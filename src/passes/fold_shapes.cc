// Shape-subgraph folding (see fold_shapes.h).
#include "passes/fold_shapes.h"

#include <optional>
#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace passes {

std::optional<std::vector<int64_t>> ReshapeTarget(const Shape& in, const Shape& out, bool allow_zero_copy) {
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
  // -1 cannot infer a dim when some other dim is 0 (0/0).
  if (inferred)
    for (int64_t t : target)
      if (t == 0 && !allow_zero_copy) return std::nullopt;
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

// Reshape(x, s) with s not constant but the output shape known well enough.
bool ConstantReshapeTarget(Graph& g, Node& n) {
  if (n.op_type != "Reshape" || !n.domain.empty() || n.num_inputs() < 2) return false;
  Value* x = n.input(0);
  Value* s = n.input(1);
  Value* y = n.output(0);
  if (!x || !s || !y || IsConstant(s)) return false;
  bool allowzero = passes::AttrInt(n, "allowzero", 0) != 0;
  auto target = passes::ReshapeTarget(x->type.shape, y->type.shape, !allowzero);
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
