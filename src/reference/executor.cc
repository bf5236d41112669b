// CPU reference executor: walks a graph in schedule order, resolves each
// node's inputs in its scope (subgraphs see outer scopes), runs the op's CPU
// reference from the op table and stores the outputs. Values are dropped after
// their last use so large models fit in memory.
#include "reference/executor.h"

#include <unordered_map>
#include <unordered_set>

#include "ops/op_table.h"

namespace kiln {
namespace {

struct Scope {
  std::unordered_map<std::string, RtValue> values;
  const Scope* parent = nullptr;

  const RtValue* Find(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent) {
      auto it = s->values.find(name);
      if (it != s->values.end()) return &it->second;
    }
    return nullptr;
  }
};

// Names a graph's subgraphs read from enclosing scopes (never freed early).
void CollectSubgraphReads(const Graph& g, std::unordered_set<std::string>* names) {
  for (const Node* n : g.nodes())
    for (const auto& [key, attr] : n->attrs) {
      std::vector<const Graph*> subs;
      if (attr.g) subs.push_back(attr.g.get());
      for (const auto& sg : attr.graphs) subs.push_back(sg.get());
      for (const Graph* sg : subs) {
        for (const Node* sn : sg->nodes())
          for (const Value* v : sn->inputs())
            if (v && v->graph() != sg) names->insert(v->name());
        for (const Value* v : sg->outputs)
          if (v->graph() != sg) names->insert(v->name());
        CollectSubgraphReads(*sg, names);
      }
    }
}

class GraphRunner {
 public:
  explicit GraphRunner(const Model& model) : model_(model) {}

  Expected<std::vector<RtValue>> Run(const Graph& g, Scope& scope) const {
    for (const Value* v : g.initializers)
      if (v->data && !scope.values.count(v->name())) scope.values[v->name()] = RtValue::FromTensor(*v->data);

    std::vector<Node*> nodes = g.nodes();
    std::unordered_set<std::string> pinned;
    CollectSubgraphReads(g, &pinned);
    for (const Value* v : g.outputs) pinned.insert(v->name());
    std::unordered_map<std::string, size_t> last_use;
    for (size_t i = 0; i < nodes.size(); ++i)
      for (const Value* v : nodes[i]->inputs())
        if (v) last_use[v->name()] = i;

    for (size_t i = 0; i < nodes.size(); ++i) {
      KILN_RETURN_IF_ERROR(RunNode(*nodes[i], scope));
      for (const Value* v : nodes[i]->inputs()) {
        if (!v || pinned.count(v->name()) || last_use[v->name()] != i) continue;
        scope.values.erase(v->name());
      }
    }

    std::vector<RtValue> outputs;
    outputs.reserve(g.outputs.size());
    for (const Value* v : g.outputs) {
      const RtValue* r = scope.Find(v->name());
      if (!r) return InvalidArgument("graph '" + g.name + "': output '" + v->name() + "' was never produced");
      outputs.push_back(*r);
    }
    return outputs;
  }

 private:
  Status RunNode(const Node& node, Scope& scope) const {
    const OpInfo* op = FindOp(node.domain, node.op_type);
    if (!op) return Unsupported(node.Label() + ": op is not supported by kiln");
    std::vector<const RtValue*> inputs;
    inputs.reserve(node.num_inputs());
    for (const Value* v : node.inputs()) {
      if (!v) {
        inputs.push_back(nullptr);
        continue;
      }
      const RtValue* r = scope.Find(v->name());
      if (!r) return InvalidArgument(node.Label() + ": input '" + v->name() + "' has no value");
      inputs.push_back(r);
    }
    auto run_subgraph = [this, &scope](const Graph& sg,
                                       const std::vector<RtValue>& in) -> Expected<std::vector<RtValue>> {
      if (in.size() != sg.inputs.size())
        return InvalidArgument("subgraph '" + sg.name + "' takes " + std::to_string(sg.inputs.size()) +
                               " inputs, got " + std::to_string(in.size()));
      Scope inner;
      inner.parent = &scope;
      for (size_t i = 0; i < in.size(); ++i) inner.values[sg.inputs[i]->name()] = in[i];
      return Run(sg, inner);
    };
    RunContext ctx(node, model_.OpsetOf(node.domain), std::move(inputs), run_subgraph);
    KILN_RETURN_IF_ERROR(op->Run(ctx));
    for (size_t i = 0; i < node.num_outputs(); ++i) {
      const Value* out = node.output(i);
      if (!out) continue;
      RtValue& r = ctx.outputs()[i];
      if (r.kind == ValueKind::kTensor && !r.tensor.defined())
        return Internal(node.Label() + ": CPU reference did not produce output " + std::to_string(i) + " '" +
                        out->name() + "'");
      scope.values[out->name()] = std::move(r);
    }
    return Status::Ok();
  }

  const Model& model_;
};

Status CheckInput(const Value& decl, const RtValue& given) {
  if (given.kind != ValueKind::kTensor || decl.type.kind != ValueKind::kTensor) return Status::Ok();
  const Tensor& t = given.tensor;
  if (decl.type.dtype != DataType::kUndefined && t.dtype() != decl.type.dtype)
    return InvalidArgument("input '" + decl.name() + "' expects " + std::string(DataTypeName(decl.type.dtype)) +
                           ", got " + std::string(DataTypeName(t.dtype())));
  const Shape& s = decl.type.shape;
  if (!s.rank_known()) return Status::Ok();
  bool ok = s.rank() == t.rank();
  for (int i = 0; ok && i < s.rank(); ++i)
    if (s[i].known() && s[i].value() != t.dim(i)) ok = false;
  if (!ok)
    return InvalidArgument("input '" + decl.name() + "' expects shape " + s.ToString() + ", got " +
                           t.shape().ToString());
  return Status::Ok();
}

}  // namespace

Expected<std::vector<RtValue>> ReferenceExecutor::Run(const std::map<std::string, RtValue>& inputs) const {
  if (!model_.graph) return InvalidArgument("model has no graph");
  const Graph& g = *model_.graph;
  Scope scope;
  for (const auto& [name, value] : inputs) {
    const Value* decl = g.FindValue(name);
    bool is_input = false;
    for (const Value* v : g.inputs) is_input |= (v == decl);
    if (!decl || !is_input) return InvalidArgument("model has no input named '" + name + "'");
    KILN_RETURN_IF_ERROR(CheckInput(*decl, value));
    scope.values[name] = value;
  }
  for (const Value* v : g.inputs)
    if (!scope.values.count(v->name()) && !v->data)
      return InvalidArgument("missing value for model input '" + v->name() + "' (" + v->type.ToString() + ")");
  return GraphRunner(model_).Run(g, scope);
}

}  // namespace kiln
