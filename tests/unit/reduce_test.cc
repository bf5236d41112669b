// Reduce op family: reduction shapes with symbolic dims and unknown axes,
// empty-set identities, ArgMax ties, TopK order, CumSum flags, Softmax
// semantics per opset, quantization round trips and loss reductions.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "op_test_util.h"

namespace kiln {
namespace {

using testing::OneNode;
using testing::Values;

Dim Sym(const std::string& s) { return Dim::Symbol(s); }

Tensor Floats(std::vector<int64_t> dims, std::vector<float> v) {
  return Tensor::FromVector<float>(DataType::kFloat, std::move(dims), v);
}

TEST(ReduceInfer, AxesInputKeepsSymbols) {
  OneNode m("ReduceMean", 18);
  m.Input("x", DataType::kFloat, Shape({Sym("batch"), Sym("seq"), Dim(768)}))
      .Const("axes", Tensor::Int64s({-1}))
      .Output("y");
  ASSERT_TRUE(m.Infer().ok());
  EXPECT_EQ(m.OutType(0).ToString(), "float32[batch,seq,1]");
}

TEST(ReduceInfer, AxesAttributeBeforeOpset18) {
  OneNode m("ReduceMax", 13);
  m.Input("x", DataType::kFloat, Shape({Sym("batch"), Dim(3), Dim(4)})).Output("y");
  m.AttrInts("axes", {1}).AttrInt("keepdims", 0);
  ASSERT_TRUE(m.Infer().ok());
  EXPECT_EQ(m.OutType(0).ToString(), "float32[batch,4]");
}

TEST(ReduceInfer, UnknownAxesKeepRank) {
  OneNode m("ReduceSum", 13);
  m.Input("x", DataType::kFloat, Shape({Sym("batch"), Dim(1), Dim(4)}))
      .Input("axes", DataType::kInt64, Shape::Of({1}))
      .Output("y");
  ASSERT_TRUE(m.Infer().ok());
  EXPECT_EQ(m.OutType(0).ToString(), "float32[?,1,?]");
}

TEST(ReduceInfer, BadAxisIsAnError) {
  OneNode m("ReduceSum", 13);
  m.Input("x", DataType::kFloat, Shape::Of({2, 3})).Const("axes", Tensor::Int64s({2})).Output("y");
  Status s = m.Infer();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("(ReduceSum)"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("axis"), std::string::npos) << s.message();
}

TEST(ReduceSym, ProdOfShapeIsElementCount) {
  OneNode m("ReduceProd", 18);
  m.SymInput("s", {Sym("batch"), Dim(3), Dim(4)}).Output("n");
  m.AttrInt("keepdims", 0);
  ASSERT_TRUE(m.Infer().ok());
  EXPECT_EQ(m.OutType(0).ToString(), "int64[]");
  ASSERT_TRUE(m.Out(0).sym_data.has_value());
  EXPECT_EQ((*m.Out(0).sym_data)[0].ToString(), "batch*12");
}

TEST(ReduceRun, EmptySetIdentities) {
  auto run = [](const std::string& op) {
    OneNode m(op, 18);
    m.Input("x", DataType::kFloat, Shape::Of({2, 0, 4})).Const("axes", Tensor::Int64s({1})).Output("y");
    auto r = m.Run({Tensor(DataType::kFloat, {2, 0, 4})});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ((*r)[0].dims(), (std::vector<int64_t>{2, 1, 4}));
    return (*r)[0].data<float>()[0];
  };
  EXPECT_EQ(run("ReduceSum"), 0.0f);
  EXPECT_EQ(run("ReduceProd"), 1.0f);
  EXPECT_EQ(run("ReduceMax"), -std::numeric_limits<float>::infinity());
  EXPECT_EQ(run("ReduceMin"), std::numeric_limits<float>::infinity());
  EXPECT_EQ(run("ReduceLogSum"), -std::numeric_limits<float>::infinity());
  EXPECT_EQ(run("ReduceLogSumExp"), -std::numeric_limits<float>::infinity());
  EXPECT_EQ(run("ReduceL2"), 0.0f);
}

TEST(ReduceRun, NoopWithEmptyAxes) {
  OneNode m("ReduceSum", 13);
  m.Input("x", DataType::kFloat, Shape::Of({2})).Output("y");
  m.AttrInt("noop_with_empty_axes", 1);
  auto r = m.Run({Floats({2}, {1, 2})});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Values<float>((*r)[0]), (std::vector<float>{1, 2}));
}

TEST(ReduceRun, LogSumExpIsStable) {
  OneNode m("ReduceLogSumExp", 18);
  m.Input("x", DataType::kFloat, Shape::Of({2})).Output("y");
  auto r = m.Run({Floats({2}, {1000.0f, 1000.0f})});
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR((*r)[0].data<float>()[0], 1000.0f + std::log(2.0f), 1e-3);
}

TEST(ArgRun, SelectLastIndex) {
  OneNode m("ArgMax", 13);
  m.Input("x", DataType::kFloat, Shape::Of({4})).Output("y");
  m.AttrInt("select_last_index", 1).AttrInt("keepdims", 0);
  auto r = m.Run({Floats({4}, {1, 3, 3, 2})});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].rank(), 0);
  EXPECT_EQ((*r)[0].data<int64_t>()[0], 2);
}

