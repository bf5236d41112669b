#include "ir/graph.h"

#include <algorithm>
#include <unordered_set>

namespace kiln {
namespace {

void EraseOne(std::vector<Node*>& uses, Node* n) {
  auto it = std::find(uses.begin(), uses.end(), n);
  if (it != uses.end()) uses.erase(it);
}

}  // namespace

std::string TypeInfo::ToString() const {
  std::string t = std::string(DataTypeName(dtype)) + shape.ToString();
  switch (kind) {
    case ValueKind::kTensor: return t;
    case ValueKind::kSequence: return "seq(" + t + ")";
    case ValueKind::kOptional: return elem_kind == ValueKind::kSequence ? "optional(seq(" + t + "))" : "optional(" + t + ")";
    case ValueKind::kMap: return "map";
    case ValueKind::kSparseTensor: return "sparse(" + t + ")";
  }
  return t;
}

const char* AttributeTypeName(Attribute::Type t) {
  switch (t) {
    case Attribute::Type::kUndefined: return "undefined";
    case Attribute::Type::kFloat: return "float";
    case Attribute::Type::kInt: return "int";
    case Attribute::Type::kString: return "string";
    case Attribute::Type::kTensor: return "tensor";
    case Attribute::Type::kGraph: return "graph";
    case Attribute::Type::kFloats: return "floats";
    case Attribute::Type::kInts: return "ints";
    case Attribute::Type::kStrings: return "strings";
    case Attribute::Type::kTensors: return "tensors";
    case Attribute::Type::kGraphs: return "graphs";
    case Attribute::Type::kSparseTensor: return "sparse_tensor";
    case Attribute::Type::kTypeProto: return "type_proto";
  }
  return "unknown";
}

void Node::SetInput(size_t i, Value* v) {
  if (i >= inputs_.size()) inputs_.resize(i + 1, nullptr);
  if (inputs_[i]) EraseOne(inputs_[i]->uses_, this);
  inputs_[i] = v;
  if (v) v->uses_.push_back(this);
}

void Node::AddInput(Value* v) { SetInput(inputs_.size(), v); }

void Node::SetOutput(size_t i, Value* v) {
  if (i >= outputs_.size()) outputs_.resize(i + 1, nullptr);
  if (outputs_[i] && outputs_[i]->producer_ == this) outputs_[i]->producer_ = nullptr;
  outputs_[i] = v;
  if (v) v->producer_ = this;
}

void Node::AddOutput(Value* v) { SetOutput(outputs_.size(), v); }

void Node::ClearInputs() {
  for (Value* v : inputs_)
    if (v) EraseOne(v->uses_, this);
  inputs_.clear();
}

std::string Node::Label() const {
  std::string op = domain.empty() ? op_type : domain + "." + op_type;
  return "node '" + name + "' (" + op + ")";
}

std::string Node::QualifiedOp() const {
  return domain.empty() || domain == "ai.onnx" ? op_type : domain + "." + op_type;
}

Value* Graph::AddValue(const std::string& name) {
  auto v = std::make_unique<Value>();
  v->name_ = name;
  v->graph_ = this;
  Value* raw = v.get();
  values_.push_back(std::move(v));
  if (!name.empty()) by_name_[name] = raw;
  return raw;
}

Value* Graph::FindValue(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

Value* Graph::Lookup(const std::string& name) const {
  for (const Graph* g = this; g; g = g->parent)
    if (Value* v = g->FindValue(name)) return v;
  return nullptr;
}

std::string Graph::UniqueName(const std::string& base) const {
  if (!Lookup(base)) return base;
  for (int i = 1;; ++i) {
    std::string n = base + "_" + std::to_string(i);
    if (!Lookup(n)) return n;
  }
}

Node* Graph::AddNode(const std::string& op_type, const std::string& name, const std::string& domain) {
  return InsertNode(nullptr, op_type, name, domain);
}

Node* Graph::InsertNode(Node* before, const std::string& op_type, const std::string& name,
                        const std::string& domain) {
  auto n = std::make_unique<Node>();
  n->op_type = op_type;
  n->name = name;
  n->domain = domain;
  n->graph_ = this;
  Node* raw = n.get();
  auto pos = nodes_.end();
  if (before)
    pos = std::find_if(nodes_.begin(), nodes_.end(), [&](const auto& p) { return p.get() == before; });
  nodes_.insert(pos, std::move(n));
  return raw;
}

namespace {

// A removed node's subgraphs go with it (unless another node shares them):
// their nodes must not stay among the uses of the enclosing graphs' values.
void ClearInputsDeep(Node* n) {
  n->ClearInputs();
  for (auto& [name, a] : n->attrs) {
    if (a.g && a.g.use_count() == 1)
      for (Node* c : a.g->nodes()) ClearInputsDeep(c);
    for (auto& sg : a.graphs)
      if (sg && sg.use_count() == 1)
        for (Node* c : sg->nodes()) ClearInputsDeep(c);
  }
}

}  // namespace

void Graph::RemoveNode(Node* n) {
  ClearInputsDeep(n);
  for (Value* v : n->outputs_)
    if (v && v->producer_ == n) v->producer_ = nullptr;
  nodes_.erase(std::remove_if(nodes_.begin(), nodes_.end(), [&](const auto& p) { return p.get() == n; }),
               nodes_.end());
}

void Graph::RemoveUnusedValues() {
  std::unordered_set<const Value*> keep(inputs.begin(), inputs.end());
  keep.insert(outputs.begin(), outputs.end());
  std::vector<Value*> inits;
  for (Value* v : initializers)
    if (!v->uses_.empty() || keep.count(v)) inits.push_back(v);
  initializers = inits;
  keep.insert(initializers.begin(), initializers.end());
  values_.erase(std::remove_if(values_.begin(), values_.end(),
                               [&](const std::unique_ptr<Value>& v) {
                                 bool dead = v->uses_.empty() && !v->producer_ && !keep.count(v.get());
                                 if (dead && !v->name_.empty()) {
                                   auto it = by_name_.find(v->name_);
                                   if (it != by_name_.end() && it->second == v.get()) by_name_.erase(it);
                                 }
                                 return dead;
                               }),
                values_.end());
}

void Graph::ReplaceAllUses(Value* from, Value* to) {
  std::vector<Node*> users = from->uses_;
  for (Node* u : users)
    for (size_t i = 0; i < u->inputs_.size(); ++i)
      if (u->inputs_[i] == from) u->SetInput(i, to);
  for (Value*& o : outputs)
    if (o == from) o = to;
}

std::vector<Node*> Graph::nodes() const {
  std::vector<Node*> out;
  out.reserve(nodes_.size());
  for (const auto& n : nodes_) out.push_back(n.get());
  return out;
}

std::vector<Value*> Graph::values() const {
  std::vector<Value*> out;
  out.reserve(values_.size());
  for (const auto& v : values_) out.push_back(v.get());
  return out;
}

Status Graph::TopologicalSort() {
  // Kahn's algorithm keeping the original order among ready nodes. Only
  // dependencies on nodes of this graph count (outer values are ready).
  std::unordered_map<const Node*, size_t> index;
  for (size_t i = 0; i < nodes_.size(); ++i) index[nodes_[i].get()] = i;
  std::vector<size_t> pending(nodes_.size(), 0);
  std::vector<std::vector<size_t>> users(nodes_.size());
  for (size_t i = 0; i < nodes_.size(); ++i) {
    std::unordered_set<size_t> deps;
    for (Value* v : nodes_[i]->inputs_) {
      if (!v || !v->producer_) continue;
      auto it = index.find(v->producer_);
      if (it != index.end() && it->second != i) deps.insert(it->second);
      if (it != index.end() && it->second == i)
        return InvalidArgument(nodes_[i]->Label() + " uses its own output '" + v->name_ + "' (cycle)");
    }
    pending[i] = deps.size();
    for (size_t d : deps) users[d].push_back(i);
  }
  std::vector<size_t> order;
  std::vector<size_t> ready;
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (pending[i] == 0) ready.push_back(i);
  // Min-heap by original index keeps the order stable.
  std::make_heap(ready.begin(), ready.end(), std::greater<>());
  while (!ready.empty()) {
    std::pop_heap(ready.begin(), ready.end(), std::greater<>());
    size_t i = ready.back();
    ready.pop_back();
    order.push_back(i);
    for (size_t u : users[i])
      if (--pending[u] == 0) {
        ready.push_back(u);
        std::push_heap(ready.begin(), ready.end(), std::greater<>());
      }
  }
  if (order.size() != nodes_.size()) {
    for (size_t i = 0; i < nodes_.size(); ++i)
      if (pending[i] != 0)
        return InvalidArgument("graph '" + name + "' has a cycle through " + nodes_[i]->Label());
  }
  std::vector<std::unique_ptr<Node>> sorted;
  sorted.reserve(nodes_.size());
  for (size_t i : order) sorted.push_back(std::move(nodes_[i]));
  nodes_ = std::move(sorted);
  return Status::Ok();
}

int64_t Model::OpsetOf(const std::string& d) const {
  std::string key = (d == "ai.onnx") ? "" : d;
  auto it = opsets.find(key);
  if (it == opsets.end() && key.empty()) it = opsets.find("ai.onnx");
  return it == opsets.end() ? 0 : it->second;
}

void ForEachNodeDeep(const Graph& g, const std::function<void(const Node&)>& fn) {
  for (const Node* n : g.nodes()) {
    fn(*n);
    for (const auto& [name, attr] : n->attrs) {
      if (attr.g) ForEachNodeDeep(*attr.g, fn);
      for (const auto& sg : attr.graphs)
        if (sg) ForEachNodeDeep(*sg, fn);
    }
  }
}

void ForEachGraphDeep(const Graph& g, const std::function<void(const Graph&)>& fn) {
  fn(g);
  for (const Node* n : g.nodes())
    for (const auto& [name, attr] : n->attrs) {
      if (attr.g) ForEachGraphDeep(*attr.g, fn);
      for (const auto& sg : attr.graphs)
        if (sg) ForEachGraphDeep(*sg, fn);
    }
}

}  // namespace kiln
