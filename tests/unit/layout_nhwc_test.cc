// Tests for the channels-last pass (src/passes/layout_nhwc.h) and its ops
// (src/ops/kiln_layout.cc): which nodes move to NHWC, where Transposes stay,
// and that the CPU reference computes bit for bit what the NCHW model does.
#include "passes/layout_nhwc.h"

#include <gtest/gtest.h>

#include "graph_builder.h"
#include "passes/fuse_gpu.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

const Shape kImage({Dim::Symbol("batch"), 4, 8, 8});

AttributeMap Pads1() { return {{"pads", Attribute::FromInts({1, 1, 1, 1})}}; }

// conv → relu → maxpool → conv + residual → mul(const) → sigmoid → global pool → flatten,
// with the residual sum also a graph output.
std::unique_ptr<Model> Block(DataType dt) {
  GraphBuilder b(dt);
  Value* x = b.Input("x", kImage);
  Value* c1 = b.Op("Conv", "conv1", {x, b.Const("w1", {8, 4, 3, 3}), b.Const("b1", {8})}, Pads1());
  Value* r1 = b.Op("Relu", "relu1", {c1});
  Value* p = b.Op("MaxPool", "pool", {r1},
                  {{"kernel_shape", Attribute::FromInts({3, 3})}, {"strides", Attribute::FromInts({2, 2})},
                   {"pads", Attribute::FromInts({1, 1, 1, 1})}});
  Value* c2 = b.Op("Conv", "conv2", {p, b.Const("w2", {8, 8, 3, 3})}, Pads1());
  Value* sum = b.Op("Add", "add", {c2, p});
  Value* scaled = b.Op("Mul", "mul", {sum, b.Const("scale", {8, 1, 1})});
  Value* s = b.Op("Sigmoid", "sigmoid", {scaled});
  Value* g = b.Op("GlobalAveragePool", "gap", {s});
  b.Output(b.Op("Flatten", "flatten", {g}));
  b.Output(sum);
  return b.Done();
}

TEST(LayoutNhwc, ConvPoolElementwiseBlock) {
  auto m = Block(DataType::kFloat);
  auto f = RunPassAndCompare(*m, RunChannelsLast);
  EXPECT_EQ(CountOps(*f, "FusedConvNhwc"), 2);
  EXPECT_EQ(CountOps(*f, "PoolNhwc"), 2);
  EXPECT_EQ(CountOps(*f, "Conv"), 0);
  EXPECT_EQ(CountOps(*f, "MaxPool"), 0);
  // x → NHWC once; back to NCHW only for the graph output `add` and for Flatten.
  EXPECT_EQ(CountOps(*f, "Transpose"), 3);
  EXPECT_EQ(f->graph->outputs[0]->name(), "flatten");
  EXPECT_EQ(f->graph->outputs[1]->name(), "add");
  EXPECT_EQ(f->graph->outputs[1]->shape().ToString(), "[batch,8,4,4]");
  // Weights were permuted to [K,R,S,C] once.
  for (const Node* n : f->graph->nodes())
    if (n->op_type == "FusedConvNhwc") {
      EXPECT_EQ(n->input(1)->shape().ToString(), n->name == "conv1" ? "[8,3,3,4]" : "[8,3,3,8]");
      EXPECT_EQ(n->output(0)->shape().rank(), 4);
    }
}

TEST(LayoutNhwc, Float16BitExact) {
  auto m = Block(DataType::kFloat16);
  RunPassAndCompare(*m, RunChannelsLast);
}

TEST(LayoutNhwc, FusedConvWithResidualAndGroups) {
  // Depthwise FusedConv (group 4) whose residual Z comes from the NCHW input.
  GraphBuilder b;
  Value* x = b.Input("x", kImage);
  AttributeMap attrs = Pads1();
  attrs["group"] = Attribute::FromInt(4);
  attrs["activation"] = Attribute::FromString("Relu");
  Value* y = b.Op("FusedConv", "dw", {x, b.Const("w", {4, 1, 3, 3}), b.Const("b", {4}), x}, attrs, "kiln");
  b.Output(b.Op("Relu", "relu", {y}));
  auto m = b.Done();
  auto f = RunPassAndCompare(*m, RunChannelsLast);
  EXPECT_EQ(CountOps(*f, "FusedConvNhwc"), 1);
  EXPECT_EQ(CountOps(*f, "Transpose"), 2);  // x (shared by X and Z) in, relu out
}

