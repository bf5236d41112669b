// Binary op family: symbolic broadcast inference, symbolic shape-value
// propagation, and CPU reference edge cases (integer division and modulo,
// shifts, pow with mixed types, NaN in Max/Min, strings in Equal, Where).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "op_test_util.h"

namespace kiln {
namespace {

using testing::OneNode;
using testing::Values;

Dim Sym(const std::string& s) { return Dim::Symbol(s); }

TEST(BinaryInfer, SymbolicBroadcast) {
  OneNode m("Add");
  m.Input("a", DataType::kFloat, Shape({Sym("batch"), Dim(1), Dim(4)}))
      .Input("b", DataType::kFloat, Shape({Dim(3), Dim(1)}))
      .Output("y");
  ASSERT_TRUE(m.Infer().ok());
  EXPECT_EQ(m.OutType(0).ToString(), "float32[batch,3,4]");
}

TEST(BinaryInfer, MismatchIsAnError) {
  OneNode m("Mul");
  m.Input("a", DataType::kFloat, Shape::Of({2, 3})).Input("b", DataType::kFloat, Shape::Of({4})).Output("y");
  Status s = m.Infer();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("(Mul)"), std::string::npos) << s.message();
}

TEST(BinaryInfer, DtypeMismatchIsAnError) {
  OneNode m("Add");
  m.Input("a", DataType::kFloat, Shape::Of({2})).Input("b", DataType::kInt64, Shape::Of({2})).Output("y");
  Status s = m.Infer();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("(Add)"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("int64"), std::string::npos) << s.message();
}

TEST(BinaryInfer, CompareGivesBool) {
  OneNode m("Less");
  m.Input("a", DataType::kInt32, Shape({Sym("n")})).Input("b", DataType::kInt32, Shape::Scalar()).Output("y");
  ASSERT_TRUE(m.Infer().ok());
  EXPECT_EQ(m.OutType(0).ToString(), "bool[n]");
}

TEST(BinaryInfer, WhereBroadcastsThree) {
  OneNode m("Where");
  m.Input("c", DataType::kBool, Shape({Sym("b"), Dim(1)}))
      .Input("x", DataType::kFloat, Shape::Of({5}))
      .Input("y", DataType::kFloat, Shape::Scalar())
      .Output("z");
  ASSERT_TRUE(m.Infer().ok());
  EXPECT_EQ(m.OutType(0).ToString(), "float32[b,5]");
}

TEST(BinaryInfer, PowKeepsBaseType) {
  OneNode m("Pow", 15);
  m.Input("a", DataType::kInt32, Shape::Of({3})).Input("b", DataType::kFloat, Shape::Of({3})).Output("y");
  ASSERT_TRUE(m.Infer().ok());
  EXPECT_EQ(m.OutType(0).dtype, DataType::kInt32);
}

TEST(BinarySym, MulAndDivOfShapeValues) {
  OneNode m("Mul");
  m.SymInput("s", {Sym("batch"), Dim(8)}).Const("k", Tensor::Int64s({2})).Output("y");
  ASSERT_TRUE(m.Infer().ok());
  ASSERT_TRUE(m.Out(0).sym_data.has_value());
  EXPECT_EQ((*m.Out(0).sym_data)[0].ToString(), "batch*2");
  EXPECT_EQ((*m.Out(0).sym_data)[1].value(), 16);

  OneNode d("Div");
  d.SymInput("s", {Sym("seq"), Dim(9)}).Const("k", Tensor::ScalarInt64(3)).Output("y");
  ASSERT_TRUE(d.Infer().ok());
  ASSERT_TRUE(d.Out(0).sym_data.has_value());
  EXPECT_EQ((*d.Out(0).sym_data)[1].value(), 3);
  EXPECT_TRUE((*d.Out(0).sym_data)[0].symbolic());
}

TEST(BinarySym, WhereEqualMinusOne) {
  // Where(Equal(shape, -1), 1, shape): a dim is never -1, so the shape flows through.
  OneNode e("Equal");
  e.SymInput("s", {Sym("batch"), Dim(4)}).Const("m1", Tensor::Int64s({-1, -1})).Output("y");
  ASSERT_TRUE(e.Infer().ok());
  ASSERT_TRUE(e.Out(0).sym_data.has_value());
  EXPECT_EQ((*e.Out(0).sym_data)[0].value(), 0);
  EXPECT_EQ((*e.Out(0).sym_data)[1].value(), 0);
}

TEST(BinaryRun, IntegerDivTruncates) {
  OneNode m("Div", 14);
  m.Input("a", DataType::kInt32, Shape::Of({4})).Input("b", DataType::kInt32, Shape::Of({4})).Output("y");
  auto r = m.Run({Tensor::FromVector<int32_t>(DataType::kInt32, {4}, {7, -7, 7, 5}),
                  Tensor::FromVector<int32_t>(DataType::kInt32, {4}, {2, 2, -2, 0})});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Values<int32_t>((*r)[0]), (std::vector<int32_t>{3, -3, -3, 0}));
}

TEST(BinaryRun, ModSignRules) {
  auto run = [](int64_t fmod) {
    OneNode m("Mod", 13);
    m.Input("a", DataType::kInt32, Shape::Of({4})).Input("b", DataType::kInt32, Shape::Of({4})).Output("y");
    m.AttrInt("fmod", fmod);
    auto r = m.Run({Tensor::FromVector<int32_t>(DataType::kInt32, {4}, {-4, 7, 5, -5}),
                    Tensor::FromVector<int32_t>(DataType::kInt32, {4}, {3, -3, 0, -3})});
    EXPECT_TRUE(r.ok());
    return Values<int32_t>((*r)[0]);
  };
  EXPECT_EQ(run(0), (std::vector<int32_t>{2, -2, 0, -2}));
  EXPECT_EQ(run(1), (std::vector<int32_t>{-1, 1, 0, -2}));
}

