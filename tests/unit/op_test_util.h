// Test helpers for op unit tests: a one-node model built by hand, shape
// inference over it, and a CPU reference run.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ops/op_context.h"
#include "passes/shape_inference.h"
#include "reference/executor.h"

namespace kiln {
namespace testing {

// A model with one node `op` whose inputs are graph inputs (or constants).
class OneNode {
 public:
  explicit OneNode(const std::string& op, int64_t opset = 21) : model_(std::make_unique<Model>()) {
    model_->opsets[""] = opset;
    model_->graph = std::make_shared<Graph>();
    node_ = model_->graph->AddNode(op, "n");
  }
  // Graph input of the given type.
  OneNode& Input(const std::string& name, DataType dt, Shape shape) {
    Value* v = model_->graph->AddValue(name);
    v->type = TypeInfo::Tensor(dt, std::move(shape));
    model_->graph->inputs.push_back(v);
    node_->AddInput(v);
    return *this;
  }
  // Constant (initializer) input.
  OneNode& Const(const std::string& name, Tensor t) {
    Value* v = model_->graph->AddValue(name);
    v->type = TypeInfo::Tensor(t.dtype(), t.shape());
    v->data = t;
    model_->graph->initializers.push_back(v);
    node_->AddInput(v);
    return *this;
  }
  // int64 1-D input whose symbolic contents are known (as if made by Shape).
  OneNode& SymInput(const std::string& name, std::vector<Dim> values) {
    Value* v = model_->graph->AddValue(name);
    v->type = TypeInfo::Tensor(DataType::kInt64, Shape::Of({static_cast<int64_t>(values.size())}));
    v->sym_data = std::move(values);
    model_->graph->inputs.push_back(v);
    node_->AddInput(v);
    return *this;
  }
  // Omitted optional input.
  OneNode& Omitted() {
    node_->AddInput(nullptr);
    return *this;
  }
  OneNode& Output(const std::string& name) {
    Value* v = model_->graph->AddValue(name);
    model_->graph->outputs.push_back(v);
    node_->AddOutput(v);
    return *this;
  }
  OneNode& AttrInt(const std::string& name, int64_t i) {
    Attribute a;
    a.type = Attribute::Type::kInt;
    a.i = i;
    node_->attrs[name] = a;
    return *this;
  }
  OneNode& AttrInts(const std::string& name, std::vector<int64_t> v) {
    Attribute a;
    a.type = Attribute::Type::kInts;
    a.ints = std::move(v);
    node_->attrs[name] = a;
    return *this;
  }
  OneNode& AttrString(const std::string& name, const std::string& s) {
    Attribute a;
    a.type = Attribute::Type::kString;
    a.s = s;
    node_->attrs[name] = a;
    return *this;
  }

  Status Infer() { return InferShapes(*model_); }
  const TypeInfo& OutType(size_t i) const { return node_->output(i)->type; }
  const Value& Out(size_t i) const { return *node_->output(i); }

  // Runs with the given graph inputs (by position among non-constant inputs).
  Expected<std::vector<Tensor>> Run(const std::vector<Tensor>& inputs) {
    std::map<std::string, RtValue> feed;
    for (size_t i = 0; i < inputs.size() && i < model_->graph->inputs.size(); ++i)
      feed[model_->graph->inputs[i]->name()] = RtValue::FromTensor(inputs[i]);
    ReferenceExecutor ex(*model_);
    auto r = ex.Run(feed);
    if (!r.ok()) return r.status();
    std::vector<Tensor> out;
    for (const RtValue& v : *r) out.push_back(v.tensor);
    return out;
  }

 private:
  std::unique_ptr<Model> model_;
  Node* node_;
};

template <class T>
std::vector<T> Values(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

}  // namespace testing
}  // namespace kiln
