// Tests for the window gather and its product as one node (src/passes/im2col_conv.h) and kiln.Im2ColConv's
// CPU reference (src/ops/kiln_im2col_conv.cc): an FP16 build's RGB stem (ReLU fused, input FP32 NCHW, bias)
// becomes one kiln.Im2ColConv computing bit for bit what the pair did, a float16 NHWC input too; windows
// another node reads, a residual, an FP32 product and a window too wide for the kernel keep the pair.
#include "passes/im2col_conv.h"

#include <gtest/gtest.h>

#include "graph_builder.h"
#include "passes/cast_into_im2col.h"
#include "passes/fp16.h"
#include "passes/fuse_gpu.h"
#include "passes/layout_nhwc.h"
#include "passes/stem_im2col.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::FindOp;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

// The build's passes up to this one (fp16: through cast_into_im2col) on `m`.
void BuildUpTo(Model& m, bool fp16) {
  PassContext ctx;
  ASSERT_TRUE(RunFuseForGpu(m, ctx).ok());
  ASSERT_TRUE(RunChannelsLast(m, ctx).ok());
  ASSERT_TRUE(RunStemIm2Col(m, ctx).ok());
  if (!fp16) return;
  ASSERT_TRUE(RunConvertToFp16(m, ctx).ok());
  ASSERT_TRUE(RunCastIntoIm2Col(m, ctx).ok());
}

// Conv(x, w [k, 3, r, r], bias) → Relu, x [batch, 3, 40, 36].
std::unique_ptr<Model> Stem(int64_t k, int64_t r) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), 3, 40, 36}));
  Value* stem = b.Op("Conv", "stem", {x, b.Const("w", {k, 3, r, r}), b.Const("bias", {k})},
                     {{"pads", Attribute::FromInts({r / 2, r / 2, r / 2, r / 2})},
                      {"strides", Attribute::FromInts({2, 2})}});
  b.Output(b.Op("Relu", "relu", {stem}));
  return b.Done();
}

TEST(Im2ColConv, Fp16StemBecomesOneNode) {
  std::unique_ptr<Model> m = Stem(16, 7);
  BuildUpTo(*m, true);
  ASSERT_EQ(CountOps(*m, "Im2Col"), 1);
  auto f = RunPassAndCompare(*m, RunFuseIm2ColConv, 2, 0.0);
  EXPECT_EQ(CountOps(*f, "Im2Col"), 0);
  EXPECT_EQ(CountOps(*f, "FusedConvNhwc"), 0);
  const Node* n = FindOp(*f, "Im2ColConv");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->input(0)->name(), "x");  // the model's FP32 NCHW input, converted as it is gathered
  EXPECT_EQ(n->attr("channels_last")->i, 0);
  EXPECT_EQ(n->attr("columns")->i, 152);
  EXPECT_EQ(n->attr("to")->i, static_cast<int64_t>(DataType::kFloat16));
  ASSERT_TRUE(n->attr("activation"));
  EXPECT_EQ(n->attr("activation")->s, "Relu");
  EXPECT_FALSE(n->attr("group"));
  EXPECT_EQ(n->num_inputs(), 3u);
}

// A float16 model: X is already float16 and channels last (no Transpose to read through).
TEST(Im2ColConv, HalfNhwcInput) {
  GraphBuilder b(DataType::kFloat16);
  Value* x = b.Input("x", Shape({2, 33, 35, 3}));
  Value* windows = b.Op("Im2Col", "windows", {x},
                        {{"kernel_shape", Attribute::FromInts({3, 3})},
                         {"pads", Attribute::FromInts({1, 1, 1, 1})},
                         {"strides", Attribute::FromInts({2, 2})},
                         {"columns", Attribute::FromInt(32)}},
                        "kiln");
  b.Output(b.Op("FusedConvNhwc", "conv", {windows, b.Const("w", {24, 1, 1, 32})},
                {{"activation", Attribute::FromString("Clip")},
                 {"activation_min", Attribute::FromFloat(0.f)},
                 {"activation_max", Attribute::FromFloat(6.f)}},
                "kiln"));
  auto f = RunPassAndCompare(*b.Done(), RunFuseIm2ColConv, 2, 0.0);
  const Node* n = FindOp(*f, "Im2ColConv");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->num_inputs(), 2u);
  EXPECT_EQ(n->attr("activation")->s, "Clip");
  EXPECT_EQ(n->attr("kernel_shape")->ints, (std::vector<int64_t>{3, 3}));
}

TEST(Im2ColConv, PairStaysWhenTheKernelCannotTakeIt) {
  {  // FP32 build: the windows are float32
    std::unique_ptr<Model> m = Stem(16, 7);
    BuildUpTo(*m, false);
    auto f = RunPassAndCompare(*m, RunFuseIm2ColConv, 2, 0.0);
    EXPECT_EQ(CountOps(*f, "Im2ColConv"), 0);
    EXPECT_EQ(CountOps(*f, "Im2Col"), 1);
  }
  {  // 11x11x3 = 363 taps: more columns than the kernel keeps in shared memory
    std::unique_ptr<Model> m = Stem(16, 11);
    BuildUpTo(*m, true);
    auto f = RunPassAndCompare(*m, RunFuseIm2ColConv, 2, 0.0);
    EXPECT_EQ(CountOps(*f, "Im2ColConv"), 0);
  }
  {  // 12 output channels: not a multiple of the kernel's 8-channel stores
    std::unique_ptr<Model> m = Stem(12, 3);
    BuildUpTo(*m, true);
    auto f = RunPassAndCompare(*m, RunFuseIm2ColConv, 2, 0.0);
    EXPECT_EQ(CountOps(*f, "Im2ColConv"), 0);
  }
}

TEST(Im2ColConv, WindowsReadElsewhereStay) {
  GraphBuilder b(DataType::kFloat16);
  Value* x = b.Input("x", Shape({2, 16, 16, 3}));
  Value* windows = b.Op("Im2Col", "windows", {x},
                        {{"kernel_shape", Attribute::FromInts({3, 3})},
                         {"pads", Attribute::FromInts({1, 1, 1, 1})},
                         {"columns", Attribute::FromInt(32)}},
                        "kiln");
  b.Output(b.Op("FusedConvNhwc", "conv", {windows, b.Const("w", {8, 1, 1, 32})}, {}, "kiln"));
  b.Output(windows);
  auto f = RunPassAndCompare(*b.Done(), RunFuseIm2ColConv, 2, 0.0);
  EXPECT_EQ(CountOps(*f, "Im2ColConv"), 0);
  EXPECT_EQ(CountOps(*f, "Im2Col"), 1);
}

}  // namespace
}  // namespace kiln
