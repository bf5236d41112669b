// fold_prenorm: a BatchNormalization read only by an unpadded Conv folds into the Conv's weights and bias
// (the oracle: the original graph on the CPU reference, to float rounding).
#include "passes/fold_prenorm.h"

#include <gtest/gtest.h>

#include "graph_builder.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

// A [c] float constant 0.5, 0.7, 0.9, ... (BN variances must be positive).
Value* Positive(GraphBuilder& b, const std::string& name, int64_t c) {
  Tensor t(DataType::kFloat, {c});
  for (int64_t i = 0; i < c; ++i) t.mutable_data<float>()[i] = 0.5f + 0.2f * static_cast<float>(i);
  return b.Fixed(name, std::move(t));
}

// x [N, C, 7, 6] → BN → Conv(kernel × kernel, `attrs`, `group`) with weights [K, C / group, k, k] and a bias.
std::unique_ptr<Model> NormThenConv(int64_t c, int64_t k, int64_t kernel, int64_t group, AttributeMap attrs,
                                    bool bias = true) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("n"), c, 7, 6}));
  Value* bn =
      b.Op("BatchNormalization", "pre_norm",
           {x, b.Const("gamma", {c}), b.Const("beta", {c}), b.Const("mean", {c}), Positive(b, "var", c)});
  attrs["group"] = Attribute::FromInt(group);
  std::vector<Value*> in = {bn, b.Const("w", {k, c / group, kernel, kernel})};
  if (bias) in.push_back(b.Const("b", {k}));
  b.Output(b.Op("Conv", "conv", in, attrs));
  return b.Done();
}

// MaxViT's MBConv: BN then the 1x1 expansion; also without a bias, strided 3x3 with no padding, grouped.
TEST(FoldPrenorm, UnpaddedConvolutionsTakeTheNorm) {
  std::vector<std::unique_ptr<Model>> cases;
  cases.push_back(NormThenConv(6, 10, 1, 1, {}));
  cases.push_back(NormThenConv(6, 10, 1, 1, {}, /*bias=*/false));
  cases.push_back(NormThenConv(4, 8, 3, 1, {{"strides", Attribute::FromInts({2, 2})}}));
  cases.push_back(NormThenConv(6, 9, 3, 3, {{"auto_pad", Attribute::FromString("VALID")}}));
  for (const auto& m : cases) {
    auto after = RunPassAndCompare(*m, RunFoldPrenorm, 2, 1e-5);
    EXPECT_EQ(CountOps(*after, "BatchNormalization"), 0);
  }
}

// Padding reads zeros where the BN would have written its shift: the BN stays; so does one read twice.
TEST(FoldPrenorm, PaddedOrSharedNormsStay) {
  auto padded = NormThenConv(4, 8, 3, 1, {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  auto same = NormThenConv(4, 8, 3, 1, {{"auto_pad", Attribute::FromString("SAME_UPPER")}});
  for (Model* m : {padded.get(), same.get()}) {
    PassContext ctx;
    ASSERT_TRUE(RunFoldPrenorm(*m, ctx).ok());
    EXPECT_FALSE(ctx.changed);
  }
  GraphBuilder b;
  Value* x = b.Input("x", Shape({2, 4, 5, 5}));
  Value* bn =
      b.Op("BatchNormalization", "bn",
           {x, b.Const("gamma", {4}), b.Const("beta", {4}), b.Const("mean", {4}), Positive(b, "var", 4)});
  b.Output(b.Op("Conv", "conv", {bn, b.Const("w", {3, 4, 1, 1})}));
  b.Output(bn);
  auto shared = b.Done();
  PassContext ctx;
  ASSERT_TRUE(RunFoldPrenorm(*shared, ctx).ok());
  EXPECT_FALSE(ctx.changed);
}

}  // namespace
}  // namespace kiln