TEST(BinaryRun, FloatModFollowsDivisorSign) {
  OneNode m("Mod", 13);
  m.Input("a", DataType::kFloat, Shape::Of({3})).Input("b", DataType::kFloat, Shape::Of({3})).Output("y");
  auto r = m.Run({Tensor::FromVector<float>(DataType::kFloat, {3}, {-4.5f, 0.0f, -1.0f}),
                  Tensor::FromVector<float>(DataType::kFloat, {3}, {2.0f, -3.0f, INFINITY})});
  ASSERT_TRUE(r.ok());
  std::vector<float> v = Values<float>((*r)[0]);
  EXPECT_FLOAT_EQ(v[0], 1.5f);
  EXPECT_TRUE(v[1] == 0.0f && std::signbit(v[1]));
  EXPECT_TRUE(std::isinf(v[2]) && v[2] > 0);
}

TEST(BinaryRun, BitShiftSignedAndOutOfRange) {
  OneNode m("BitShift", 28);
  m.Input("a", DataType::kInt8, Shape::Of({4})).Input("b", DataType::kInt8, Shape::Of({4})).Output("y");
  m.AttrString("direction", "RIGHT");
  auto r = m.Run({Tensor::FromVector<int8_t>(DataType::kInt8, {4}, {-8, -8, 8, -1}),
                  Tensor::FromVector<int8_t>(DataType::kInt8, {4}, {1, 9, 9, -1})});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Values<int8_t>((*r)[0]), (std::vector<int8_t>{-4, -1, 0, -1}));
}

TEST(BinaryRun, PowMixedTypes) {
  OneNode m("Pow", 15);
  m.Input("a", DataType::kInt64, Shape::Of({3})).Input("b", DataType::kFloat, Shape::Of({3})).Output("y");
  auto r = m.Run({Tensor::FromVector<int64_t>(DataType::kInt64, {3}, {2, 9, 3}),
                  Tensor::FromVector<float>(DataType::kFloat, {3}, {3.0f, 0.5f, -1.0f})});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Values<int64_t>((*r)[0]), (std::vector<int64_t>{8, 3, 0}));
}

TEST(BinaryRun, MaxPropagatesNanAndBroadcasts) {
  OneNode m("Max", 13);
  m.Input("a", DataType::kFloat, Shape::Of({2, 1}))
      .Input("b", DataType::kFloat, Shape::Of({2}))
      .Input("c", DataType::kFloat, Shape::Scalar())
      .Output("y");
  auto r = m.Run({Tensor::FromVector<float>(DataType::kFloat, {2, 1}, {1.0f, NAN}),
                  Tensor::FromVector<float>(DataType::kFloat, {2}, {0.0f, 5.0f}),
                  Tensor::FromVector<float>(DataType::kFloat, {}, {2.0f})});
  ASSERT_TRUE(r.ok());
  std::vector<float> v = Values<float>((*r)[0]);
  ASSERT_EQ(v.size(), 4u);
  EXPECT_EQ(v[0], 2.0f);
  EXPECT_EQ(v[1], 5.0f);
  EXPECT_TRUE(std::isnan(v[2]) && std::isnan(v[3]));
}

TEST(BinaryRun, EqualStrings) {
  OneNode m("Equal", 19);
  m.Input("a", DataType::kString, Shape::Of({3})).Input("b", DataType::kString, Shape::Of({1})).Output("y");
  Tensor a(DataType::kString, {3});
  a.mutable_strings() = {"x", "y", "x"};
  Tensor b(DataType::kString, {1});
  b.mutable_strings() = {"x"};
  auto r = m.Run({a, b});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Values<bool>((*r)[0]), (std::vector<bool>{true, false, true}));
}

TEST(BinaryRun, WhereSelects) {
  OneNode m("Where", 16);
  m.Input("c", DataType::kBool, Shape::Of({2, 1}))
      .Input("x", DataType::kInt64, Shape::Of({2}))
      .Input("y", DataType::kInt64, Shape::Scalar())
      .Output("z");
  auto r = m.Run({Tensor::FromVector<bool>(DataType::kBool, {2, 1}, {true, false}),
                  Tensor::FromVector<int64_t>(DataType::kInt64, {2}, {1, 2}), Tensor::ScalarInt64(9)});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Values<int64_t>((*r)[0]), (std::vector<int64_t>{1, 2, 9, 9}));
}

TEST(BinaryRun, AddHalfRoundsPerElement) {
  OneNode m("Add", 14);
  m.Input("a", DataType::kFloat16, Shape::Of({1})).Input("b", DataType::kFloat16, Shape::Of({1})).Output("y");
  auto r = m.Run({Tensor::FromVector<Half>(DataType::kFloat16, {1}, {Half(1.0f)}),
                  Tensor::FromVector<Half>(DataType::kFloat16, {1}, {Half(0.0004f)})});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(static_cast<float>((*r)[0].data<Half>()[0]), 1.0f);
}

TEST(BinaryRun, BroadcastErrorNamesNode) {
  OneNode m("Sub", 14);
  m.Input("a", DataType::kFloat, Shape({Sym("n")}))
      .Input("b", DataType::kFloat, Shape({Sym("m")}))
      .Output("y");
  auto r = m.Run({Tensor(DataType::kFloat, {2}), Tensor(DataType::kFloat, {3})});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("(Sub)"), std::string::npos);
}

}  // namespace
}  // namespace kiln
