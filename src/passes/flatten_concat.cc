// Nested Concats on one axis become one (see flatten_concat.h).
#include "passes/flatten_concat.h"

#include <optional>
#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

// The Concat's axis, non-negative; nullopt when it is absent, or negative with the output's rank unknown.
std::optional<int64_t> ConcatAxis(const Node& n) {
  const Attribute* a = n.attr("axis");
  if (!a) return std::nullopt;
  if (a->i >= 0) return a->i;
  const Value* out = n.output(0);
  if (!out->shape().rank_known()) return std::nullopt;
  return a->i + out->shape().rank();
}

// Splices the single-use Concats among `outer`'s inputs that share its axis into it; true when any was.
bool Flatten(Graph& g, Node* outer) {
  std::optional<int64_t> axis = ConcatAxis(*outer);
  if (!axis) return false;
  std::vector<Value*> inputs;
  bool changed = false;
  for (size_t i = 0; i < outer->num_inputs(); ++i) {
    Value* v = outer->input(i);
    Node* inner = v ? passes::SoleProducer(g, v) : nullptr;
    if (passes::IsOnnxOp(inner, "Concat") && inner->num_outputs() == 1 && ConcatAxis(*inner) == axis) {
      for (size_t k = 0; k < inner->num_inputs(); ++k) inputs.push_back(inner->input(k));
      changed = true;
    } else {
      inputs.push_back(v);
    }
  }
  if (!changed) return false;
  outer->ClearInputs();
  for (Value* v : inputs) outer->AddInput(v);
  return true;  // the inner Concats, now unused, go with dead-code elimination
}

}  // namespace

Status RunFlattenConcat(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  passes::ForEachGraph(*model.graph, [&](Graph& g) {
    // Inner Concats come first in node order: a chain of them flattens in one sweep.
    for (Node* n : g.nodes())
      if (passes::IsOnnxOp(n, "Concat") && n->num_outputs() == 1 && Flatten(g, n)) ctx.changed = true;
  });
  return Status::Ok();
}

}  // namespace kiln