TEST(LayoutNhwc, LeavesOtherConvsAlone) {
  // 1-D conv and a conv with non-constant weights stay NCHW; so does an
  // elementwise op with no NHWC input, and a pool fed by an NCHW value.
  GraphBuilder b;
  Value* x1 = b.Input("x1", Shape({Dim::Symbol("batch"), 4, 9}));
  b.Output(b.Op("Conv", "conv1d", {x1, b.Const("w1d", {2, 4, 3})}));
  Value* x = b.Input("x", kImage);
  Value* w = b.Input("w", Shape({2, 4, 1, 1}));
  b.Output(b.Op("Conv", "dynamic_w", {x, w}));
  Value* r = b.Op("Relu", "relu", {x});
  b.Output(b.Op("MaxPool", "pool", {r}, {{"kernel_shape", Attribute::FromInts({2, 2})}}));
  auto m = b.Done();
  auto f = RunPassAndCompare(*m, RunChannelsLast);
  EXPECT_EQ(CountOps(*f, "FusedConvNhwc"), 0);
  EXPECT_EQ(CountOps(*f, "Transpose"), 0);
  EXPECT_FALSE(f->opsets.count("kiln"));
}

TEST(LayoutNhwc, BroadcastFromLowerRankStaysNchw) {
  // Add of a [8] non-constant vector broadcasts along W in NCHW: not rewritten.
  GraphBuilder b;
  Value* x = b.Input("x", kImage);
  Value* v = b.Input("v", Shape({8}));
  Value* c = b.Op("Conv", "conv", {x, b.Const("w", {4, 4, 1, 1})});
  b.Output(b.Op("Add", "add", {c, v}));
  auto m = b.Done();
  auto f = RunPassAndCompare(*m, RunChannelsLast);
  EXPECT_EQ(CountOps(*f, "FusedConvNhwc"), 1);
  EXPECT_EQ(CountOps(*f, "Add"), 1);
  EXPECT_EQ(CountOps(*f, "Transpose"), 2);
}

TEST(LayoutNhwc, BadPoolAttributeIsAClearError) {
  auto m = std::make_unique<Model>();
  m->opsets[""] = 17;
  m->opsets["kiln"] = 1;
  m->graph = std::make_shared<Graph>();
  Value* x = m->graph->AddValue("x");
  x->type = TypeInfo::Tensor(DataType::kFloat, Shape({1, 4, 4, 3}));
  m->graph->inputs.push_back(x);
  Node* n = m->graph->AddNode("PoolNhwc", "p", "kiln");
  n->attrs["pool"] = Attribute::FromString("LpPool");
  n->AddInput(x);
  n->AddOutput(m->graph->AddValue("y"));
  m->graph->outputs.push_back(n->output(0));
  Status s = InferShapes(*m);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("LpPool"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("'p'"), std::string::npos) << s.ToString();
}

// The GPU build order on the exported ResNet-50: simplifier, fuse_gpu, then
// layout: every conv and both pools go NHWC; two Transposes remain (input,
// and before Flatten).
TEST(LayoutNhwc, ResNet50Zoo) {
  std::unique_ptr<Model> m = testing_build::SimplifiedZooModel("resnet50");
  if (!m) return;  // the fixture is missing: a failure is recorded
  PassContext ctx;
  ASSERT_TRUE(RunFuseForGpu(*m, ctx).ok());
  auto f = RunPassAndCompare(*m, RunChannelsLast, 1);
  EXPECT_EQ(CountOps(*f, "FusedConvNhwc"), 53);
  EXPECT_EQ(CountOps(*f, "PoolNhwc"), 2);
  EXPECT_EQ(CountOps(*f, "Transpose"), 2);
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// The GPU op harness's form: every input a graph input or initializer of fixed shape.
TEST(LayoutNhwc, FixedShapeOpInfers) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({2, 9, 11, 8}));
  Value* z = b.Input("z", Shape({2, 9, 11, 16}));
  AttributeMap a = {{"activation", Attribute::FromString("Relu")}, {"pads", Attribute::FromInts({1, 1, 1, 1})}};
  b.Output(b.Op("FusedConvNhwc", "c", {x, b.Const("w", {16, 3, 3, 8}), b.Const("b", {16}), z}, a, "kiln"));
  auto m = b.Done();
  EXPECT_EQ(m->graph->outputs[0]->shape().ToString(), "[2,9,11,16]");
}

}  // namespace
}  // namespace kiln
