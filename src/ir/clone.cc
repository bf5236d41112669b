#include "ir/clone.h"

#include <unordered_map>

namespace kiln {
namespace {

using ValueMap = std::unordered_map<const Value*, Value*>;

void CloneGraphInto(const Graph& src, Graph& dst, ValueMap& map);

}  // namespace

Attribute CloneAttribute(const Attribute& a, Graph& owner, ValueMap& map) {
  Attribute c = a;
  if (a.g) {
    c.g = std::make_shared<Graph>();
    c.g->parent = &owner;
    CloneGraphInto(*a.g, *c.g, map);
  }
  for (size_t i = 0; i < a.graphs.size(); ++i) {
    c.graphs[i] = std::make_shared<Graph>();
    c.graphs[i]->parent = &owner;
    CloneGraphInto(*a.graphs[i], *c.graphs[i], map);
  }
  return c;
}

namespace {

// Values outside the copied tree (an enclosing scope that is not copied) stay.
Value* Mapped(const Value* v, ValueMap& map) {
  if (!v) return nullptr;
  auto it = map.find(v);
  return it == map.end() ? const_cast<Value*>(v) : it->second;
}

void CloneGraphInto(const Graph& src, Graph& dst, ValueMap& map) {
  dst.name = src.name;
  dst.doc_string = src.doc_string;
  for (const Value* v : src.values()) {
    Value* c = dst.AddValue(v->name());
    c->type = v->type;
    c->data = v->data;
    c->sym_data = v->sym_data;
    map[v] = c;
  }
  for (const Value* v : src.inputs) dst.inputs.push_back(Mapped(v, map));
  for (const Value* v : src.initializers) dst.initializers.push_back(Mapped(v, map));
  for (const Node* n : src.nodes()) {
    Node* c = dst.AddNode(n->op_type, n->name, n->domain);
    c->doc_string = n->doc_string;
    for (const auto& [k, a] : n->attrs) c->attrs[k] = CloneAttribute(a, dst, map);
    for (const Value* v : n->inputs()) c->AddInput(Mapped(v, map));
    for (const Value* v : n->outputs()) c->AddOutput(Mapped(v, map));
  }
  for (const Value* v : src.outputs) dst.outputs.push_back(Mapped(v, map));
}

}  // namespace

std::unique_ptr<Model> CloneModel(const Model& model) {
  auto out = std::make_unique<Model>();
  out->ir_version = model.ir_version;
  out->opsets = model.opsets;
  out->producer_name = model.producer_name;
  out->producer_version = model.producer_version;
  out->domain = model.domain;
  out->model_version = model.model_version;
  out->doc_string = model.doc_string;
  out->metadata = model.metadata;
  out->functions = model.functions;
  out->path = model.path;
  if (model.graph) {
    out->graph = std::make_shared<Graph>();
    ValueMap map;
    CloneGraphInto(*model.graph, *out->graph, map);
  }
  return out;
}

}  // namespace kiln
