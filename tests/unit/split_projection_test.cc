// split_projection: a constant-weight product read only in column blocks
// becomes one product per block, bit for bit the same on the CPU reference.
#include "passes/split_projection.h"

#include <gtest/gtest.h>

#include "graph_builder.h"
#include "passes/gather_transpose.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

const Shape kTokens({Dim::Symbol("batch"), 5, 16});

TEST(SplitProjection, MatMulReadByThreeSlicesBecomesThreeMatMuls) {
  GraphBuilder b;
  Value* x = b.Input("x", kTokens);
  Value* qkv = b.Op("MatMul", "qkv", {x, b.Const("w", {16, 24})});
  Value* axes = b.Int64s("axes", {-1});
  b.Output(b.Op("Slice", "q", {qkv, b.Int64s("s0", {0}), b.Int64s("e0", {8}), axes}));
  b.Output(b.Op("Slice", "k", {qkv, b.Int64s("s1", {8}), b.Int64s("e1", {16}), axes}));
  b.Output(b.Op("Relu", "v_relu", {b.Op("Slice", "v", {qkv, b.Int64s("s2", {-8}), b.Int64s("e2", {1000}), axes})}));
  auto f = RunPassAndCompare(*b.Done(), RunSplitProjection);
  EXPECT_EQ(CountOps(*f, "MatMul"), 3);
  EXPECT_EQ(CountOps(*f, "Slice"), 0);
  EXPECT_EQ(f->graph->outputs[0]->name(), "q");
  EXPECT_EQ(f->graph->outputs[0]->producer()->input(1)->shape().ToString(), "[16,8]");
}

// torch's Linear on 3-D input: MatMul, then the bias Add; chunk(3, -1) Slices the Add (three blocks of 8
// columns). `whole_too`: the Add's output is a graph output as well.
std::unique_ptr<Model> BiasedQkvInThirds(bool whole_too) {
  GraphBuilder b;
  Value* x = b.Input("x", kTokens);
  Value* qkv =
      b.Op("Add", "qkv_bias", {b.Op("MatMul", "qkv", {x, b.Const("w", {16, 24})}), b.Const("b", {24})});
  if (whole_too) b.Output(qkv);
  Value* axes = b.Int64s("axes", {-1});
  for (int i = 0; i < 3; ++i) {
    const std::string n = std::to_string(i);
    b.Output(
        b.Op("Slice", "part" + n, {qkv, b.Int64s("s" + n, {8 * i}), b.Int64s("e" + n, {8 * i + 8}), axes}));
  }
  return b.Done();
}

TEST(SplitProjection, MatMulWithItsBiasAddSplitsBoth) {
  auto f = RunPassAndCompare(*BiasedQkvInThirds(false), RunSplitProjection);
  EXPECT_EQ(CountOps(*f, "MatMul"), 3);
  EXPECT_EQ(CountOps(*f, "Add"), 3);
  EXPECT_EQ(CountOps(*f, "Slice"), 0);
  EXPECT_EQ(f->graph->outputs[2]->shape().ToString(), "[batch,5,8]");
}

// The biased product is also a graph output: it must keep its producer, so nothing splits.
TEST(SplitProjection, BiasAddThatIsAGraphOutputStays) {
  auto f = RunPassAndCompare(*BiasedQkvInThirds(true), RunSplitProjection);
  EXPECT_EQ(CountOps(*f, "MatMul"), 1);
  EXPECT_EQ(CountOps(*f, "Slice"), 3);
}

TEST(SplitProjection, GemmWithBiasAndTransB) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("rows"), 16}));
  Value* y = b.Op("Gemm", "proj", {x, b.Const("w", {12, 16}), b.Const("bias", {12})},
                  {{"transB", Attribute::FromInt(1)}, {"alpha", Attribute::FromFloat(0.5f)}});
  Value* axes = b.Int64s("axes", {1});
  b.Output(b.Op("Slice", "a", {y, b.Int64s("s0", {0}), b.Int64s("e0", {4}), axes}));
  b.Output(b.Op("Slice", "b", {y, b.Int64s("s1", {4}), b.Int64s("e1", {12}), axes}));
  auto f = RunPassAndCompare(*b.Done(), RunSplitProjection);
  EXPECT_EQ(CountOps(*f, "Gemm"), 2);
  EXPECT_EQ(CountOps(*f, "Slice"), 0);
}

TEST(SplitProjection, SplitReadersAndASingleSliceStay) {
  for (int variant = 0; variant < 2; ++variant) {
    GraphBuilder b;
    Value* x = b.Input("x", kTokens);
    Value* y = b.Op("MatMul", "y", {x, b.Const("w", {16, 24})});
    if (variant == 0) {
      b.Output(b.Op("Split", "parts", {y, b.Int64s("sizes", {24})}, {{"axis", Attribute::FromInt(-1)}}));
    } else {
      b.Output(b.Op("Slice", "q", {y, b.Int64s("s", {0}), b.Int64s("e", {8}), b.Int64s("axes", {-1})}));
    }
    auto f = RunPassAndCompare(*b.Done(), RunSplitProjection);
    EXPECT_EQ(CountOps(*f, "MatMul"), 1) << "variant " << variant;
  }
}

TEST(SplitProjection, OtherReadersKeepOneProduct) {
  for (int variant = 0; variant < 3; ++variant) {
    GraphBuilder b;
    Value* x = b.Input("x", kTokens);
    Value* y = b.Op("MatMul", "y", {x, b.Const("w", {16, 24})});
    std::vector<Value*> slice_in = {y, b.Int64s("s", {0}), b.Int64s("e", {8}), b.Int64s("axes", {variant == 1 ? 1 : -1})};
    if (variant == 2) slice_in.push_back(b.Int64s("steps", {2}));
    b.Output(b.Op("Slice", "q", slice_in));
    b.Output(b.Op("Slice", "k", {y, b.Int64s("s2", {8}), b.Int64s("e2", {16}), b.Int64s("axes2", {-1})}));
    if (variant == 0) b.Output(b.Op("Relu", "whole", {y}));  // the whole product is read too
    auto f = RunPassAndCompare(*b.Done(), RunSplitProjection);
    EXPECT_EQ(CountOps(*f, "MatMul"), 1) << "variant " << variant;
  }
}

// torchvision's ViT (nn.MultiheadAttention's packed in_proj): after the GPU
// build's gather_transpose, Q, K and V are Slices of one MatMul; they become
// three MatMuls, and the model computes bit for bit the same.
TEST(SplitProjection, VitZoo) {
  std::unique_ptr<Model> m = testing_build::SimplifiedZooModel("vit_b_16");
  if (!m) return;  // the fixture is missing: a failure is recorded
  PassContext ctx;
  ASSERT_TRUE(RunGatherThroughTranspose(*m, ctx).ok());
  const int slices = CountOps(*m, "Slice");
  auto f = RunPassAndCompare(*m, RunSplitProjection, 1);
  EXPECT_EQ(slices - CountOps(*f, "Slice"), 36);
}

}  // namespace
}  // namespace kiln
