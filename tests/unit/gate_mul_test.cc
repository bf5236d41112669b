// Tests for a squeeze-and-excitation gate's last convolution and its Mul as one node (src/passes/gate_mul.h)
// and kiln.GateMulNhwc's CPU reference (src/ops/kiln_gate_mul.cc): MobileNetV3's gate (HardSigmoid, gate
// first in the Mul) and EfficientNet's (Sigmoid, gate second), FP32 and FP16 builds, become one node that
// computes bit for bit what the pair did; a gate read elsewhere, a gate that is not per channel, and a Mul
// that broadcasts X keep the pair.
#include "passes/gate_mul.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "graph_builder.h"
#include "passes/fp16.h"
#include "passes/fuse_gpu.h"
#include "passes/layout_nhwc.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::FindOp;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

// The build's passes before this one on `m`: fusion, channels-last, FP16 when asked.
void BuildUpTo(Model& m, bool fp16) {
  PassContext ctx;
  ASSERT_TRUE(RunFuseForGpu(m, ctx).ok());
  ASSERT_TRUE(RunChannelsLast(m, ctx).ok());
  if (fp16) {
    ASSERT_TRUE(RunConvertToFp16(m, ctx).ok());
  }
}

struct Gate {
  std::string act = "HardSigmoid";  // or Sigmoid
  bool gate_first = true;           // Mul(gate, x), as torchvision's SqueezeExcitation writes it
  bool gate_is_output = false;      // the gate read by a second consumer (a graph output)
};

// x [batch, 24, 7, 9] → depthwise 3x3 conv → y; GlobalAveragePool(y) → 1x1 conv to 8 → ReLU → 1x1 conv to 24
// → activation = gate; Mul(gate, y) → 1x1 conv to 16.
std::unique_ptr<Model> SqueezeExcite(const Gate& o) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), 24, 7, 9}));
  Value* y = b.Op("Conv", "dw", {x, b.Const("wd", {24, 1, 3, 3}), b.Const("bd", {24})},
                  {{"group", Attribute::FromInt(24)}, {"pads", Attribute::FromInts({1, 1, 1, 1})}});
  Value* pooled = b.Op("GlobalAveragePool", "pool", {y});
  Value* squeezed =
      b.Op("Relu", "relu", {b.Op("Conv", "fc1", {pooled, b.Const("w1", {8, 24, 1, 1}), b.Const("b1", {8})})});
  Value* logits = b.Op("Conv", "fc2", {squeezed, b.Const("w2", {24, 8, 1, 1}), b.Const("b2", {24})});
  Value* gate = o.act == "Sigmoid"
                    ? b.Op("Sigmoid", "act", {logits})
                    : b.Op("HardSigmoid", "act", {logits}, {{"alpha", Attribute::FromFloat(1.f / 6)}});
  Value* scaled = o.gate_first ? b.Op("Mul", "scale", {gate, y}) : b.Op("Mul", "scale", {y, gate});
  b.Output(b.Op("Conv", "project", {scaled, b.Const("wp", {16, 24, 1, 1})}));
  if (o.gate_is_output) b.Output(gate);
  return b.Done();
}

TEST(GateMul, MobileNetV3GateBecomesOneNode) {
  for (bool fp16 : {false, true}) {
    SCOPED_TRACE(fp16 ? "fp16" : "fp32");
    std::unique_ptr<Model> m = SqueezeExcite({});
    BuildUpTo(*m, fp16);
    const int convs = CountOps(*m, "FusedConvNhwc");
    ASSERT_EQ(CountOps(*m, "Mul"), 1);
    auto f = RunPassAndCompare(*m, RunFuseGateMul, 2, 0.0);
    EXPECT_EQ(CountOps(*f, "Mul"), 0);
    EXPECT_EQ(CountOps(*f, "FusedConvNhwc"), convs - 1);
    const Node* n = FindOp(*f, "GateMulNhwc");
    ASSERT_TRUE(n);
    EXPECT_EQ(n->domain, "kiln");
    ASSERT_EQ(n->num_inputs(), 4u);  // X, H, W, B
    EXPECT_EQ(n->input(2)->data->dims(), (std::vector<int64_t>{24, 1, 1, 8}));
    ASSERT_TRUE(n->attr("activation"));
    EXPECT_EQ(n->attr("activation")->s, "HardSigmoid");
  }
}

TEST(GateMul, EfficientNetGateSecondInTheMul) {
  Gate o;
  o.act = "Sigmoid";
  o.gate_first = false;
  std::unique_ptr<Model> m = SqueezeExcite(o);
  BuildUpTo(*m, true);
  auto f = RunPassAndCompare(*m, RunFuseGateMul, 3, 0.0);
  const Node* n = FindOp(*f, "GateMulNhwc");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->attr("activation")->s, "Sigmoid");
  EXPECT_EQ(CountOps(*f, "Mul"), 0);
}

TEST(GateMul, PairStaysWhenTheGateIsReadElsewhere) {
  Gate o;
  o.gate_is_output = true;
  std::unique_ptr<Model> m = SqueezeExcite(o);
  BuildUpTo(*m, false);
  auto f = RunPassAndCompare(*m, RunFuseGateMul, 2, 0.0);
  EXPECT_EQ(CountOps(*f, "GateMulNhwc"), 0);
  EXPECT_EQ(CountOps(*f, "Mul"), 1);
}

// Mul(X [x_dims], FusedConvNhwc(H [h_dims], W [k,1,1,8])) in FP16: how many GateMulNhwc the pass makes.
int GatesFused(const std::vector<int64_t>& x_dims, const std::vector<int64_t>& h_dims, int64_t k) {
  GraphBuilder b(DataType::kFloat16);
  Value* x = b.Input("x", Shape::Of(x_dims));
  Value* h = b.Input("h", Shape::Of(h_dims));
  Value* gate = b.Op("FusedConvNhwc", "fc2", {h, b.Const("w", {k, 1, 1, h_dims[3]})}, {}, "kiln");
  b.Output(b.Op("Mul", "scale", {x, gate}));
  auto f = RunPassAndCompare(*b.Done(), RunFuseGateMul, 2, 0.0);
  return CountOps(*f, "GateMulNhwc");
}

// Shapes the node does not take: a gate of one value per image broadcast over channels too, and a Mul whose
// output is larger than X (X broadcast over the gate's batch). The same graph with a per-channel gate fuses.
TEST(GateMul, PairStaysWhenItIsNotAChannelGate) {
  EXPECT_EQ(GatesFused({2, 5, 6, 16}, {2, 1, 1, 8}, 1), 0);   // gate [2,1,1,1]
  EXPECT_EQ(GatesFused({1, 5, 6, 16}, {2, 1, 1, 8}, 16), 0);  // gate [2,1,1,16], X [1,...]
  EXPECT_EQ(GatesFused({2, 5, 6, 16}, {2, 1, 1, 8}, 16), 1);
}

}  // namespace
}  // namespace kiln
