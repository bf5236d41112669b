// fuse_batchnorm through a flattening: LeViT's LinearNorm (Linear on tokens, Flatten(0, 1), BatchNorm1d,
// reshape back). Oracle: the graph before the pass on the CPU reference (the other forms: golden IR in
// passes_rewrite_test.cc).
#include "passes/fuse_batchnorm.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "graph_builder.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

// Running statistics away from (0, 1), so that a BN left out or folded twice shows.
std::vector<Value*> Bn(GraphBuilder& b, const std::string& p, int64_t c) {
  std::vector<double> var(static_cast<size_t>(c)), mean(static_cast<size_t>(c));
  for (int64_t i = 0; i < c; ++i) {
    var[static_cast<size_t>(i)] = 0.5 + 0.25 * static_cast<double>(i);
    mean[static_cast<size_t>(i)] = 0.1 * static_cast<double>(i) - 0.3;
  }
  return {b.Const(p + "gamma", {c}), b.Const(p + "beta", {c}),
          b.Fixed(p + "mean", passes::FromDoubles(DataType::kFloat, {c}, mean)),
          b.Fixed(p + "var", passes::FromDoubles(DataType::kFloat, {c}, var))};
}

TEST(FuseBatchNorm, ThroughTheFlatteningOfTokens) {
  for (bool with_bias : {false, true}) {
    for (bool reshape : {false, true}) {
      SCOPED_TRACE(std::string(with_bias ? "bias" : "no bias") + (reshape ? ", Reshape" : ", Flatten"));
      GraphBuilder b;
      Value* x = b.Input("x", Shape({Dim::Symbol("n"), 7, 8}));
      Value* y = b.Op("MatMul", "linear", {x, b.Const("w", {8, 6})});
      if (with_bias) y = b.Op("Add", "bias", {y, b.Const("b", {6})});
      Value* flat = reshape ? b.Op("Reshape", "flat", {y, b.Int64s("rows", {-1, 6})})
                            : b.Op("Flatten", "flat", {y}, {{"axis", Attribute::FromInt(2)}});
      std::vector<Value*> in = {flat};
      for (Value* v : Bn(b, "bn_", 6)) in.push_back(v);
      Value* bn = b.Op("BatchNormalization", "bn", in);
      b.Output(b.Op("Reshape", "back", {bn, b.Int64s("tokens", {-1, 7, 6})}));
      auto m = RunPassAndCompare(*b.Done(), RunFuseBatchNorm, 3, 1e-5);
      EXPECT_EQ(CountOps(*m, "BatchNormalization"), 0);
      EXPECT_EQ(CountOps(*m, "Add"), 1) << "the bias (made when there was none)";
    }
  }
}

// A flattening that mixes the channels into rows ([n, 7, 8] → [n·8, 7] is no per-column map of the product)
// keeps its BN.
TEST(FuseBatchNorm, FlatteningThatMovesTheChannelsStays) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({2, 6, 8}));
  Value* y = b.Op("MatMul", "linear", {x, b.Const("w", {8, 6})});
  Value* flat = b.Op("Reshape", "flat", {y, b.Int64s("rows", {12, 6})});
  Value* mixed = b.Op("Reshape", "mixed",
                      {b.Op("MatMul", "linear2", {x, b.Const("w2", {8, 6})}), b.Int64s("rows2", {36, 2})});
  std::vector<Value*> in = {flat};
  for (Value* v : Bn(b, "bn_", 6)) in.push_back(v);
  b.Output(b.Op("BatchNormalization", "bn", in));
  std::vector<Value*> in2 = {mixed};
  for (Value* v : Bn(b, "bn2_", 2)) in2.push_back(v);
  b.Output(b.Op("BatchNormalization", "bn2", in2));
  auto m = RunPassAndCompare(*b.Done(), RunFuseBatchNorm, 2, 1e-5);
  EXPECT_EQ(CountOps(*m, "BatchNormalization"), 1) << "bn2 stays";
}

}  // namespace
}  // namespace kiln
