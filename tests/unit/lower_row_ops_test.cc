// lower_row_ops: a LayerNormalization or Softmax next to a fusable op becomes
// float32 primitives that compute what the op's reference computes (to float32
// reassociation), and then one row kernel with that neighbour; others stay.
#include "passes/lower_row_ops.h"

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

TEST(LowerRowOps, ResidualNormLowersToFloatPrimitives) {
  // The oracle: the LayerNormalization reference kernel on the original graph.
  auto m = testing_build::RunPassAndCompare(*ResidualNorm(DataType::kFloat, 17), RunLowerRowOps, 3, 1e-5);
  EXPECT_EQ(CountOps(*m, "LayerNormalization"), 0);
  EXPECT_EQ(CountOps(*m, "ReduceMean"), 2);
  EXPECT_EQ(CountOps(*m, "Sqrt"), 1);
  EXPECT_EQ(m->graph->outputs[0]->name(), "ln");  // the output keeps its name
  EXPECT_EQ(m->graph->outputs[0]->producer()->op_type, "Add");  // + beta, last
}

TEST(LowerRowOps, Opset18ReadsAxesFromAnInputAndNoBiasEndsInMul) {
  auto m = testing_build::RunPassAndCompare(*ResidualNorm(DataType::kFloat, 18, false), RunLowerRowOps, 2, 1e-5);
  EXPECT_EQ(CountOps(*m, "LayerNormalization"), 0);
  for (const Node* n : m->graph->nodes())
    if (n->op_type == "ReduceMean") {
      EXPECT_EQ(n->num_inputs(), 2u);
    }
  EXPECT_EQ(m->graph->outputs[0]->producer()->op_type, "Mul");
}

TEST(LowerRowOps, Float16NormComputesInFloat32) {
  // Casts in and out, scale and bias as float32 copies; statistics in float32,
  // so the result is the op's (which keeps float32 statistics) to one FP16 step.
  auto m = testing_build::RunPassAndCompare(*ResidualNorm(DataType::kFloat16, 17), RunLowerRowOps, 2, 2e-3);
  EXPECT_EQ(CountOps(*m, "LayerNormalization"), 0);
  EXPECT_EQ(CountOps(*m, "Cast"), 2);
  for (const Node* n : m->graph->nodes())
    if (n->op_type == "ReduceMean") {
      EXPECT_EQ(n->output(0)->dtype(), DataType::kFloat);
    }
  EXPECT_EQ(m->graph->outputs[0]->dtype(), DataType::kFloat16);
}

TEST(LowerRowOps, WithFusionTheResidualAndNormAreOneRowKernel) {
  auto lowered = testing_build::RunPassAndCompare(*ResidualNorm(DataType::kFloat16, 17), RunLowerRowOps, 2, 2e-3);
  auto fused = testing_build::RunPassAndCompare(*lowered, RunFusePointwise);
  EXPECT_EQ(fused->graph->num_nodes(), 1u);
  EXPECT_EQ(CountOps(*fused, "Pointwise"), 1);
}

TEST(LowerRowOps, Float64KeepsItsOwnPrecision) {
  auto m = testing_build::RunPassAndCompare(*ResidualNorm(DataType::kDouble, 17), RunLowerRowOps);
  EXPECT_EQ(CountOps(*m, "LayerNormalization"), 1);
}

TEST(LowerRowOps, NormWithoutAFusableNeighbourKeepsItsKernel) {
  Builder b;
  Value* x = b.Input("x", kSeq);
  b.Output(b.Op("LayerNormalization", "ln", {x, b.Const("gamma", {48}), b.Const("beta", {48})}));
  auto m = testing_build::RunPassAndCompare(*b.Done(), RunLowerRowOps);
  EXPECT_EQ(CountOps(*m, "LayerNormalization"), 1);
}

