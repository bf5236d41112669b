// A node builder for hand-made graphs (the main graph or a subgraph: If
// branches, Loop and Scan bodies), shared by the control-flow and FP16
// subgraph tests. Node and value names are made unique within the graph.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln {
namespace testing_ir {

// An empty model (IR 8, default-domain opset `opset`) to build into.
inline std::unique_ptr<Model> NewModel(int64_t opset = 17) {
  auto m = std::make_unique<Model>();
  m->ir_version = 8;
  m->opsets[""] = opset;
  m->graph = std::make_shared<Graph>();
  m->graph->name = "main";
  return m;
}

// Builds nodes into one graph (the main graph or a subgraph).
class Builder {
 public:
  explicit Builder(Graph* g) : g_(g) {}

  Value* Input(const std::string& name, TypeInfo t) {
    Value* v = g_->AddValue(name);
    v->type = std::move(t);
    g_->inputs.push_back(v);
    return v;
  }
  Value* Input(const std::string& name, DataType dt, Shape s) { return Input(name, TypeInfo::Tensor(dt, s)); }
  Value* Const(Tensor t) {
    Value* v = g_->AddValue(Fresh("c"));
    v->type = TypeInfo::Tensor(t.dtype(), t.shape());
    v->data = std::move(t);
    g_->initializers.push_back(v);
    return v;
  }
  std::vector<Value*> Op(const std::string& type, const std::vector<Value*>& inputs, AttributeMap attrs = {},
                         size_t n_out = 1) {
    Node* n = g_->AddNode(type, Fresh(type));
    for (Value* v : inputs) n->AddInput(v);
    for (size_t i = 0; i < n_out; ++i) n->AddOutput(g_->AddValue(Fresh(type + "_out")));
    n->attrs = std::move(attrs);
    return n->outputs();
  }
  Value* Op1(const std::string& type, const std::vector<Value*>& inputs, AttributeMap attrs = {}) {
    return Op(type, inputs, std::move(attrs))[0];
  }
  // One output, node and output both named `name` (tests that refer to them).
  Value* Named(const std::string& type, const std::string& name, const std::vector<Value*>& inputs,
               AttributeMap attrs = {}) {
    Node* n = g_->AddNode(type, name);
    for (Value* v : inputs) n->AddInput(v);
    n->AddOutput(g_->AddValue(name));
    n->attrs = std::move(attrs);
    return n->output(0);
  }
  void Output(Value* v) { g_->outputs.push_back(v); }

 private:
  std::string Fresh(const std::string& base) {
    return g_->UniqueName(base + "_" + std::to_string(counter_++));
  }
  Graph* g_;
  int counter_ = 0;
};

}  // namespace testing_ir
}  // namespace kiln
