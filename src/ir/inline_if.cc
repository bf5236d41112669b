#include "ir/inline_if.h"

#include <unordered_map>

#include "ir/clone.h"

namespace kiln {
namespace {

// The branch an If with a known condition takes, or nullptr.
const Graph* DecidedBranch(const Node& n) {
  if (n.op_type != "If" || !n.domain.empty() || n.num_inputs() < 1) return nullptr;
  const Value* cond = n.input(0);
  if (!cond || !cond->data || cond->data->numel() != 1) return nullptr;
  const Attribute* a = n.attr(cond->data->IntAt(0) != 0 ? "then_branch" : "else_branch");
  if (!a || !a->g || a->g->outputs.size() != n.num_outputs()) return nullptr;
  return a->g.get();
}

void Inline(Graph& g, Node* node, const Graph& branch, const InlineTrace& trace) {
  std::unordered_map<const Value*, Value*> map;
  for (const Value* v : branch.values()) {
    Value* c = g.AddValue(g.UniqueName(v->name()));
    c->type = v->type;
    c->data = v->data;
    c->sym_data = v->sym_data;
    map[v] = c;
  }
  for (const Value* v : branch.initializers) g.initializers.push_back(map.at(v));
  auto mapped = [&](const Value* v) -> Value* {
    if (!v) return nullptr;
    auto it = map.find(v);
    return it == map.end() ? const_cast<Value*>(v) : it->second;  // from an enclosing scope
  };
  for (const Node* bn : branch.nodes()) {
    Node* c = g.InsertNode(node, bn->op_type, bn->name, bn->domain);
    c->doc_string = bn->doc_string;
    for (const auto& [k, a] : bn->attrs) c->attrs[k] = CloneAttribute(a, g, map);
    for (const Value* v : bn->inputs()) c->AddInput(mapped(v));
    for (const Value* v : bn->outputs()) c->AddOutput(mapped(v));
    if (trace) trace(c, bn);
  }
  // The If's outputs keep their values: each becomes an Identity of the branch's.
  for (size_t i = 0; i < node->num_outputs(); ++i) {
    Value* out = node->output(i);
    if (!out) continue;
    Node* id = g.InsertNode(node, "Identity", node->name + "/output_" + std::to_string(i));
    id->AddInput(mapped(branch.outputs[i]));
    node->SetOutput(i, nullptr);
    id->AddOutput(out);
    if (trace) trace(id, node);
  }
  g.RemoveNode(node);
}

}  // namespace

Status InlineDecidedIfs(Graph& g, const InlineTrace& trace, bool* changed) {
  bool any = false;
  for (bool again = true; again;) {
    again = false;
    for (Node* n : g.nodes()) {
      const Graph* branch = DecidedBranch(*n);
      if (!branch) continue;
      Inline(g, n, *branch, trace);
      again = true;
      any = true;
      break;  // the node list changed
    }
  }
  if (any) g.RemoveUnusedValues();
  *changed |= any;
  return Status::Ok();
}

}  // namespace kiln
