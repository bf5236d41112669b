// Tests for the channel padding of channels-last stems (src/passes/pad_channels.h):
// the padded convolution computes the same outputs (bit for bit on the CPU
// reference: the zero channels add exact zeros), with the weight padded to 8
// channels and one Pad before it; convolutions of 8 or more channels and
// grouped ones are left alone.
#include "passes/pad_channels.h"

#include <gtest/gtest.h>

#include "graph_builder.h"
#include "passes/layout_nhwc.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

AttributeMap Stem(int64_t group = 1) {
  return {{"pads", Attribute::FromInts({3, 3, 3, 3})},
          {"strides", Attribute::FromInts({2, 2})},
          {"group", Attribute::FromInt(group)}};
}

// A model after layout_nhwc.
std::unique_ptr<Model> ChannelsLast(std::unique_ptr<Model> m) {
  PassContext ctx;
  EXPECT_TRUE(RunChannelsLast(*m, ctx).ok());
  return m;
}

const Node* FindConv(const Model& m, const std::string& name) {
  for (const Node* n : m.graph->nodes())
    if (n->op_type == "FusedConvNhwc" && n->name == name) return n;
  return nullptr;
}

TEST(PadChannels, RgbStemReadsEightChannels) {
  for (DataType dt : {DataType::kFloat, DataType::kFloat16}) {
    GraphBuilder b(dt);
    Value* x = b.Input("x", Shape({Dim::Symbol("batch"), 3, 64, 64}));
    Value* stem = b.Op("Conv", "stem", {x, b.Const("w", {8, 3, 7, 7}), b.Const("bias", {8})}, Stem());
    Value* wide = b.Op("Conv", "wide", {b.Op("Relu", "relu", {stem}), b.Const("w2", {8, 8, 3, 3})},
                       {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
    b.Output(wide);
    auto m = ChannelsLast(b.Done());
    ASSERT_EQ(CountOps(*m, "FusedConvNhwc"), 2);
    auto f = RunPassAndCompare(*m, RunPadConvChannels, 2, 0.0);
    EXPECT_EQ(CountOps(*f, "Pad"), 1);
    const Node* s = FindConv(*f, "stem");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->input(1)->data->dims(), (std::vector<int64_t>{8, 7, 7, 8}));
    EXPECT_EQ(s->input(0)->shape()[3], Dim(8));
    const Node* w = FindConv(*f, "wide");
    ASSERT_TRUE(w);
    EXPECT_EQ(w->input(1)->data->dims(), (std::vector<int64_t>{8, 3, 3, 8}));  // untouched
  }
}

// A depthwise convolution of 4 channels stays as it is; the 1x1 convolution
// after it (4 input channels, group 1; symbolic sizes count as large) is padded.
TEST(PadChannels, GroupedConvolutionsStay) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({2, 4, Dim::Symbol("h"), Dim::Symbol("w")}));
  Value* grouped = b.Op("Conv", "grouped", {x, b.Const("w", {4, 1, 7, 7})}, Stem(4));
  b.Output(b.Op("Conv", "pointwise", {grouped, b.Const("w2", {8, 4, 1, 1})}));
  auto m = ChannelsLast(b.Done());
  auto f = RunPassAndCompare(*m, RunPadConvChannels, 2, 0.0);
  const Node* g = FindConv(*f, "grouped");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->input(1)->data->dims(), (std::vector<int64_t>{4, 7, 7, 1}));
  const Node* p = FindConv(*f, "pointwise");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->input(1)->data->dims(), (std::vector<int64_t>{8, 1, 1, 8}));
  EXPECT_EQ(CountOps(*f, "Pad"), 1);
}

// An SE block's expanding 1x1 convolution reads [N, 1, 1, 4]: a Pad would cost a kernel for nothing.
TEST(PadChannels, SmallImagesStay) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), 4, 1, 1}));
  b.Output(b.Op("Conv", "expand", {x, b.Const("w", {16, 4, 1, 1}), b.Const("bias", {16})}));
  auto f = RunPassAndCompare(*ChannelsLast(b.Done()), RunPadConvChannels, 2, 0.0);
  EXPECT_EQ(CountOps(*f, "Pad"), 0);
}

}  // namespace
}  // namespace kiln