TEST(TopKInfer, ConstantKAndSymbols) {
  OneNode m("TopK", 11);
  m.Input("x", DataType::kFloat, Shape({Sym("batch"), Dim(10)}))
      .Const("k", Tensor::Int64s({3}))
      .Output("v")
      .Output("i");
  ASSERT_TRUE(m.Infer().ok());
  EXPECT_EQ(m.OutType(0).ToString(), "float32[batch,3]");
  EXPECT_EQ(m.OutType(1).ToString(), "int64[batch,3]");
}

TEST(TopKRun, TiesKeepLowerIndexFirst) {
  OneNode m("TopK", 11);
  m.Input("x", DataType::kFloat, Shape::Of({5})).Const("k", Tensor::Int64s({3})).Output("v").Output("i");
  auto r = m.Run({Floats({5}, {1, 3, 2, 3, 2})});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Values<float>((*r)[0]), (std::vector<float>{3, 3, 2}));
  EXPECT_EQ(Values<int64_t>((*r)[1]), (std::vector<int64_t>{1, 3, 2}));

  OneNode s("TopK", 11);
  s.Input("x", DataType::kFloat, Shape::Of({5})).Const("k", Tensor::Int64s({2})).Output("v").Output("i");
  s.AttrInt("largest", 0);
  auto rs = s.Run({Floats({5}, {1, 3, 1, 3, 2})});
  ASSERT_TRUE(rs.ok());
  EXPECT_EQ(Values<int64_t>((*rs)[1]), (std::vector<int64_t>{0, 2}));
}

TEST(CumSumRun, ExclusiveReverse) {
  OneNode m("CumSum", 14);
  m.Input("x", DataType::kFloat, Shape::Of({4})).Const("axis", Tensor::ScalarInt64(0)).Output("y");
  m.AttrInt("exclusive", 1).AttrInt("reverse", 1);
  auto r = m.Run({Floats({4}, {1, 2, 3, 4})});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Values<float>((*r)[0]), (std::vector<float>{9, 7, 4, 0}));
}

TEST(SoftmaxRun, LegacyCoercesTo2D) {
  // Opset 11, axis 1 of [2, 2]: whole rows of 2; opset 13 axis 0: columns.
  OneNode a("Softmax", 11);
  a.Input("x", DataType::kFloat, Shape::Of({1, 2, 2})).Output("y");
  auto ra = a.Run({Floats({1, 2, 2}, {0, 0, 0, 0})});
  ASSERT_TRUE(ra.ok());
  EXPECT_FLOAT_EQ((*ra)[0].data<float>()[0], 0.25f);

  OneNode b("Softmax", 13);
  b.Input("x", DataType::kFloat, Shape::Of({1, 2, 2})).Output("y");
  b.AttrInt("axis", 1);
  auto rb = b.Run({Floats({1, 2, 2}, {0, 0, 0, 0})});
  ASSERT_TRUE(rb.ok());
  EXPECT_FLOAT_EQ((*rb)[0].data<float>()[0], 0.5f);
}

