// The whole-model fallback (build/mixed_precision.h) ranks layers by their
// effect on the output, not by their isolated error: a layer whose error the
// network damps stays quantized, the one whose error reaches the output stays
// float. The "quantizer" here scales a layer's weights by 1.3, an error the
// test controls; the oracle is the FP32 model on the CPU reference.
#include "build/mixed_precision.h"

#include <gtest/gtest.h>

#include "graph_builder.h"
#include "ir/clone.h"

namespace kiln {
namespace {

using testing_build::GraphBuilder;

// y = MatMul(x, Wa) · 1e-3 + MatMul(x, Wb): branch a barely reaches y.
std::unique_ptr<Model> TwoBranches() {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({4, 8}));
  Value* a = b.Op("Mul", "damped", {b.Op("MatMul", "a", {x, b.Const("wa", {8, 8})}), b.Scalar("tiny", 1e-3)});
  b.Output(b.Op("Add", "y", {a, b.Op("MatMul", "b", {x, b.Const("wb", {8, 8})})}));
  return b.Done();
}

// The model with the weights of every MatMul not in `keep` scaled by 1.3.
std::unique_ptr<Model> Perturbed(const Model& m, const std::set<std::string>& keep) {
  std::unique_ptr<Model> q = CloneModel(m);
  for (Node* n : q->graph->nodes()) {
    if (n->op_type != "MatMul" || keep.count(n->name)) continue;
    Tensor w = n->input(1)->data->Clone();
    for (int64_t i = 0; i < w.numel(); ++i) w.mutable_data<float>()[i] *= 1.3f;
    n->input(1)->data = w;
  }
  return q;
}

TEST(WholeModelFallback, RanksLayersByTheirEffectOnTheOutput) {
  auto m = TwoBranches();
  std::vector<Node*> candidates;
  for (Node* n : m->graph->nodes())
    if (n->op_type == "MatMul") candidates.push_back(n);
  ASSERT_EQ(candidates.size(), 2u);
  // Isolated errors say branch a is the worse layer.
  const std::map<std::string, double> isolated = {{"a", 0.3}, {"b", 0.2}};
  std::map<std::string, RtValue> feed = testing_build::RandomFeed(*m, 1);
  auto probe = MakeProbe(*m, feed);
  ASSERT_TRUE(probe.ok()) << probe.status().ToString();
  const std::vector<Probe> probes = {*probe};
  QuantizeExcept quantize = [&](const std::set<std::string>& keep) -> Expected<std::unique_ptr<Model>> {
    return Perturbed(*m, keep);
  };
  WholeModelCheck check{"INT8", "--int8-model-rel-l2", 0.01, " stays FP32: "};
  std::set<std::string> keep;
  std::map<std::string, std::string> verdict;
  std::vector<std::string> notes;
  ASSERT_TRUE(WholeModelFallback(candidates, isolated, probes, quantize, check, &keep, &verdict, &notes).ok());
  // b alone brings the error under 0.01 (a's 30% is damped 1000x): only b stays float.
  EXPECT_EQ(keep, (std::set<std::string>{"b"}));
  ASSERT_EQ(verdict.count("b"), 1u);
  EXPECT_NE(verdict["b"].find("largest effect on the output (alone "), std::string::npos) << verdict["b"];
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("1 of 2 INT8 layers stay float"), std::string::npos) << notes[0];
}

}  // namespace
}  // namespace kiln
