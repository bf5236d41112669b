// Tests of the unary op family (src/ops/unary_*.cc): float8/float4 codecs,
// Cast (strings, sub-byte types), elementwise math, and a disabled-by-default
// walker over the ONNX node tests of the family's ops (run it with
// --gtest_also_run_disabled_tests; KILN_UNARY_FILTER=cast,resize narrows it).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "core/float8.h"
#include "onnx/import.h"
#include "ops/op_table.h"
#include "ops/unary_cast.h"
#include "ops/unary_util.h"
#include "passes/shape_inference.h"
#include "reference/executor.h"

namespace kiln {
namespace {

// ---- float8 / float4 codecs ----

TEST(Float8, E4M3FN) {
  EXPECT_EQ(FloatToFloat8E4M3FN(448.0f), 0x7e);
  EXPECT_EQ(FloatToFloat8E4M3FN(1e6f), 0x7e);              // saturates
  EXPECT_EQ(FloatToFloat8E4M3FN(1e6f, false), 0x7f);       // NaN
  EXPECT_EQ(FloatToFloat8E4M3FN(-INFINITY, false), 0xff);  // -NaN
  EXPECT_EQ(FloatToFloat8E4M3FN(-1e-7f), 0x80);            // -0
  EXPECT_EQ(FloatToFloat8E4M3FN(0.3f), 0x2a);
  EXPECT_EQ(FloatToFloat8E4M3FN(464.0f), 0x7e);         // tie -> even (448)
  EXPECT_EQ(FloatToFloat8E4M3FN(480.0f, false), 0x7f);  // rounds above max -> NaN
  EXPECT_FLOAT_EQ(Float8E4M3FNToFloat(0x7e), 448.0f);
  EXPECT_FLOAT_EQ(Float8E4M3FNToFloat(0x01), std::ldexp(1.0f, -9));
  EXPECT_TRUE(std::isnan(Float8E4M3FNToFloat(0xff)));
}

TEST(Float8, OtherFormats) {
  EXPECT_EQ(FloatToFloat8E4M3FNUZ(-1e-7f), 0x00);
  EXPECT_EQ(FloatToFloat8E4M3FNUZ(0.3f), 0x32);
  EXPECT_EQ(FloatToFloat8E4M3FNUZ(NAN), 0x80);
  EXPECT_FLOAT_EQ(Float8E4M3FNUZToFloat(0x7f), 240.0f);
  EXPECT_EQ(FloatToFloat8E5M2(INFINITY, false), 0x7c);
  EXPECT_EQ(FloatToFloat8E5M2(INFINITY), 0x7b);
  EXPECT_EQ(FloatToFloat8E5M2(NAN), 0x7e);
  EXPECT_EQ(FloatToFloat8E5M2(0.3f), 0x35);
  EXPECT_EQ(FloatToFloat8E5M2FNUZ(0.3f), 0x39);
  EXPECT_FLOAT_EQ(Float8E5M2FNUZToFloat(0x7f), 57344.0f);
  EXPECT_EQ(FloatToFloat4E2M1(0.25f), 0x0);  // tie -> even (0)
  EXPECT_EQ(FloatToFloat4E2M1(-3.5f), 0xe);  // -4
  EXPECT_EQ(FloatToFloat4E2M1(1e6f), 0x7);   // 6
  EXPECT_EQ(FloatToFloat4E2M1(NAN), 0x8);
  EXPECT_FLOAT_EQ(Float4E2M1ToFloat(0x1), 0.5f);
  EXPECT_EQ(FloatToFloat8E8M0(1e6f), 0x93);
  EXPECT_EQ(FloatToFloat8E8M0(0.124f), 0x7c);  // 2^-3, rounded up
  EXPECT_EQ(FloatToFloat8E8M0(0.25f), 0x7d);
  EXPECT_FLOAT_EQ(Float8E8M0ToFloat(127), 1.0f);
}

// ---- Cast ----

TEST(Cast, FloatToStringLikeNumpy) {
  EXPECT_EQ(FormatFloatLikeNumpy(1.0, DataType::kFloat), "1.0");
  EXPECT_EQ(FormatFloatLikeNumpy(0.1f, DataType::kFloat), "0.1");
  EXPECT_EQ(FormatFloatLikeNumpy(123456789.0f, DataType::kFloat), "1.2345679e+08");
  EXPECT_EQ(FormatFloatLikeNumpy(999999.0f, DataType::kFloat), "999999.0");
  EXPECT_EQ(FormatFloatLikeNumpy(1e-4f, DataType::kFloat), "1e-04");
  EXPECT_EQ(FormatFloatLikeNumpy(0.00011f, DataType::kFloat), "0.00011");
  EXPECT_EQ(FormatFloatLikeNumpy(1e16, DataType::kDouble), "1e+16");
  EXPECT_EQ(FormatFloatLikeNumpy(123456789.0, DataType::kDouble), "123456789.0");
  EXPECT_EQ(FormatFloatLikeNumpy(-INFINITY, DataType::kFloat), "-inf");
  EXPECT_EQ(FormatFloatLikeNumpy(-0.0, DataType::kFloat), "-0.0");
  EXPECT_EQ(FormatFloatLikeNumpy(1024.0, DataType::kFloat16), "1.024e+03");
}

TEST(Cast, StringRoundTrip) {
  Tensor s(DataType::kString, {4});
  s.mutable_strings() = {"1e-5", "+INF", "NaN", "-3.5"};
  auto f = CastTensor(s, DataType::kFloat);
  ASSERT_TRUE(f.ok());
  EXPECT_FLOAT_EQ(f->data<float>()[0], 1e-5f);
  EXPECT_TRUE(std::isinf(f->data<float>()[1]));
  EXPECT_TRUE(std::isnan(f->data<float>()[2]));
  auto i = CastTensor(s, DataType::kInt32);
  ASSERT_TRUE(i.ok());
  EXPECT_EQ(i->data<int32_t>()[3], -3);
  auto back = CastTensor(*f, DataType::kString);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->strings()[0], "1e-05");
  EXPECT_EQ(back->strings()[1], "inf");
  EXPECT_EQ(back->strings()[3], "-3.5");
}

// Sub-byte targets. The spec: fixed → fixed point wraps (discards the high
// bits); float → fixed point out of range is undefined. kiln truncates toward
// zero and wraps, as for int8, and as onnx's backend test data
// (test_cast_FLOAT_to_INT4 etc., written by ml_dtypes on numpy 1.x) expects.
TEST(Cast, SubByteFromFloatTruncatesAndWraps) {
  Tensor x = Tensor::FromVector<float>(DataType::kFloat, {6}, {-9.0f, 8.0f, 15.0f, 1.5f, -8.0f, -1.5f});
  auto i4 = CastTensor(x, DataType::kInt4);
  ASSERT_TRUE(i4.ok());
  EXPECT_EQ(std::vector<int8_t>(i4->data<int8_t>(), i4->data<int8_t>() + 6),
            (std::vector<int8_t>{7, -8, -1, 1, -8, -1}));
  auto u4 = CastTensor(x, DataType::kUInt4);
  ASSERT_TRUE(u4.ok());
  EXPECT_EQ(std::vector<uint8_t>(u4->data<uint8_t>(), u4->data<uint8_t>() + 6),
            (std::vector<uint8_t>{7, 8, 15, 1, 8, 15}));
  auto u2 = CastTensor(x, DataType::kUInt2);
  ASSERT_TRUE(u2.ok());
  EXPECT_EQ(u2->data<uint8_t>()[0], 3);
  EXPECT_EQ(u2->data<uint8_t>()[3], 1);
}

TEST(Cast, SubByteFromIntegerWraps) {
  Tensor x = Tensor::FromVector<int32_t>(DataType::kInt32, {4}, {-9, 8, 15, 200});
  auto i4 = CastTensor(x, DataType::kInt4);
  ASSERT_TRUE(i4.ok());
  EXPECT_EQ(std::vector<int8_t>(i4->data<int8_t>(), i4->data<int8_t>() + 4), (std::vector<int8_t>{7, -8, -1, -8}));
  auto u2 = CastTensor(x, DataType::kUInt2);
  ASSERT_TRUE(u2.ok());
  EXPECT_EQ(std::vector<uint8_t>(u2->data<uint8_t>(), u2->data<uint8_t>() + 4), (std::vector<uint8_t>{3, 0, 3, 0}));
}

// Builds a one-node graph and runs the op's CPU reference on `inputs`.
struct OneNode {
  Graph g;
  Node* node = nullptr;
  OneNode(const std::string& op, size_t n_in) {
    node = g.AddNode(op, "n");
    for (size_t i = 0; i < n_in; ++i) node->AddInput(g.AddValue("x" + std::to_string(i)));
    node->AddOutput(g.AddValue("y"));
  }
  void SetInt(const std::string& name, int64_t v) {
    Attribute a;
    a.type = Attribute::Type::kInt;
    a.i = v;
    node->attrs[name] = a;
  }
  Expected<Tensor> Run(const std::vector<Tensor>& inputs, int64_t opset = 21) {
    std::vector<RtValue> vals;
    for (const Tensor& t : inputs) vals.push_back(RtValue::FromTensor(t));
    std::vector<const RtValue*> ptrs;
    for (const RtValue& v : vals) ptrs.push_back(&v);
    RunContext ctx(*node, opset, ptrs);
    const OpInfo* op = FindOp("", node->op_type);
    if (!op) return NotFound(node->op_type);
    KILN_RETURN_IF_ERROR(op->run(ctx));
    return ctx.outputs()[0].tensor;
  }
};

TEST(Cast, ThroughOpTableWithSymbolicInference) {
  OneNode n("Cast", 1);
  n.SetInt("to", static_cast<int64_t>(DataType::kFloat16));
  n.node->input(0)->type = TypeInfo::Tensor(DataType::kFloat, Shape({Dim::Symbol("batch"), Dim(3)}));
  InferContext ictx(*n.node, 21);
  ASSERT_TRUE(FindOp("", "Cast")->infer(ictx).ok());
  EXPECT_EQ(n.node->output(0)->type.ToString(), "float16[batch,3]");
  auto y = n.Run({Tensor::FromVector<float>(DataType::kFloat, {2}, {0.1f, 65520.0f})});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(y->dtype(), DataType::kFloat16);
  EXPECT_EQ(y->data<uint16_t>()[0], FloatToHalfBits(0.1f));
  EXPECT_EQ(y->data<uint16_t>()[1], 0x7c00);  // overflow -> inf
}

// ---- elementwise ----

TEST(Unary, RoundHalfToEvenAndClip) {
  OneNode r("Round", 1);
  auto y = r.Run({Tensor::FromVector<float>(DataType::kFloat, {4}, {0.5f, 1.5f, -2.5f, 2.6f})});
  ASSERT_TRUE(y.ok());
  EXPECT_EQ(std::vector<float>(y->data<float>(), y->data<float>() + 4), (std::vector<float>{0, 2, -2, 3}));

  OneNode c("Clip", 3);
  auto z = c.Run({Tensor::FromVector<int8_t>(DataType::kInt8, {3}, {-100, 5, 100}),
                  Tensor::FromVector<int8_t>(DataType::kInt8, {}, {-3}),
                  Tensor::FromVector<int8_t>(DataType::kInt8, {}, {7})});
  ASSERT_TRUE(z.ok()) << z.status().ToString();
  EXPECT_EQ(z->data<int8_t>()[0], -3);
  EXPECT_EQ(z->data<int8_t>()[1], 5);
  EXPECT_EQ(z->data<int8_t>()[2], 7);
}

TEST(Unary, UnsupportedDtypeIsAnError) {
  OneNode n("Exp", 1);
  auto y = n.Run({Tensor::Int64s({1, 2})});
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("(Exp)"), std::string::npos) << y.status().message();
  EXPECT_NE(y.status().message().find("int64"), std::string::npos) << y.status().message();
}

