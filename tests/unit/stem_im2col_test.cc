// Tests for convolutions of few input channels as one GEMM over their windows
// (src/passes/stem_im2col.h) and kiln.Im2Col (src/ops/kiln_im2col.cc): the
// rewritten graph computes what the convolution did on the CPU reference
// (bit for bit: the reference sums the same products in the same order), the
// NCHW input is read without its Transpose, strides, dilations and uneven pads
// map the same taps, and what the pass must leave alone stays.
#include "passes/stem_im2col.h"

#include <gtest/gtest.h>

#include <tuple>

#include "graph_builder.h"
#include "passes/layout_nhwc.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

std::unique_ptr<Model> ChannelsLast(std::unique_ptr<Model> m) {
  PassContext ctx;
  EXPECT_TRUE(RunChannelsLast(*m, ctx).ok());
  return m;
}

const Node* Find(const Model& m, const std::string& op, const std::string& name) {
  for (const Node* n : m.graph->nodes())
    if (n->op_type == op && n->name.rfind(name, 0) == 0) return n;
  return nullptr;
}

// ResNet's stem (7x7, stride 2, pads 3, 3 channels) with bias and ReLU, then a wide convolution.
TEST(StemIm2Col, RgbStemIsOneGemmReadingTheNchwInput) {
  for (DataType dt : {DataType::kFloat, DataType::kFloat16}) {
    GraphBuilder b(dt);
    Value* x = b.Input("x", Shape({Dim::Symbol("batch"), 3, 64, 64}));
    Value* stem = b.Op("Conv", "stem", {x, b.Const("w", {8, 3, 7, 7}), b.Const("bias", {8})},
                       {{"pads", Attribute::FromInts({3, 3, 3, 3})}, {"strides", Attribute::FromInts({2, 2})}});
    Value* wide = b.Op("Conv", "wide", {b.Op("Relu", "relu", {stem}), b.Const("w2", {8, 8, 3, 3})},
                       {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
    b.Output(wide);
    auto m = ChannelsLast(b.Done());
    ASSERT_EQ(CountOps(*m, "Transpose"), 2);  // the input to NHWC, the output back
    auto f = RunPassAndCompare(*m, RunStemIm2Col, 2, 0.0);
    EXPECT_EQ(CountOps(*f, "Im2Col"), 1);
    EXPECT_EQ(CountOps(*f, "Transpose"), 1);  // the input's is gone
    const Node* im2col = Find(*f, "Im2Col", "stem");
    ASSERT_TRUE(im2col);
    EXPECT_EQ(im2col->input(0)->name(), "x");
    EXPECT_EQ(im2col->attr("channels_last")->i, 0);
    EXPECT_EQ(im2col->attr("columns")->i, 152);  // 7·7·3 = 147, rounded up to 8
    const Node* s = Find(*f, "FusedConvNhwc", "stem");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->input(1)->data->dims(), (std::vector<int64_t>{8, 1, 1, 152}));
    EXPECT_FALSE(s->attr("strides"));
    EXPECT_EQ(s->input(0)->shape().ToString(), "[batch,32,32,152]");
    const Node* w = Find(*f, "FusedConvNhwc", "wide");
    ASSERT_TRUE(w);
    EXPECT_EQ(w->input(1)->data->dims(), (std::vector<int64_t>{8, 3, 3, 8}));  // untouched
  }
}

// A channels-last input (another convolution's output), a dilated window with
// uneven pads and strides, and a residual: the same taps as the convolution.
TEST(StemIm2Col, ChannelsLastInputWithDilationAndUnevenPads) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({2, 1, 40, 36}));
  Value* first = b.Op("Conv", "first", {x, b.Const("w", {4, 1, 5, 5})}, {{"pads", Attribute::FromInts({2, 2, 2, 2})}});
  Value* second = b.Op("Conv", "second", {first, b.Const("w2", {6, 4, 3, 3}), b.Const("b2", {6})},
                       {{"pads", Attribute::FromInts({1, 2, 3, 0})},
                        {"strides", Attribute::FromInts({2, 1})},
                        {"dilations", Attribute::FromInts({2, 3})}});
  b.Output(second);
  auto f = RunPassAndCompare(*ChannelsLast(b.Done()), RunStemIm2Col, 2, 0.0);
  EXPECT_EQ(CountOps(*f, "Im2Col"), 2);
  const Node* im2col = Find(*f, "Im2Col", "second");
  ASSERT_TRUE(im2col);
  EXPECT_EQ(im2col->attr("channels_last")->i, 1);
  EXPECT_EQ(im2col->attr("columns")->i, 40);  // 3·3·4 = 36 → 40
}

// auto_pad SAME_UPPER with a stride: Im2Col resolves the pads as Conv does.
TEST(StemIm2Col, AutoPadIsResolvedAsConvResolvesIt) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), 3, 33, 35}));
  b.Output(b.Op("Conv", "stem", {x, b.Const("w", {8, 3, 4, 3})},
                {{"auto_pad", Attribute::FromString("SAME_UPPER")}, {"strides", Attribute::FromInts({2, 2})}}));
  auto f = RunPassAndCompare(*ChannelsLast(b.Done()), RunStemIm2Col, 2, 0.0);
  const Node* im2col = Find(*f, "Im2Col", "stem");
  ASSERT_TRUE(im2col);
  EXPECT_EQ(im2col->attr("auto_pad")->s, "SAME_UPPER");
  EXPECT_EQ(im2col->output(0)->shape().ToString(), "[batch,17,18,40]");
}

