// post_act_residual: a residual Add after an activated dense convolution becomes its epilogue, Z after the
// activation. Oracles: the graph before the pass on the CPU reference (bit for bit: the fused reference
// rounds the activation, then adds Z, as the unfused ops do), and a YOLO bottleneck's FP16 GPU build.
#include "passes/post_act_residual.h"

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

AttributeMap Act(const char* act, int64_t group = 1, bool pads = true) {
  AttributeMap a = {{"activation", Attribute::FromString(act)}, {"group", Attribute::FromInt(group)}};
  if (pads) a["pads"] = Attribute::FromInts({1, 1, 1, 1});
  if (std::string(act) == "LeakyRelu") a["activation_alpha"] = Attribute::FromFloat(0.1f);
  return a;
}

TEST(PostActResidual, DenseConvolutionsTakeTheResidualAfterTheirActivation) {
  for (DataType dt : {DataType::kFloat, DataType::kFloat16}) {
    for (const char* act : {"Swish", "LeakyRelu", "Relu"}) {
      SCOPED_TRACE(std::string(DataTypeName(dt)) + " " + act);
      GraphBuilder b(dt);
      Value* x = b.Input("x", Shape({Dim::Symbol("n"), 4, 6, 6}));
      Value* c =
          b.Op("FusedConv", "conv", {x, b.Const("w", {4, 4, 3, 3}), b.Const("b", {4})}, Act(act), "kiln");
      b.Output(b.Op("Add", "residual", {x, c}));
      auto m = RunPassAndCompare(*b.Done(), RunPostActResidual, 2);
      EXPECT_EQ(CountOps(*m, "Add"), 0);
      ASSERT_EQ(CountOps(*m, "FusedConv"), 1);
      EXPECT_EQ(m->graph->nodes()[0]->attr("residual_after_activation")->i, 1);
    }
  }
}

// Depthwise and 1x1 convolutions (kiln's kernels and the products add Z before the activation), a convolution
// without an activation (fuse_gpu's order is the same), one whose output is read elsewhere, and one that
// already has a residual keep their Adds.
TEST(PostActResidual, OtherAddsStay) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({2, 4, 6, 6}));
  auto conv = [&](const std::string& name, std::vector<int64_t> w, AttributeMap attrs, Value* z = nullptr) {
    std::vector<Value*> in = {x, b.Const(name + "_w", std::move(w)), b.Const(name + "_b", {4})};
    if (z) in.push_back(z);
    return b.Op("FusedConv", name, in, std::move(attrs), "kiln");
  };
  b.Output(b.Op("Add", "a0", {x, conv("dw", {4, 1, 3, 3}, Act("Relu", 4))}));
  b.Output(b.Op("Add", "a1", {x, conv("pw", {4, 4, 1, 1}, Act("Relu", 1, false))}));
  b.Output(b.Op("Add", "a2", {x, conv("plain", {4, 4, 3, 3}, Act(""))}));
  Value* shared = conv("shared", {4, 4, 3, 3}, Act("Relu"));
  b.Output(shared);
  b.Output(b.Op("Add", "a3", {x, shared}));
  b.Output(b.Op("Add", "a4", {x, conv("has_z", {4, 4, 3, 3}, Act("Relu"), x)}));
  auto m = RunPassAndCompare(*b.Done(), RunPostActResidual, 2);
  EXPECT_EQ(CountOps(*m, "Add"), 5);
}

// A YOLOv5/v8 bottleneck, x + SiLU(conv3x3(SiLU(conv1x1(x)))), in an FP16 GPU build: no Add is left.
TEST(PostActResidual, YoloBottleneckIsTwoKernels) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("n"), 8, 8, 8}));
  auto silu = [&](const std::string& name, Value* v) {
    return b.Op("Mul", name, {v, b.Op("Sigmoid", name + "_s", {v})});
  };
  Value* c1 = silu("act1", b.Op("Conv", "cv1", {x, b.Const("w1", {8, 8, 1, 1}), b.Const("b1", {8})}));
  Value* c2 = silu("act2", b.Op("Conv", "cv2", {c1, b.Const("w2", {8, 8, 3, 3}), b.Const("b2", {8})},
                                {{"pads", Attribute::FromInts({1, 1, 1, 1})}}));
  b.Output(b.Op("Add", "shortcut", {x, c2}));
  std::unique_ptr<Model> m = b.Done();
  ASSERT_TRUE(testing_build::RunGpuBuild(*m));
  EXPECT_EQ(CountOps(*m, "Add") + CountOps(*m, "Pointwise"), 0) << PrintGraph(*m);
  EXPECT_EQ(CountOps(*m, "FusedConvNhwc"), 2) << PrintGraph(*m);
}

}  // namespace
}  // namespace kiln
