// Helpers for the simplifier's pass tests (passes_test.cc): a small model
// builder and golden-IR comparison. A golden file tests/golden/<name>.txt
// holds the printed IR before and after a pass; run the tests with
// KILN_UPDATE_GOLDEN=1 to rewrite them (then review the diff).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "ir/clone.h"
#include "ir/graph.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "passes/dce.h"
#include "passes/infer_shapes_pass.h"
#include "passes/pass.h"
#include "reference/equivalence.h"

namespace kiln {
namespace testing_passes {

inline Tensor Floats(std::vector<int64_t> dims, const std::vector<float>& v) {
  return Tensor::FromVector<float>(DataType::kFloat, std::move(dims), v);
}
// Deterministic non-trivial values: 0.1*(i%7) - 0.25 + offset.
inline Tensor Ramp(std::vector<int64_t> dims, float offset = 0.0f) {
  Tensor t(DataType::kFloat, std::move(dims));
  float* p = t.mutable_data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = 0.1f * static_cast<float>(i % 7) - 0.25f + offset;
  return t;
}

class ModelBuilder {
 public:
  explicit ModelBuilder(int64_t opset = 17) : model_(std::make_unique<Model>()) {
    model_->ir_version = 8;
    model_->opsets[""] = opset;
    model_->graph = std::make_shared<Graph>();
    model_->graph->name = "main";
  }
  Graph& graph() { return *model_->graph; }

  Value* Input(const std::string& name, DataType dt, Shape shape) {
    Value* v = graph().AddValue(name);
    v->type = TypeInfo::Tensor(dt, std::move(shape));
    graph().inputs.push_back(v);
    return v;
  }
  Value* Init(const std::string& name, Tensor t) {
    Value* v = graph().AddValue(name);
    v->type = TypeInfo::Tensor(t.dtype(), t.shape());
    v->data = std::move(t);
    graph().initializers.push_back(v);
    return v;
  }
  Value* Ints(const std::string& name, const std::vector<int64_t>& v) {
    return Init(name, Tensor::Int64s(v));
  }

  // A node with the given inputs (nullptr: omitted) and named outputs ("" : omitted).
  Node* Op(const std::string& op, const std::vector<Value*>& inputs, const std::vector<std::string>& outputs,
           AttributeMap attrs = {}, const std::string& name = "") {
    Node* n = graph().AddNode(op, name.empty() ? op + "_" + std::to_string(graph().num_nodes()) : name);
    for (Value* v : inputs) n->AddInput(v);
    for (const std::string& o : outputs) n->AddOutput(o.empty() ? nullptr : graph().AddValue(o));
    n->attrs = std::move(attrs);
    return n;
  }
  Value* Op1(const std::string& op, const std::vector<Value*>& inputs, const std::string& output,
             AttributeMap attrs = {}) {
    return Op(op, inputs, {output}, std::move(attrs))->output(0);
  }
  void Output(Value* v) { graph().outputs.push_back(v); }
  std::unique_ptr<Model> Take() { return std::move(model_); }

 private:
  std::unique_ptr<Model> model_;
};

// The printed IR (with value types), then the values of the main graph's
// small initializers (the printer never prints initializer data).
inline std::string PrintIr(const Model& m) {
  PrintOptions o;
  o.value_types = true;
  std::string s = PrintGraph(m, o);
  for (const Value* v : m.graph->initializers)
    if (v->data && v->data->numel() <= o.max_tensor_elements)
      s += "  const %" + v->name() + " = " + PrintAttribute(Attribute::FromTensor(*v->data), o) + "\n";
  return s;
}

// Compares "# before\n<before># after\n<after>" with tests/golden/<name>.txt.
inline void ExpectGolden(const std::string& name, const std::string& before, const std::string& after) {
  std::string text = "# before\n" + before + "# after\n" + after;
  std::string path = std::string(KILN_SOURCE_DIR) + "/tests/golden/" + name + ".txt";
  if (std::getenv("KILN_UPDATE_GOLDEN")) {
    std::ofstream(path, std::ios::trunc) << text;
    return;
  }
  std::ifstream f(path);
  ASSERT_TRUE(f.good()) << "missing golden file " << path << " (run with KILN_UPDATE_GOLDEN=1 to create it)";
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str(), text) << "IR differs from " << path << " (KILN_UPDATE_GOLDEN=1 rewrites it)";
}

// Runs `pass` (then DCE) on the model, checks golden IR, validity and equivalence.
inline PassContext RunGolden(const std::string& name, std::unique_ptr<Model> m, PassFn pass,
                      bool expect_change = true, PassContext ctx = {}) {
  EXPECT_TRUE(RunShapeInference(*m, ctx).ok());
  auto original = CloneModel(*m);
  std::string before = PrintIr(*m);
  Status st = pass(*m, ctx);
  EXPECT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(ctx.changed, expect_change);
  PassContext dce;
  EXPECT_TRUE(RunDeadCodeElimination(*m, dce).ok());
  Status valid = VerifyModel(*m);
  EXPECT_TRUE(valid.ok()) << valid.message() << "\n" << PrintIr(*m);
  ExpectGolden(name, before, PrintIr(*m));
  for (int64_t dim : {1, 3}) {  // symbolic dims (batch, seq) at 1 and 3
    EquivalenceOptions o;
    o.symbolic_dim = dim;
    EquivalenceReport report;
    Status eq = CheckEquivalent(*original, *m, o, &report);
    EXPECT_TRUE(eq.ok()) << eq.message();
    for (const std::string& v : report.vacuous) ADD_FAILURE() << "the equivalence check cannot fail: " << v;
  }
  return ctx;
}

}  // namespace testing_passes
}  // namespace kiln
