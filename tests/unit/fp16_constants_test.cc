// The FP16 pass's constants: float32 values beyond FP16's range saturate to
// ±65504 instead of becoming infinities. HF BERT/RoBERTa/T5 build their
// additive attention mask as (1 - mask) * finfo(float32).min; with -inf the
// kept positions computed 0 * -inf = NaN and every output was NaN.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "graph_builder.h"
#include "passes/fp16.h"

namespace kiln {
namespace {

using Builder = testing_build::GraphBuilder;

TEST(Fp16Constants, MaskWithFloat32MinStaysFinite) {
  Builder b;
  Value* scores = b.Input("scores", Shape({2, 4}));
  Value* mask = b.Input("mask", Shape({2, 4}));
  Value* keep = b.Op("Sub", "keep", {b.Scalar("one", 1.0), mask});
  Value* bias = b.Op("Mul", "bias", {keep, b.Scalar("min", std::numeric_limits<float>::lowest())});
  b.Output(b.Op("Softmax", "probs", {b.Op("Add", "masked", {scores, bias})}, {{"axis", Attribute::FromInt(-1)}}));
  auto m = b.Done();
  std::map<std::string, RtValue> feed;
  feed["scores"] = RtValue::FromTensor(
      Tensor::FromVector<float>(DataType::kFloat, {2, 4}, {0.5f, -1.f, 2.f, 0.f, 1.f, 1.f, -3.f, 0.25f}));
  feed["mask"] = RtValue::FromTensor(
      Tensor::FromVector<float>(DataType::kFloat, {2, 4}, {1.f, 1.f, 1.f, 0.f, 1.f, 0.f, 0.f, 0.f}));
  auto fp16 = [](Model& model, PassContext& ctx) { return RunConvertToFp16(model, ctx); };
  // The oracle: the FP32 graph (its masked positions get exactly 0).
  auto h = testing_build::RunPassAndCompare(*m, fp16, 2, 2e-3, &feed);
  const Value* min = h->graph->FindValue("min");
  ASSERT_TRUE(min && min->data);
  ASSERT_EQ(min->data->dtype(), DataType::kFloat16);
  EXPECT_EQ(min->data->ScalarAt(0), -65504.0);
}

TEST(Fp16Constants, InfinitiesAndNaNsAreKept) {
  Builder b;
  Value* x = b.Input("x", Shape({3}));
  b.Output(b.Op("Max", "y", {x, b.Scalar("ninf", -std::numeric_limits<double>::infinity())}));
  PassContext ctx;
  auto m = b.Done();
  ASSERT_TRUE(RunConvertToFp16(*m, ctx).ok());
  const Value* c = m->graph->FindValue("ninf");
  ASSERT_TRUE(c && c->data);
  EXPECT_TRUE(std::isinf(c->data->ScalarAt(0)) && c->data->ScalarAt(0) < 0);
}

}  // namespace
}  // namespace kiln
