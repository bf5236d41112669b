// Shape inference driver (InferShapes): errors collected when tolerated,
// declared types filling what inference leaves open, and the precision that
// the cross-check against onnx.shape_inference (tests/models/
// test_shape_inference.py) asked for when an input's values are unknown.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "op_test_util.h"
#include "passes/shape_inference.h"  // IWYU pragma: keep

namespace kiln {
namespace {

using testing::OneNode;

// x -> Bogus -> Relu -> y: an unsupported op followed by a supported one.
std::unique_ptr<Model> BogusThenRelu() {
  auto m = std::make_unique<Model>();
  m->opsets[""] = 17;
  m->graph = std::make_shared<Graph>();
  Graph& g = *m->graph;
  Value* x = g.AddValue("x");
  x->type = TypeInfo::Tensor(DataType::kFloat, Shape({Dim::Symbol("batch"), Dim(4)}));
  g.inputs.push_back(x);
  Node* bogus = g.AddNode("Bogus", "bogus");
  bogus->AddInput(x);
  bogus->AddOutput(g.AddValue("t"));
  Node* relu = g.AddNode("Relu", "relu");
  relu->AddInput(bogus->output(0));
  relu->AddOutput(g.AddValue("y"));
  g.outputs.push_back(relu->output(0));
  return m;
}

TEST(ShapeInference, ErrorIsReturnedUnlessTolerated) {
  auto m = BogusThenRelu();
  Status s = InferShapes(*m);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("bogus"), std::string::npos) << s.message();
}

TEST(ShapeInference, ToleratedErrorsAreCollected) {
  auto m = BogusThenRelu();
  std::vector<std::string> errors;
  ShapeInferenceOptions opts;
  opts.tolerate_errors = true;
  opts.errors = &errors;
  ASSERT_TRUE(InferShapes(*m, opts).ok());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("Bogus"), std::string::npos) << errors[0];
  EXPECT_FALSE(m->graph->FindValue("y")->type.known());
}

TEST(ShapeInference, DeclaredTypeFillsUnknownDimsOnly) {
  // Expand to a shape whose values are unknown: [?, 3]; declared [5, 7] fills
  // the unknown dim only (inference wins where it knows).
  OneNode n("Expand", 13);
  n.Input("x", DataType::kFloat, Shape({Dim(1), Dim(3)}))
      .Input("shape", DataType::kInt64, Shape({Dim(2)}))
      .Output("y");
  const_cast<Value&>(n.Out(0)).type = TypeInfo::Tensor(DataType::kFloat, Shape({Dim(5), Dim(7)}));
  ASSERT_TRUE(n.Infer().ok());
  EXPECT_EQ(n.OutType(0).ToString(), "float32[5,3]");
}

TEST(ShapeInference, ExpandKeepsNonOneDimsWhenTargetUnknown) {
  OneNode n("Expand", 13);
  n.Input("x", DataType::kFloat, Shape({Dim(3), Dim(1)}))
      .Input("shape", DataType::kInt64, Shape({Dim(3)}))
      .Output("y");
  ASSERT_TRUE(n.Infer().ok());
  EXPECT_EQ(n.OutType(0).ToString(), "float32[?,3,?]");
}

TEST(ShapeInference, UnsqueezeWithUnknownAxesKnowsTheRank) {
  OneNode n("Unsqueeze", 13);
  n.Input("x", DataType::kFloat, Shape({Dim(3), Dim(4)}))
      .Input("axes", DataType::kInt64, Shape({Dim(2)}))
      .Output("y");
  ASSERT_TRUE(n.Infer().ok());
  EXPECT_EQ(n.OutType(0).ToString(), "float32[?,?,?,?]");
}

TEST(ShapeInference, DftWithUnknownAxisKeepsDimsWhenNotOnesided) {
  OneNode n("DFT", 20);
  n.Input("x", DataType::kFloat, Shape({Dim(1), Dim(10), Dim(10), Dim(1)}))
      .Omitted()
      .Input("axis", DataType::kInt64, Shape::Scalar())
      .Output("y");
  ASSERT_TRUE(n.Infer().ok());
  EXPECT_EQ(n.OutType(0).ToString(), "float32[1,10,10,2]");

  OneNode o("DFT", 20);
  o.Input("x", DataType::kFloat, Shape({Dim(1), Dim(10), Dim(10), Dim(1)}))
      .Omitted()
      .Input("axis", DataType::kInt64, Shape::Scalar())
      .AttrInt("onesided", 1)
      .Output("y");
  ASSERT_TRUE(o.Infer().ok());
  EXPECT_EQ(o.OutType(0).ToString(), "float32[?,?,?,2]");
}

}  // namespace
}  // namespace kiln