// A LayerNorm whose output is quantized to E4M3 (an FP8 build's Q/K/V and fc1 input) keeps its hand kernel:
// the quantization would join a row kernel, but the generated one measured 5x slower (lower_row_ops.cc).
TEST(LowerRowOps, QuantizeE4M3IsNoReasonToLower) {
  Builder b;
  Value* x = b.Input("x", kSeq);
  Value* y = b.Op("LayerNormalization", "ln", {x, b.Const("gamma", {48}), b.Const("beta", {48})});
  b.Output(y);
  b.Output(b.Op("QuantizeE4M3", "q", {y, b.Scalar("scale", 0.01)}, {}, "kiln"));
  auto m = testing_build::RunPassAndCompare(*b.Done(), RunLowerRowOps);
  EXPECT_EQ(CountOps(*m, "LayerNormalization"), 1);
}

TEST(LowerRowOps, UsedStatisticsOrAnotherAxisKeepTheOp) {
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
    auto after = testing_build::RunPassAndCompare(*m, RunLowerRowOps);
    EXPECT_EQ(CountOps(*after, "LayerNormalization"), 1) << "variant " << variant;
  }
}

// Softmax over the last axis after a bias Add (a relative-position bias).
std::unique_ptr<Model> BiasSoftmax(DataType dt, int64_t opset, const Shape& shape, int64_t axis) {
  Builder b(dt);
  b.Opset(opset);
  Value* x = b.Input("x", shape);
  Value* biased = b.Op("Add", "biased", {x, b.Const("bias", {shape[shape.rank() - 1].value()})});
  AttributeMap attrs;
  if (axis != 99) attrs["axis"] = Attribute::FromInt(axis);
  b.Output(b.Op("Softmax", "probs", {biased}, attrs));
  return b.Done();
}

TEST(LowerRowOps, BiasSoftmaxLowersAndFusesIntoOneRowKernel) {
  for (DataType dt : {DataType::kFloat, DataType::kFloat16}) {
    const double tol = dt == DataType::kFloat ? 1e-5 : 2e-3;
    auto m = testing_build::RunPassAndCompare(*BiasSoftmax(dt, 17, kSeq, -1), RunLowerRowOps, 2, tol);
    EXPECT_EQ(CountOps(*m, "Softmax"), 0);
    EXPECT_EQ(CountOps(*m, "ReduceMax"), 1);
    EXPECT_EQ(CountOps(*m, "ReduceSum"), 1);
    EXPECT_EQ(m->graph->outputs[0]->name(), "probs");
    EXPECT_EQ(m->graph->outputs[0]->dtype(), dt);
    auto fused = testing_build::RunPassAndCompare(*m, RunFusePointwise);
    EXPECT_EQ(fused->graph->num_nodes(), 1u);
  }
}

TEST(LowerRowOps, SoftmaxBeforeOpset13OnlyWhenItsAxisIsTheLast) {
  // Opset 11: the default axis 1 flattens [batch, 8, 48] from axis 1: not per last axis.
  auto kept = testing_build::RunPassAndCompare(*BiasSoftmax(DataType::kFloat, 11, kSeq, 99), RunLowerRowOps);
  EXPECT_EQ(CountOps(*kept, "Softmax"), 1);
  auto lowered =
      testing_build::RunPassAndCompare(*BiasSoftmax(DataType::kFloat, 11, kSeq, 2), RunLowerRowOps, 2, 1e-5);
  EXPECT_EQ(CountOps(*lowered, "Softmax"), 0);
  for (const Node* n : lowered->graph->nodes()) {
    if (n->op_type == "ReduceSum" || n->op_type == "ReduceMax") {
      EXPECT_EQ(n->num_inputs(), 1u) << n->op_type << ": axes is an attribute before opset 13";
    }
  }
  // A Softmax over another axis stays.
  auto other = testing_build::RunPassAndCompare(*BiasSoftmax(DataType::kFloat, 17, kSeq, 1), RunLowerRowOps);
  EXPECT_EQ(CountOps(*other, "Softmax"), 1);
}

}  // namespace
}  // namespace kiln
