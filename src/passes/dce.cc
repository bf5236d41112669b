// Dead-code elimination (see dce.h).
#include "passes/dce.h"

#include <unordered_set>
#include <vector>

#include "passes/pass_util.h"

namespace kiln {

Status RunDeadCodeElimination(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  // Outputs of any graph, subgraphs included (a subgraph may output an outer value).
  std::unordered_set<const Value*> pinned;
  passes::ForEachGraph(*model.graph, [&](Graph& g) { pinned.insert(g.outputs.begin(), g.outputs.end()); });
  std::vector<Graph*> graphs;
  passes::ForEachGraph(*model.graph, [&](Graph& g) { graphs.push_back(&g); });
  // Inner graphs first: their dead nodes release uses of outer values.
  for (auto it = graphs.rbegin(); it != graphs.rend(); ++it) {
    Graph& g = **it;
    std::vector<Node*> nodes = g.nodes();
    for (auto n = nodes.rbegin(); n != nodes.rend(); ++n) {
      bool live = false;
      for (const Value* v : (*n)->outputs())
        if (v && (!v->uses().empty() || pinned.count(v))) live = true;
      if (live) continue;
      passes::RemoveNodeDeep(g, *n);
      ctx.changed = true;
    }
    size_t inits = g.initializers.size();
    g.RemoveUnusedValues();
    if (g.initializers.size() != inits) ctx.changed = true;
  }
  return Status::Ok();
}

}  // namespace kiln
