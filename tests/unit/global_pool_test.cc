// global_pool: a ReduceMean over the spatial axes becomes a GlobalAveragePool. Oracles: the graph before the
// pass on the CPU reference, and the GPU build of a timm squeeze-and-excitation block (no Transpose back to
// NCHW for the mean, the gate fused).
#include "passes/global_pool.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "build/build_passes.h"
#include "graph_builder.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

AttributeMap Keep(int64_t keep) { return {{"keepdims", Attribute::FromInt(keep)}}; }

TEST(GlobalPool, SpatialMeansBecomePools) {
  for (int64_t keep : {1, 0}) {
    SCOPED_TRACE(keep ? "keepdims" : "flat");
    GraphBuilder b;
    Value* x = b.Input("x", Shape({Dim::Symbol("n"), 6, 5, 7}));
    b.Output(b.Op("ReduceMean", "mean", {x, b.Int64s("axes", {-1, 2})}, Keep(keep)));
    b.Opset(18);
    auto m = RunPassAndCompare(*b.Done(), RunGlobalPool, 3, 1e-6);
    EXPECT_EQ(CountOps(*m, "GlobalAveragePool"), 1);
    EXPECT_EQ(CountOps(*m, "ReduceMean"), 0);
    EXPECT_EQ(CountOps(*m, "Reshape"), keep ? 0 : 1);
  }
  {  // opset 13: axes as an attribute; a volume (rank 5)
    GraphBuilder b;
    Value* x = b.Input("x", Shape({2, 4, 3, 5, 2}));
    AttributeMap attrs = Keep(1);
    attrs["axes"] = Attribute::FromInts({4, 2, 3});
    b.Opset(13);
    b.Output(b.Op("ReduceMean", "mean", {x}, attrs));
    auto m = RunPassAndCompare(*b.Done(), RunGlobalPool, 2, 1e-6);
    EXPECT_EQ(CountOps(*m, "GlobalAveragePool"), 1);
  }
}

TEST(GlobalPool, OtherMeansStay) {
  GraphBuilder b;
  b.Opset(18);
  Value* x = b.Input("x", Shape({2, 6, 5, 7}));
  b.Output(b.Op("ReduceMean", "channels_too", {x, b.Int64s("a0", {1, 2, 3})}, Keep(1)));
  b.Output(b.Op("ReduceMean", "one_axis", {x, b.Int64s("a1", {3})}, Keep(1)));
  b.Output(b.Op("ReduceMean", "all", {x}, Keep(1)));  // no axes: every axis
  b.Output(b.Op("ReduceMean", "rows", {b.Input("r", Shape({4, 9})), b.Int64s("a2", {1})}, Keep(1)));
  // A LayerNorm's mean over the hidden axis of [B, S, H] (rank 3: the last axis is no spatial one).
  b.Output(b.Op("ReduceMean", "hidden", {b.Input("h", Shape({2, 5, 8})), b.Int64s("a3", {-1})}, Keep(1)));
  auto m = RunPassAndCompare(*b.Done(), RunGlobalPool, 2, 1e-6);
  EXPECT_EQ(CountOps(*m, "ReduceMean"), 5);
}

// timm's SqueezeExcite after a convolution, in an FP16 GPU build: y = conv(x); y · sigmoid(expand(relu(
// reduce(mean(y))))). The mean reads the channels-last map in place (no Transpose of it) and the gate's last
// 1x1 and Mul are one kiln.GateMulNhwc.
TEST(GlobalPool, TimmSqueezeExciteRunsChannelsLast) {
  GraphBuilder b;
  b.Opset(17);
  Value* x = b.Input("x", Shape({Dim::Symbol("n"), 16, 8, 8}));
  Value* y = b.Op("Conv", "conv", {x, b.Const("w", {16, 16, 1, 1}), b.Const("bias", {16})});
  AttributeMap mean_attrs = Keep(1);
  mean_attrs["axes"] = Attribute::FromInts({2, 3});
  Value* s = b.Op("ReduceMean", "se/mean", {y}, mean_attrs);
  s = b.Op("Relu", "se/act",
           {b.Op("Conv", "se/reduce", {s, b.Const("wr", {4, 16, 1, 1}), b.Const("br", {4})})});
  s = b.Op("Sigmoid", "se/gate",
           {b.Op("Conv", "se/expand", {s, b.Const("we", {16, 4, 1, 1}), b.Const("be", {16})})});
  b.Output(b.Op("Mul", "se/scale", {y, s}));
  std::unique_ptr<Model> m = b.Done();
  ASSERT_TRUE(testing_build::RunGpuBuild(*m));
  // The model's input to NHWC and its output back; as a ReduceMean, the mean read a third (the map to NCHW).
  EXPECT_EQ(CountOps(*m, "Transpose"), 2) << PrintGraph(*m);
  EXPECT_EQ(CountOps(*m, "GateMulNhwc"), 1) << PrintGraph(*m);
  EXPECT_EQ(CountOps(*m, "ReduceMean"), 0);
}

}  // namespace
}  // namespace kiln