TEST(QuantRun, QuantizeDequantizeInt8PerAxis) {
  OneNode q("QuantizeLinear", 21);
  q.Input("x", DataType::kFloat, Shape::Of({2, 2}))
      .Const("s", Floats({2}, {0.5f, 2.0f}))
      .Const("z", Tensor::FromVector<int8_t>(DataType::kInt8, {2}, {0, 1}))
      .Output("y");
  q.AttrInt("axis", 0);
  ASSERT_TRUE(q.Infer().ok());
  EXPECT_EQ(q.OutType(0).dtype, DataType::kInt8);
  auto r = q.Run({Floats({2, 2}, {1.25f, 100.0f, 3.0f, -1000.0f})});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // 1.25/0.5 = 2.5 -> 2 (half to even); 200 saturates; 1.5 -> 2 (+1); -500 -> -128.
  EXPECT_EQ(Values<int8_t>((*r)[0]), (std::vector<int8_t>{2, 127, 3, -128}));

  OneNode d("DequantizeLinear", 21);
  d.Input("x", DataType::kInt8, Shape::Of({2, 2}))
      .Const("s", Floats({2}, {0.5f, 2.0f}))
      .Const("z", Tensor::FromVector<int8_t>(DataType::kInt8, {2}, {0, 1}))
      .Output("y");
  d.AttrInt("axis", 0);
  auto rd = d.Run({(*r)[0]});
  ASSERT_TRUE(rd.ok());
  EXPECT_EQ(Values<float>((*rd)[0]), (std::vector<float>{1.0f, 63.5f, 4.0f, -258.0f}));
}

TEST(QuantRun, BlockedScaleShapeIsChecked) {
  OneNode q("QuantizeLinear", 21);
  q.Input("x", DataType::kFloat, Shape::Of({2, 4}))
      .Const("s", Floats({2, 3}, {1, 1, 1, 1, 1, 1}))
      .Output("y");
  q.AttrInt("axis", 1).AttrInt("block_size", 2);
  auto r = q.Run({Floats({2, 4}, {0, 0, 0, 0, 0, 0, 0, 0})});
  EXPECT_FALSE(r.ok());
}

TEST(LossRun, MeanIgnoresIgnoredTargets) {
  OneNode m("NegativeLogLikelihoodLoss", 13);
  m.Input("x", DataType::kFloat, Shape::Of({3, 2}))
      .Input("t", DataType::kInt64, Shape::Of({3}))
      .Output("loss");
  m.AttrInt("ignore_index", 1);
  ASSERT_TRUE(m.Infer().ok());
  EXPECT_EQ(m.OutType(0).ToString(), "float32[]");
  auto r = m.Run({Floats({3, 2}, {-1, -2, -3, -4, -5, -6}),
                  Tensor::FromVector<int64_t>(DataType::kInt64, {3}, {0, 1, 0})});
  ASSERT_TRUE(r.ok());
  EXPECT_FLOAT_EQ((*r)[0].data<float>()[0], 3.0f);  // (1 + 5) / 2
}

TEST(LossRun, TargetOutOfRangeIsAnError) {
  OneNode m("SoftmaxCrossEntropyLoss", 13);
  m.Input("x", DataType::kFloat, Shape::Of({1, 2}))
      .Input("t", DataType::kInt64, Shape::Of({1}))
      .Output("loss");
  auto r = m.Run({Floats({1, 2}, {0, 0}), Tensor::FromVector<int64_t>(DataType::kInt64, {1}, {5})});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("(SoftmaxCrossEntropyLoss)"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("5"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace kiln
