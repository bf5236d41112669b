// The FP16 precision pass on models with subgraphs: If branches and Loop
// bodies that combine a captured outer value (float16 after the pass) with
// their own float32 constants must end up in one type, verify, and compute
// what the FP32 model computes within FP16 tolerance.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "graph_nodes.h"
#include "ir/clone.h"
#include "ir/graph.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "passes/fp16.h"
#include "passes/shape_inference.h"
#include "reference/executor.h"

namespace kiln {
namespace {

using testing_ir::Builder;

struct TestModel {
  std::unique_ptr<Model> model = std::make_unique<Model>();
  Graph* g;
  TestModel() {
    model->ir_version = 8;
    model->opsets[""] = 17;
    model->graph = std::make_shared<Graph>();
    model->graph->name = "main";
    g = model->graph.get();
  }
  std::shared_ptr<Graph> Subgraph(const std::string& name) {
    auto sg = std::make_shared<Graph>();
    sg->name = name;
    sg->parent = g;
    return sg;
  }
};

Tensor Floats(std::vector<int64_t> dims, std::vector<float> v) {
  return Tensor::FromVector<float>(DataType::kFloat, std::move(dims), v);
}

RtValue Bool(bool b) { return RtValue::FromTensor(Tensor::FromVector<bool>(DataType::kBool, {}, {b})); }

// Runs the FP16 pass on a copy of `before`; checks the copy verifies, keeps
// float32 outputs and computes the same values (FP16 tolerance) on `feed`.
void ConvertAndCompare(const Model& before, const std::vector<std::map<std::string, RtValue>>& feeds) {
  std::unique_ptr<Model> after = CloneModel(before);
  PassContext ctx;
  Status s = RunConvertToFp16(*after, ctx);
  ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << PrintGraph(*after);
  Status valid = VerifyModel(*after);
  ASSERT_TRUE(valid.ok()) << valid.ToString() << "\n" << PrintGraph(*after);
  for (const auto& feed : feeds) {
    auto want = ReferenceExecutor(before).Run(feed);
    auto got = ReferenceExecutor(*after).Run(feed);
    ASSERT_TRUE(want.ok()) << want.status().ToString();
    ASSERT_TRUE(got.ok()) << got.status().ToString() << "\n" << PrintGraph(*after);
    ASSERT_EQ(want->size(), got->size());
    for (size_t i = 0; i < want->size(); ++i) {
      const Tensor& w = (*want)[i].tensor;
      const Tensor& o = (*got)[i].tensor;
      ASSERT_EQ(w.dims(), o.dims()) << "output " << i;
      EXPECT_EQ(o.dtype(), DataType::kFloat) << "output " << i;
      for (int64_t k = 0; k < w.numel(); ++k)
        EXPECT_NEAR(o.ScalarAt(k), w.ScalarAt(k), 2e-3 * (1.0 + std::fabs(w.ScalarAt(k))))
            << "output " << i << " element " << k;
    }
  }
}

// y = If(cond, then: relu(x) + c1, else: relu(x) * Constant(c2) + c3) with
// relu(x) computed in the outer graph and captured by both branches.
TEST(Fp16Subgraph, IfBranchesAddCapturedOuterValueToLocalConstants) {
  TestModel m;
  Builder b(m.g);
  Value* cond = b.Input("cond", DataType::kBool, Shape::Scalar());
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim::Symbol("n"), Dim(3)}));
  Value* r = b.Op1("Relu", {x});
  auto then_g = m.Subgraph("then");
  Builder tb(then_g.get());
  tb.Output(tb.Op1("Add", {r, tb.Const(Floats({3}, {0.5f, -1.25f, 2.f}))}));
  auto else_g = m.Subgraph("else");
  Builder eb(else_g.get());
  Value* k = eb.Op1("Constant", {}, {{"value", Attribute::FromTensor(Floats({3}, {2.f, 3.f, -1.f}))}});
  Value* scaled = eb.Op1("Mul", {r, k});
  eb.Output(eb.Op1("Add", {scaled, eb.Const(Floats({1}, {0.75f}))}));
  Value* y =
      b.Op1("If", {cond},
            {{"then_branch", Attribute::FromGraph(then_g)}, {"else_branch", Attribute::FromGraph(else_g)}});
  b.Output(b.Op1("Sigmoid", {y}));
  b.Output(y);
  ASSERT_TRUE(InferShapes(*m.model).ok());

  RtValue xv = RtValue::FromTensor(Floats({2, 3}, {-1.f, 0.25f, 1.5f, 3.f, -0.5f, 0.125f}));
  ConvertAndCompare(*m.model, {{{"cond", Bool(true)}, {"x", xv}}, {{"cond", Bool(false)}, {"x", xv}}});
}