// ---- Resize ----

// Linear half_pixel 7 -> 17: output 8 samples x = 8.5 * 7/17 - 0.5 = 3 exactly, which double
// arithmetic gives as 3 + 4e-16. Expected values are onnxruntime's (and exact rational
// interpolation's, to 3e-6); onnx's reference evaluator gives 4 (= in[2]) at index 8, and so did
// kiln, which moved one row of a pasted Mask R-CNN mask (a 30x30 mask resized to 22 rows, row 5).
TEST(Resize, LinearNeighboursComeFromTheSameFloorAsTheWeights) {
  OneNode n("Resize", 4);
  Attribute mode;
  mode.type = Attribute::Type::kString;
  mode.s = "linear";
  n.node->attrs["mode"] = mode;
  Tensor x = Tensor::FromVector<float>(DataType::kFloat, {1, 1, 1, 7}, {0, 1, 4, 9, 16, 25, 36});
  Tensor none = Tensor::FromVector<float>(DataType::kFloat, {0}, {});
  auto y = n.Run({x, none, none, Tensor::Int64s({1, 1, 1, 17})}, 17);
  ASSERT_TRUE(y.ok()) << y.status().message();
  const std::vector<float> ort = {0.0f,        0.11764705f, 0.52941179f, 0.94117641f, 2.05882359f,
                                  3.29411769f, 4.88235283f, 6.94117546f, 9.0f,        11.8823528f,
                                  14.7647047f, 18.1176453f, 21.8235302f, 25.6470604f, 30.1764717f,
                                  34.7058792f, 36.0f};
  ASSERT_EQ(y->numel(), 17);
  for (int i = 0; i < 17; ++i)
    EXPECT_NEAR(y->data<float>()[i], ort[static_cast<size_t>(i)], 1e-5) << "index " << i;

  // The same along H, and with nearest (floor): x = 3 + 4e-16 takes in[3], not in[2].
  OneNode h("Resize", 4);
  h.node->attrs["mode"] = mode;
  auto yh = h.Run({Tensor::FromVector<float>(DataType::kFloat, {1, 1, 7, 1}, {0, 1, 4, 9, 16, 25, 36}), none,
                   none, Tensor::Int64s({1, 1, 17, 1})},
                  17);
  ASSERT_TRUE(yh.ok()) << yh.status().message();
  EXPECT_NEAR(yh->data<float>()[8], 9.0f, 1e-5);
  OneNode nearest("Resize", 4);
  Attribute floor_mode;
  floor_mode.type = Attribute::Type::kString;
  floor_mode.s = "floor";
  nearest.node->attrs["nearest_mode"] = floor_mode;
  auto yn = nearest.Run({x, none, none, Tensor::Int64s({1, 1, 1, 17})}, 17);
  ASSERT_TRUE(yn.ok()) << yn.status().message();
  EXPECT_EQ(yn->data<float>()[8], 9.0f);
}