// MobileNetV3's stem (3x3, stride 2, 16 filters) → HardSwish: the activation joins the 1x1 product; a
// HardSigmoid (torch's alpha 1/6) too; an activation whose input has another reader stays its own node.
TEST(StemIm2Col, HardActivationAfterTheStemJoinsTheProduct) {
  for (const char* act : {"HardSwish", "HardSigmoid"}) {
    GraphBuilder b;
    Value* x = b.Input("x", Shape({Dim::Symbol("batch"), 3, 64, 64}));
    Value* stem =
        b.Op("Conv", "stem", {x, b.Const("w", {16, 3, 3, 3}), b.Const("bias", {16})},
             {{"pads", Attribute::FromInts({1, 1, 1, 1})}, {"strides", Attribute::FromInts({2, 2})}});
    AttributeMap attrs;
    if (std::string(act) == "HardSigmoid") attrs["alpha"] = Attribute::FromFloat(1.f / 6.f);
    Value* a = b.Op(act, "act", {stem}, attrs);
    b.Output(b.Op("Conv", "next", {a, b.Const("w2", {8, 16, 1, 1})}));
    auto f = RunPassAndCompare(*ChannelsLast(b.Done()), RunStemIm2Col, 2, 1e-6);
    EXPECT_EQ(CountOps(*f, act), 0) << act;
    const Node* s = Find(*f, "FusedConvNhwc", "stem");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->attr("activation")->s, act);
    if (std::string(act) == "HardSigmoid") {
      EXPECT_FLOAT_EQ(s->attr("activation_alpha")->f, 1.f / 6.f);
    }
  }
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), 3, 64, 64}));
  Value* stem =
      b.Op("Conv", "stem", {x, b.Const("w", {16, 3, 3, 3})}, {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  b.Output(b.Op("Add", "sum", {b.Op("HardSwish", "act", {stem}), stem}));
  auto f = RunPassAndCompare(*ChannelsLast(b.Done()), RunStemIm2Col, 2, 0.0);
  EXPECT_EQ(CountOps(*f, "Im2Col"), 1);
  EXPECT_EQ(CountOps(*f, "HardSwish"), 1);
}

// Grouped, 1x1, wide and small-image convolutions are not stems.
TEST(StemIm2Col, OtherConvolutionsStay) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), 4, 64, 64}));
  Value* grouped = b.Op("Conv", "grouped", {x, b.Const("w", {4, 1, 3, 3})},
                        {{"group", Attribute::FromInt(4)}, {"pads", Attribute::FromInts({1, 1, 1, 1})}});
  Value* pointwise = b.Op("Conv", "pointwise", {grouped, b.Const("w2", {8, 4, 1, 1})});
  Value* wide = b.Op("Conv", "wide", {pointwise, b.Const("w3", {4, 8, 3, 3})});
  Value* pooled = b.Op("GlobalAveragePool", "pool", {wide});
  b.Output(b.Op("Conv", "small", {pooled, b.Const("w4", {8, 4, 1, 1})}));
  auto f = RunPassAndCompare(*ChannelsLast(b.Done()), RunStemIm2Col, 2, 0.0);
  EXPECT_EQ(CountOps(*f, "Im2Col"), 0);
}

// Im2Col's own checks name the node: a window larger than the padded input, too few columns, a conversion
// ('to', cast_into_im2col) to or from a type other than float32/float16/bfloat16.
TEST(StemIm2Col, Im2ColRejectsBadGeometryAndConversions) {
  const auto to = [](DataType t) { return Attribute::FromInt(static_cast<int64_t>(t)); };
  for (const auto& [dt, attrs, message] : std::vector<std::tuple<DataType, AttributeMap, std::string>>{
           {DataType::kFloat, {{"kernel_shape", Attribute::FromInts({9, 3})}}, "does not fit spatial dim 0"},
           {DataType::kFloat,
            {{"kernel_shape", Attribute::FromInts({3, 3})}, {"columns", Attribute::FromInt(20)}},
            "fewer than the 27"},
           {DataType::kFloat, {{"kernel_shape", Attribute::FromInts({3})}}, "must have 2 values"},
           {DataType::kFloat, {}, "kernel_shape is required"},
           {DataType::kFloat,
            {{"kernel_shape", Attribute::FromInts({3, 3})}, {"to", to(DataType::kInt8)}},
            "must be float32, float16 or bfloat16"},
           {DataType::kInt32,
            {{"kernel_shape", Attribute::FromInts({3, 3})}, {"to", to(DataType::kFloat16)}},
            "converts only float32/float16/bfloat16"}}) {
    GraphBuilder b(dt);
    Value* x = b.Input("x", Shape({1, 8, 8, 3}));
    b.Output(b.Op("Im2Col", "windows", {x}, attrs, "kiln"));
    Status s = InferShapes(*b.Release());
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("windows"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find(message), std::string::npos) << s.message();
  }
}

}  // namespace
}  // namespace kiln
