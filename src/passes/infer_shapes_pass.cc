// The simplifier's shape inference step (see infer_shapes_pass.h).
#include "passes/infer_shapes_pass.h"

#include <optional>
#include <utility>
#include <vector>

#include "passes/pass_util.h"
#include "passes/shape_inference.h"

namespace kiln {

Status RunShapeInference(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  // Results of an earlier round and declared types are recomputed from
  // scratch, and overridable inputs (inputs with an initializer) must not fold
  // into constants.
  std::vector<std::pair<Value*, Tensor>> defaults;
  passes::ForEachGraph(*model.graph, [&](Graph& g) {
    for (Node* n : g.nodes())
      for (Value* v : n->outputs())
        if (v) {
          v->type = TypeInfo{};
          v->data.reset();
          v->sym_data.reset();
        }
    for (Value* v : g.inputs)
      if (v->data) {
        defaults.emplace_back(v, *v->data);
        v->data.reset();
        v->sym_data.reset();
      }
  });
  ShapeInferenceOptions options;
  options.tolerate_errors = true;
  Status st = InferShapes(model, options);
  for (auto& [v, t] : defaults) v->data = std::move(t);
  return st;
}

}  // namespace kiln
