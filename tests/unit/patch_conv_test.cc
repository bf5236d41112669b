// Tests for the patch-convolution rewrite (src/passes/patch_conv.h): the
// rewritten graph computes what the Conv computed on the CPU reference (the
// GEMM sums in another order, so within a tolerance), the flatten-and-transpose
// of patch embeddings folds into one Reshape, and convolutions that are not
// patch convolutions stay. Also the exported ViT-B/16 from the zoo fixture.
#include "passes/patch_conv.h"

#include <gtest/gtest.h>

#include "graph_builder.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using Builder = testing_build::GraphBuilder;

AttributeMap PatchAttrs(int64_t p, int64_t q) {
  return {{"kernel_shape", Attribute::FromInts({p, q})}, {"strides", Attribute::FromInts({p, q})}};
}

TEST(PatchConv, ConvBecomesGemm) {
  Builder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), 3, 8, 12}));
  b.Output(b.Op("Conv", "conv", {x, b.Const("w", {5, 3, 2, 4}), b.Const("b", {5})}, PatchAttrs(2, 4)));
  auto m = b.Done();
  auto f = testing_build::RunPassAndCompare(*m, RunPatchConvToGemm, 2, 1e-5);
  EXPECT_EQ(CountOps(*f, "Conv"), 0);
  EXPECT_EQ(CountOps(*f, "Gemm"), 1);
  EXPECT_EQ(CountOps(*f, "Transpose"), 2);  // patches in, NCHW out
  EXPECT_EQ(f->graph->outputs[0]->name(), "conv");
  EXPECT_EQ(f->graph->outputs[0]->shape().ToString(), "[batch,5,4,3]");
}

TEST(PatchConv, NoBias) {
  Builder b;
  Value* x = b.Input("x", Shape({2, 4, 6, 6}));
  b.Output(b.Op("Conv", "conv", {x, b.Const("w", {3, 4, 3, 3})}, PatchAttrs(3, 3)));
  auto m = b.Done();
  auto f = testing_build::RunPassAndCompare(*m, RunPatchConvToGemm, 2, 1e-5);
  EXPECT_EQ(CountOps(*f, "Gemm"), 1);
}

// ViT's patch embedding: conv → Reshape [N, K, L] → Transpose [0, 2, 1].
TEST(PatchConv, PatchEmbeddingTokens) {
  Builder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), 3, 8, 8}));
  Value* c = b.Op("Conv", "conv", {x, b.Const("w", {6, 3, 4, 4}), b.Const("b", {6})}, PatchAttrs(4, 4));
  Value* shape = b.Op("Constant", "shape", {}, {{"value", Attribute::FromTensor(Tensor::FromVector<int64_t>(DataType::kInt64, {3}, {0, 6, 4}))}});
  Value* r = b.Op("Reshape", "flat", {c, shape});
  b.Output(b.Op("Transpose", "tokens", {r}, {{"perm", Attribute::FromInts({0, 2, 1})}}));
  auto m = b.Done();
  auto f = testing_build::RunPassAndCompare(*m, RunPatchConvToGemm, 3, 1e-5);
  EXPECT_EQ(CountOps(*f, "Conv"), 0);
  EXPECT_EQ(CountOps(*f, "Transpose"), 1);  // only the patch gather
  EXPECT_EQ(f->graph->outputs[0]->name(), "tokens");
  // The GEMM's rows keep the batch symbol (the runtime's shape program needs it).
  const Value* rows = f->graph->FindValue("conv/patch_rows");
  ASSERT_NE(rows, nullptr);
  EXPECT_EQ(rows->shape().ToString(), "[batch*4,48]");
}

TEST(PatchConv, LeavesOtherConvsAlone) {
  const std::vector<AttributeMap> cases = {
      {{"strides", Attribute::FromInts({1, 1})}},                                             // overlapping
      {{"strides", Attribute::FromInts({2, 2})}, {"pads", Attribute::FromInts({1, 1, 1, 1})}},  // padded
      {{"strides", Attribute::FromInts({2, 2})}, {"dilations", Attribute::FromInts({2, 2})}},
  };
  for (const AttributeMap& attrs : cases) {
    Builder b;
    Value* x = b.Input("x", Shape({1, 3, 8, 8}));
    b.Output(b.Op("Conv", "conv", {x, b.Const("w", {4, 3, 2, 2})}, attrs));
    auto m = b.Done();
    PassContext ctx;
    ASSERT_TRUE(RunPatchConvToGemm(*m, ctx).ok());
    EXPECT_FALSE(ctx.changed);
  }
  Builder b;  // 7 is not a multiple of the patch
  Value* x = b.Input("x", Shape({1, 3, 7, 8}));
  b.Output(b.Op("Conv", "conv", {x, b.Const("w", {4, 3, 2, 2})}, PatchAttrs(2, 2)));
  auto m = b.Done();
  PassContext ctx;
  ASSERT_TRUE(RunPatchConvToGemm(*m, ctx).ok());
  EXPECT_FALSE(ctx.changed);
}

TEST(PatchConv, VitB16Zoo) {
  auto m = testing_build::SimplifiedZooModel("vit_b_16");
  if (!m) return;  // the fixture is missing: a failure is recorded
  const int transposes = CountOps(*m, "Transpose");
  auto f = testing_build::RunPassAndCompare(*m, RunPatchConvToGemm, 1, 1e-4);
  EXPECT_EQ(CountOps(*f, "Conv"), 0);
  EXPECT_EQ(CountOps(*f, "Transpose"), transposes);  // the patch gather replaces the tokens' Transpose
}

}  // namespace
}  // namespace kiln
