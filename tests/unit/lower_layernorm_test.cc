// lower_layernorm: a LayerNormalization next to a fusable op becomes float32
// primitives that compute what the op's reference computes (to float32
// reassociation), and then one row kernel with that neighbour; other norms stay.
#include "passes/lower_layernorm.h"

#include <gtest/gtest.h>

#include "graph_builder.h"
#include "passes/fuse_pointwise.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using Builder = testing_build::GraphBuilder;

const Shape kSeq({Dim::Symbol("batch"), 8, 48});

// Residual Add → LayerNormalization: the Add is fusable, so the norm lowers.
std::unique_ptr<Model> ResidualNorm(DataType dt, int64_t opset, bool bias = true) {
  Builder b(dt);
  b.Opset(opset);
  Value* x = b.Input("x", kSeq);
  Value* r = b.Input("r", kSeq);
  Value* h = b.Op("Add", "h", {x, r});
  std::vector<Value*> in = {h, b.Const("gamma", {48})};
  if (bias) in.push_back(b.Const("beta", {48}));
  b.Output(b.Op("LayerNormalization", "ln", in, {{"epsilon", Attribute::FromFloat(1e-3f)}}));
  return b.Done();
}

TEST(LowerLayerNorm, ResidualNormLowersToFloatPrimitives) {
  // The oracle: the LayerNormalization reference kernel on the original graph.
  auto m = testing_build::RunPassAndCompare(*ResidualNorm(DataType::kFloat, 17), RunLowerLayerNorm, 3, 1e-5);
  EXPECT_EQ(CountOps(*m, "LayerNormalization"), 0);
  EXPECT_EQ(CountOps(*m, "ReduceMean"), 2);
  EXPECT_EQ(CountOps(*m, "Sqrt"), 1);
  EXPECT_EQ(m->graph->outputs[0]->name(), "ln");  // the output keeps its name
  EXPECT_EQ(m->graph->outputs[0]->producer()->op_type, "Add");  // + beta, last
}

TEST(LowerLayerNorm, Opset18ReadsAxesFromAnInputAndNoBiasEndsInMul) {
  auto m = testing_build::RunPassAndCompare(*ResidualNorm(DataType::kFloat, 18, false), RunLowerLayerNorm, 2, 1e-5);
  EXPECT_EQ(CountOps(*m, "LayerNormalization"), 0);
  for (const Node* n : m->graph->nodes())
    if (n->op_type == "ReduceMean") {
      EXPECT_EQ(n->num_inputs(), 2u);
    }
  EXPECT_EQ(m->graph->outputs[0]->producer()->op_type, "Mul");
}

TEST(LowerLayerNorm, Float16NormComputesInFloat32) {
  // Casts in and out, scale and bias as float32 copies; statistics in float32,
  // so the result is the op's (which keeps float32 statistics) to one FP16 step.
  auto m = testing_build::RunPassAndCompare(*ResidualNorm(DataType::kFloat16, 17), RunLowerLayerNorm, 2, 2e-3);
  EXPECT_EQ(CountOps(*m, "LayerNormalization"), 0);
  EXPECT_EQ(CountOps(*m, "Cast"), 2);
  for (const Node* n : m->graph->nodes())
    if (n->op_type == "ReduceMean") {
      EXPECT_EQ(n->output(0)->dtype(), DataType::kFloat);
    }
  EXPECT_EQ(m->graph->outputs[0]->dtype(), DataType::kFloat16);
}

TEST(LowerLayerNorm, WithFusionTheResidualAndNormAreOneRowKernel) {
  auto lowered = testing_build::RunPassAndCompare(*ResidualNorm(DataType::kFloat16, 17), RunLowerLayerNorm, 2, 2e-3);
  auto fused = testing_build::RunPassAndCompare(*lowered, RunFusePointwise);
  EXPECT_EQ(fused->graph->num_nodes(), 1u);
  EXPECT_EQ(CountOps(*fused, "Pointwise"), 1);
}

TEST(LowerLayerNorm, NormWithoutAFusableNeighbourKeepsItsKernel) {
  Builder b;
  Value* x = b.Input("x", kSeq);
  b.Output(b.Op("LayerNormalization", "ln", {x, b.Const("gamma", {48}), b.Const("beta", {48})}));
  auto m = testing_build::RunPassAndCompare(*b.Done(), RunLowerLayerNorm);
  EXPECT_EQ(CountOps(*m, "LayerNormalization"), 1);
}

TEST(LowerLayerNorm, UsedStatisticsOrAnotherAxisKeepTheOp) {
  for (int variant = 0; variant < 2; ++variant) {
    Builder b;
    Value* h = b.Op("Relu", "h", {b.Input("x", kSeq)});
    AttributeMap attrs;
    if (variant == 1) attrs["axis"] = Attribute::FromInt(1);  // normalised over the last two axes
    b.Output(b.Op("LayerNormalization", "ln", {h, b.Const("gamma", variant == 0 ? std::vector<int64_t>{48}
                                                                                 : std::vector<int64_t>{8, 48})},
                  attrs));
    auto m = b.Done();
    if (variant == 0) {  // the Mean output is a graph output
      Value* mean = m->graph->AddValue("mean");
      m->graph->outputs[0]->producer()->AddOutput(mean);
      m->graph->outputs.push_back(mean);
      ASSERT_TRUE(InferShapes(*m).ok());
    }
    auto after = testing_build::RunPassAndCompare(*m, RunLowerLayerNorm);
    EXPECT_EQ(CountOps(*after, "LayerNormalization"), 1) << "variant " << variant;
  }
}

}  // namespace
}  // namespace kiln
