// gate_into_projection: an SE gate before a 1x1 projection scales the projection's weights per sample.
// Oracle: the model before the GPU build on the CPU reference (FP16 build: within FP16 rounding), and the
// build with the gate kept (GateMulNhwc) where the map is too small for it to pay.
#include "passes/gate_into_projection.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "build/build_passes.h"
#include "graph_builder.h"
#include "reference/compare.h"
#include "reference/executor.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;

// An MBConv tail (EfficientNet's): expand 1x1 + SiLU, SE gate (pool, reduce + SiLU, expand + Sigmoid, Mul),
// projection 1x1 and the residual, on a `side`² map of 16 channels expanded to 64.
std::unique_ptr<Model> MbConvTail(int64_t side) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("n"), 16, side, side}));
  auto silu = [&](const std::string& name, Value* v) {
    return b.Op("Mul", name, {v, b.Op("Sigmoid", name + "_s", {v})});
  };
  Value* e =
      silu("expand_act", b.Op("Conv", "expand", {x, b.Const("we", {64, 16, 1, 1}), b.Const("be", {64})}));
  Value* pooled = b.Op("GlobalAveragePool", "pool", {e});
  Value* r =
      silu("reduce_act", b.Op("Conv", "reduce", {pooled, b.Const("wr", {4, 64, 1, 1}), b.Const("br", {4})}));
  Value* gate = b.Op("Sigmoid", "gate",
                     {b.Op("Conv", "gate_conv", {r, b.Const("wg", {64, 4, 1, 1}), b.Const("bg", {64})})});
  Value* scaled = b.Op("Mul", "scale", {e, gate});
  Value* p = b.Op("Conv", "project", {scaled, b.Const("wp", {16, 64, 1, 1}), b.Const("bp", {16})});
  b.Output(b.Op("Add", "residual", {p, x}));
  return b.Done();
}

// Built for batch 1024 (the profile's opt), the 8x8 map saves 2·1024·(64 − 16)·64 halves (12 MB) and folds;
// the 3x3 map has fewer pixels than outputs, and at batch 1 (no profile) the 8x8 saves too little: the gate
// stays. Either way the built graph computes what the model does, at batch 2.
TEST(GateIntoProjection, TheProjectionReadsTheUngatedMap) {
  for (int64_t side : {8, 3}) {
    for (bool profile : {true, false}) {
      SCOPED_TRACE("side " + std::to_string(side) + (profile ? ", batch 1024" : ", no profile"));
      const bool folds = side == 8 && profile;
      std::unique_ptr<Model> before = MbConvTail(side), built = CloneModel(*before);
      BuildOptions opts;
      if (profile)
        opts.profiles["x"] = ShapeRange{{1, 16, side, side}, {1024, 16, side, side}, {1024, 16, side, side}};
      ASSERT_TRUE(testing_build::RunGpuBuild(*built, opts));
      EXPECT_EQ(CountOps(*built, "GateMulNhwc"), folds ? 0 : 1) << PrintGraph(*built);
      EXPECT_EQ(CountOps(*built, "FusedMatMul"), folds ? 1 : 0) << PrintGraph(*built);
      auto feed = testing_build::RandomFeed(*before, 2);
      auto want = ReferenceExecutor(*before).Run(feed);
      auto got = ReferenceExecutor(*built).Run(feed);
      ASSERT_TRUE(want.ok() && got.ok()) << (want.ok() ? got.status().ToString() : want.status().ToString());
      const Tensor& w = (*want)[0].tensor;
      Comparison cmp = CompareTensors(w, (*got)[0].tensor, Tolerance::RelL2(5e-3));
      EXPECT_LE(cmp.rel_l2, 5e-3) << cmp.message;
    }
  }
}

}  // namespace
}  // namespace kiln
