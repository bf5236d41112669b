// conv1d_as_2d: 1-D convolutions as 2-D ones of height 1, between views; the oracle is the 1-D graph on the
// CPU reference (bit for bit: the same sums of the same products).
#include "passes/conv1d_as_2d.h"

#include <gtest/gtest.h>

#include "build/build_passes.h"
#include "graph_builder.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

int CountRank3Convs(const Model& m) {
  int n = 0;
  for (const Node* node : m.graph->nodes())
    if ((node->op_type == "Conv" || node->op_type == "FusedConv") && node->output(0)->shape().rank() == 3)
      ++n;
  return n;
}

// Whisper's audio stem (two k3 convolutions, the second of stride 2), then a grouped, dilated, padded one and
// a kiln.FusedConv with bias, residual and activation.
std::unique_ptr<Model> AudioStem() {
  GraphBuilder b;
  const Dim batch = Dim::Symbol("batch");
  Value* x = b.Input("x", Shape({batch, 6, 17}));
  auto ints = [](std::vector<int64_t> v) { return Attribute::FromInts(std::move(v)); };
  Value* c1 = b.Op("Conv", "conv1", {x, b.Const("w1", {8, 6, 3}), b.Const("b1", {8})},
                   {{"kernel_shape", ints({3})}, {"pads", ints({1, 1})}});
  Value* c2 =
      b.Op("Conv", "conv2", {c1, b.Const("w2", {8, 8, 3})}, {{"pads", ints({1, 1})}, {"strides", ints({2})}});
  Value* c3 = b.Op("Conv", "grouped", {c2, b.Const("w3", {8, 4, 3})},
                   {{"group", Attribute::FromInt(2)}, {"dilations", ints({2})}, {"pads", ints({2, 1})}});
  Value* z = b.Input("z", Shape({batch, 8, 8}));
  Value* f = b.Op("FusedConv", "fused", {c3, b.Const("w4", {8, 8, 1}), b.Const("b4", {8}), z},
                  {{"activation", Attribute::FromString("Relu")}}, "kiln");
  b.Output(f);
  return b.Done();
}

TEST(Conv1dAs2d, EveryOneDimensionalConvolutionBecomesTwoDimensional) {
  auto f = RunPassAndCompare(*AudioStem(), RunConv1dAs2d);  // tolerance 0
  EXPECT_EQ(CountRank3Convs(*f), 0);
  EXPECT_EQ(CountOps(*f, "Conv"), 3);
  EXPECT_EQ(CountOps(*f, "FusedConv"), 1);
  for (const Node* n : f->graph->nodes())
    if (n->op_type == "Conv" && n->name == "grouped") {
      EXPECT_EQ(n->attr("pads")->ints, (std::vector<int64_t>{0, 2, 0, 1}));
      EXPECT_EQ(n->attr("dilations")->ints, (std::vector<int64_t>{1, 2}));
      EXPECT_EQ(n->input(1)->shape().ToString(), "[8,4,1,3]");
    }
}

TEST(Conv1dAs2d, TheFp16BuildRunsThemChannelsLast) {
  auto build = [](Model& m, PassContext&) {
    std::vector<std::string> notes;
    BuildOptions opts;
    opts.fp16 = true;
    return RunBuildPasses(m, opts, &notes);
  };
  auto f = RunPassAndCompare(*AudioStem(), build, 2, 2e-2);
  EXPECT_EQ(CountRank3Convs(*f), 0);
  EXPECT_EQ(CountOps(*f, "FusedConvNhwc"), 4);
}

TEST(Conv1dAs2d, SameAutoPadAndTwoDimensionalConvolutionsStay) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({1, 4, 9}));
  Value* c =
      b.Op("Conv", "same", {x, b.Const("w", {4, 4, 3})}, {{"auto_pad", Attribute::FromString("SAME_UPPER")}});
  Value* y = b.Input("y", Shape({1, 4, 5, 5}));
  b.Output(c);
  b.Output(b.Op("Conv", "two_d", {y, b.Const("w2", {4, 4, 3, 3})}));
  auto f = RunPassAndCompare(*b.Done(), RunConv1dAs2d);
  EXPECT_EQ(CountRank3Convs(*f), 1);
  EXPECT_EQ(CountOps(*f, "Reshape"), 0);
}

}  // namespace
}  // namespace kiln