// One branch returns a graph input as it is (no node in the branch uses it),
// the other computes from it with a local constant: both must be float16.
TEST(Fp16Subgraph, IfBranchReturningTheGraphInputDirectly) {
  TestModel m;
  Builder b(m.g);
  Value* cond = b.Input("cond", DataType::kBool, Shape::Scalar());
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim(4)}));
  auto then_g = m.Subgraph("then");
  Builder tb(then_g.get());
  tb.Output(x);
  auto else_g = m.Subgraph("else");
  Builder eb(else_g.get());
  eb.Output(eb.Op1("Sub", {x, eb.Const(Floats({4}, {1.f, 2.f, 3.f, 4.f}))}));
  b.Output(
      b.Op1("If", {cond},
            {{"then_branch", Attribute::FromGraph(then_g)}, {"else_branch", Attribute::FromGraph(else_g)}}));
  ASSERT_TRUE(InferShapes(*m.model).ok());

  RtValue xv = RtValue::FromTensor(Floats({4}, {0.5f, -2.f, 8.f, 1.f}));
  ConvertAndCompare(*m.model, {{{"cond", Bool(true)}, {"x", xv}}, {{"cond", Bool(false)}, {"x", xv}}});
}

// Loop body: (i, c, acc) -> (c, acc * 0.5 + tanh(x) + Cast(i, float)); tanh(x)
// comes from the outer graph; the scan output is the carried value.
TEST(Fp16Subgraph, LoopBodyCapturesOuterValue) {
  TestModel m;
  Builder b(m.g);
  Value* trip = b.Input("M", DataType::kInt64, Shape::Scalar());
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim(2), Dim(2)}));
  Value* t = b.Op1("Tanh", {x});
  Value* acc0 = b.Const(Floats({2, 2}, {1.f, -1.f, 0.5f, 0.f}));
  auto body = m.Subgraph("body");
  Builder bb(body.get());
  Value* i = bb.Input("i", DataType::kInt64, Shape::Scalar());
  Value* c = bb.Input("c", DataType::kBool, Shape::Scalar());
  Value* acc = bb.Input("acc_in", DataType::kFloat, Shape({Dim(2), Dim(2)}));
  Value* half = bb.Op1("Mul", {acc, bb.Const(Floats({}, {0.5f}))});
  Value* fi = bb.Op1("Cast", {i}, {{"to", Attribute::FromInt(static_cast<int64_t>(DataType::kFloat))}});
  Value* next = bb.Op1("Add", {bb.Op1("Add", {half, t}), fi});
  bb.Output(bb.Op1("Identity", {c}));
  bb.Output(next);
  bb.Output(bb.Op1("Identity", {next}));
  auto outs = b.Op("Loop", {trip, nullptr, acc0}, {{"body", Attribute::FromGraph(body)}}, 2);
  b.Output(outs[0]);
  b.Output(outs[1]);
  ASSERT_TRUE(InferShapes(*m.model).ok());

  RtValue xv = RtValue::FromTensor(Floats({2, 2}, {0.3f, -0.7f, 1.2f, 2.f}));
  ConvertAndCompare(*m.model, {{{"M", RtValue::FromTensor(Tensor::ScalarInt64(3))}, {"x", xv}},
                               {{"M", RtValue::FromTensor(Tensor::ScalarInt64(0))}, {"x", xv}}});
}

}  // namespace
}  // namespace kiln