// ---- shape inference with symbolic dims ----

TEST(UnaryInfer, ResizeScalesKeepSymbols) {
  OneNode n("Resize", 3);
  n.node->input(0)->type =
      TypeInfo::Tensor(DataType::kFloat, Shape({Dim::Symbol("batch"), Dim(3), Dim::Symbol("h"), Dim(10)}));
  n.node->input(2)->data = Tensor::FromVector<float>(DataType::kFloat, {4}, {1.0f, 1.0f, 2.0f, 0.5f});
  n.node->input(2)->type = TypeInfo::Tensor(DataType::kFloat, Shape::Of({4}));
  InferContext ctx(*n.node, 19);
  ASSERT_TRUE(FindOp("", "Resize")->infer(ctx).ok());
  EXPECT_EQ(n.node->output(0)->type.ToString(), "float32[batch,3,h*2,5]");
}

TEST(UnaryInfer, DftOnesided) {
  OneNode n("DFT", 1);
  Attribute a;
  a.type = Attribute::Type::kInt;
  a.i = 1;
  n.node->attrs["onesided"] = a;
  n.node->input(0)->type = TypeInfo::Tensor(DataType::kFloat, Shape({Dim::Symbol("b"), Dim(16), Dim(1)}));
  InferContext ctx(*n.node, 20);
  ASSERT_TRUE(FindOp("", "DFT")->infer(ctx).ok());
  EXPECT_EQ(n.node->output(0)->type.ToString(), "float32[b,9,2]");
}

// The ONNX backend node tests of these ops run through `kiln conformance`
// (tests/conformance, with a per-case baseline), not here.

}  // namespace
}  // namespace kiln
