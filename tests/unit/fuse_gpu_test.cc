// Tests for the GPU fusion pass (src/passes/fuse_gpu.h) and kiln's fused ops
// (src/ops/kiln_fused.cc): golden IR after the pass, the cases it must leave
// alone, and numerics — every model runs through the ReferenceExecutor before
// and after the pass on random inputs and must give the same outputs (bit for
// bit for the conv epilogues; GELU's forms are in fuse_gpu_gelu_test.cc). Also the exported
// ResNet-50, EfficientNet-B0, MobileNetV2 and ViT-B/16 from the zoo fixture
// are there (tests/models/export_zoo.py).
#include "passes/fuse_gpu.h"

#include <gtest/gtest.h>

#include "graph_builder.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <random>

#include "ir/clone.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "onnx/import.h"
#include "passes/pipeline.h"
#include "passes/shape_inference.h"
#include "reference/executor.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::RandomFeed;
using testing_build::RandomTensor;
using testing_build::SimplifiedZooModel;
using Builder = testing_build::GraphBuilder;

std::unique_ptr<Model> FuseAndCompare(const Model& before, int64_t sym = 2, double tol = 0.0,
                                      const std::map<std::string, RtValue>* feed = nullptr) {
  return testing_build::RunPassAndCompare(before, RunFuseForGpu, sym, tol, feed);
}

const Shape kImage({Dim::Symbol("batch"), 4, 6, 6});

TEST(FuseGpu, ConvRelu) {
  Builder b;
  Value* x = b.Input("x", kImage);
  Value* c = b.Op("Conv", "conv", {x, b.Const("w", {8, 4, 3, 3}), b.Const("b", {8})},
                  {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  b.Output(b.Op("Relu", "relu", {c}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m);
  EXPECT_EQ(PrintGraph(*f),
            "opset ai.onnx=17, kiln=1\n"
            "graph main {\n"
            "  input %x: float32[batch,4,6,6]\n"
            "  init %w: float32[8,4,3,3]\n"
            "  init %b: float32[8]\n"
            "  %relu = kiln.FusedConv[activation=\"Relu\", pads=[1, 1, 1, 1]](%x, %w, %b)  # conv\n"
            "  output %relu: float32[batch,8,6,6]\n"
            "}\n");
}

TEST(FuseGpu, ConvAddReluResidual) {
  // y = relu(conv2(conv1(x)) + x): conv1 feeds a Conv (not fused), conv2 takes the Add and the Relu.
  Builder b;
  Value* x = b.Input("x", kImage);
  Value* c1 = b.Op("Conv", "conv1", {x, b.Const("w1", {4, 4, 3, 3})}, {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  Value* c2 = b.Op("Conv", "conv2", {c1, b.Const("w2", {4, 4, 1, 1}), b.Const("b2", {4})});
  Value* add = b.Op("Add", "add", {c2, x});
  b.Output(b.Op("Relu", "relu", {add}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m);
  EXPECT_EQ(PrintGraph(*f),
            "opset ai.onnx=17, kiln=1\n"
            "graph main {\n"
            "  input %x: float32[batch,4,6,6]\n"
            "  init %w1: float32[4,4,3,3]\n"
            "  init %w2: float32[4,4,1,1]\n"
            "  init %b2: float32[4]\n"
            "  %conv1 = Conv[pads=[1, 1, 1, 1]](%x, %w1)  # conv1\n"
            "  %relu = kiln.FusedConv[activation=\"Relu\"](%conv1, %w2, %b2, %x)  # conv2\n"
            "  output %relu: float32[batch,4,6,6]\n"
            "}\n");
}

TEST(FuseGpu, TwoConvResidualLaterConvTakesTheAdd) {
  // ResNet's downsample block: Add(conv_a(x), conv_b(x)) → Relu, no bias on the shortcut.
  Builder b;
  Value* x = b.Input("x", kImage);
  Value* a = b.Op("Conv", "conv_a", {x, b.Const("wa", {8, 4, 1, 1})}, {{"strides", Attribute::FromInts({2, 2})}});
  Value* s = b.Op("Conv", "conv_b", {x, b.Const("wb", {8, 4, 1, 1})}, {{"strides", Attribute::FromInts({2, 2})}});
  Value* add = b.Op("Add", "add", {a, s});
  b.Output(b.Op("Relu", "relu", {add}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m);
  EXPECT_EQ(PrintGraph(*f),
            "opset ai.onnx=17, kiln=1\n"
            "graph main {\n"
            "  input %x: float32[batch,4,6,6]\n"
            "  init %wa: float32[8,4,1,1]\n"
            "  init %wb: float32[8,4,1,1]\n"
            "  %conv_a = Conv[strides=[2, 2]](%x, %wa)  # conv_a\n"
            "  %relu = kiln.FusedConv[activation=\"Relu\", strides=[2, 2]](%x, %wb, _, %conv_a)  # conv_b\n"
            "  output %relu: float32[batch,8,3,3]\n"
            "}\n");
}

TEST(FuseGpu, ConvAddWithoutRelu) {
  Builder b;
  Value* x = b.Input("x", kImage);
  Value* z = b.Input("z", Shape({Dim::Symbol("batch"), 8, 6, 6}));
  Value* c = b.Op("Conv", "conv", {x, b.Const("w", {8, 4, 3, 3})}, {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  Value* add = b.Op("Add", "add", {z, c});  // Z first
  b.Output(b.Op("Tanh", "tanh", {add}));    // not an activation FusedConv takes
  auto m = b.Done();
  auto f = FuseAndCompare(*m);
  EXPECT_EQ(PrintGraph(*f),
            "opset ai.onnx=17, kiln=1\n"
            "graph main {\n"
            "  input %x: float32[batch,4,6,6]\n"
            "  input %z: float32[batch,8,6,6]\n"
            "  init %w: float32[8,4,3,3]\n"
            "  %add = kiln.FusedConv[activation=\"\", pads=[1, 1, 1, 1]](%x, %w, _, %z)  # conv\n"
            "  %tanh = Tanh(%add)  # tanh\n"
            "  output %tanh: float32[batch,8,6,6]\n"
            "}\n");
}

TEST(FuseGpu, KeepsGraphOutputNames) {
  // The Add's output is a graph output: Conv+Add fuse (its name stays), the Relu stays apart.
  Builder b;
  Value* x = b.Input("x", kImage);
  Value* c = b.Op("Conv", "conv", {x, b.Const("w", {4, 4, 3, 3})}, {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  Value* add = b.Op("Add", "add", {c, x});
  b.Output(add);
  b.Output(b.Op("Relu", "relu", {add}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m);
  ASSERT_EQ(f->graph->outputs.size(), 2u);
  EXPECT_EQ(f->graph->outputs[0]->name(), "add");
  EXPECT_EQ(f->graph->outputs[0]->producer()->op_type, "FusedConv");
  EXPECT_EQ(f->graph->outputs[1]->name(), "relu");
  EXPECT_EQ(f->graph->outputs[1]->producer()->op_type, "Relu");
}

TEST(FuseGpu, LeavesUnsafeChainsAlone) {
  Builder b;
  Value* x = b.Input("x", kImage);
  // 1. Conv output used twice.
  Value* c1 = b.Op("Conv", "c1", {x, b.Const("w1", {4, 4, 1, 1})});
  Value* r1 = b.Op("Relu", "r1", {c1});
  Value* s1 = b.Op("Sigmoid", "s1", {c1});
  // 2. Conv output is a graph output.
  Value* c2 = b.Op("Conv", "c2", {r1, b.Const("w2", {4, 4, 1, 1})});
  b.Output(c2);
  Value* r2 = b.Op("Relu", "r2", {c2});
  // 3. Add that broadcasts Z (per-channel, not the conv output's shape).
  Value* c3 = b.Op("Conv", "c3", {r2, b.Const("w3", {4, 4, 1, 1})});
  Value* z3 = b.Input("z3", Shape({1, 4, 1, 1}));
  Value* a3 = b.Op("Add", "a3", {c3, z3});
  // 4. Z with a different symbolic batch.
  Value* c4 = b.Op("Conv", "c4", {a3, b.Const("w4", {4, 4, 1, 1})});
  Value* z4 = b.Input("z4", Shape({Dim::Symbol("other"), 4, 6, 6}));
  Value* a4 = b.Op("Add", "a4", {c4, z4});
  // 5. MatMul with non-constant B; MatMul with a bias that is not per column.
  Value* p = b.Input("p", Shape({3, 5}));
  Value* q = b.Input("q", Shape({5, 7}));
  Value* mm1 = b.Op("MatMul", "mm1", {p, q});
  Value* add1 = b.Op("Add", "add1", {mm1, b.Const("bias1", {7})});
  Value* mm2 = b.Op("MatMul", "mm2", {p, b.Const("w5", {5, 7})});
  Value* add2 = b.Op("Add", "add2", {mm2, b.Const("bias2", {3, 1})});
  for (Value* v : {s1, a4, add1, add2}) b.Output(v);
  auto m = b.Done();
  std::string printed = PrintGraph(*m);
  auto f = FuseAndCompare(*m);
  EXPECT_EQ(PrintGraph(*f), printed);
  EXPECT_EQ(f->opsets.count("kiln"), 0u);
}

TEST(FuseGpu, MatMulBiasRelu) {
  // Transformer MLP: [batch, seq, 16] x [16, 8] + bias (first Add input, as torch exports it) → Relu;
  // a second MatMul with a [1, 8] bias and no activation.
  Builder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), Dim::Symbol("seq"), 16}));
  Value* mm = b.Op("MatMul", "fc1", {x, b.Const("w1", {16, 8})});
  Value* add = b.Op("Add", "fc1_bias", {b.Const("b1", {8}), mm});
  Value* r = b.Op("Relu", "act", {add});
  Value* mm2 = b.Op("MatMul", "fc2", {r, b.Const("w2", {8, 8})});
  b.Output(b.Op("Add", "fc2_bias", {mm2, b.Const("b2", {1, 8})}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m, 3);
  EXPECT_EQ(PrintGraph(*f),
            "opset ai.onnx=17, kiln=1\n"
            "graph main {\n"
            "  input %x: float32[batch,seq,16]\n"
            "  init %w1: float32[16,8]\n"
            "  init %b1: float32[8]\n"
            "  init %w2: float32[8,8]\n"
            "  init %b2_1: float32[8]\n"
            "  %act = kiln.FusedMatMul[activation=\"Relu\"](%x, %w1, %b1)  # fc1\n"
            "  %fc2_bias = kiln.FusedMatMul[activation=\"\"](%act, %w2, %b2_1)  # fc2\n"
            "  output %fc2_bias: float32[batch,seq,8]\n"
            "}\n");
}

TEST(FuseGpu, MatMulBiasResidual) {
  // Transformer MLP output: x + (h·W + b), the residual on either side of the Add; then a Relu one.
  Builder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), Dim::Symbol("seq"), 8}));
  Value* h = b.Input("h", Shape({Dim::Symbol("batch"), Dim::Symbol("seq"), 16}));
  Value* mm = b.Op("MatMul", "fc", {h, b.Const("w", {16, 8})});
  Value* add = b.Op("Add", "fc_bias", {b.Const("b", {8}), mm});
  Value* res = b.Op("Add", "residual", {x, add});
  Value* mm2 = b.Op("MatMul", "fc2", {res, b.Const("w2", {8, 8})});
  Value* add2 = b.Op("Add", "fc2_bias", {mm2, b.Const("b2", {8})});
  b.Output(b.Op("Relu", "act", {b.Op("Add", "residual2", {add2, res})}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m, 3);
  EXPECT_EQ(PrintGraph(*f),
            "opset ai.onnx=17, kiln=1\n"
            "graph main {\n"
            "  input %x: float32[batch,seq,8]\n"
            "  input %h: float32[batch,seq,16]\n"
            "  init %w: float32[16,8]\n"
            "  init %b: float32[8]\n"
            "  init %w2: float32[8,8]\n"
            "  init %b2: float32[8]\n"
            "  %residual = kiln.FusedMatMul[activation=\"\"](%h, %w, %b, %x)  # fc\n"
            "  %act = kiln.FusedMatMul[activation=\"Relu\"](%residual, %w2, %b2, %residual)  # fc2\n"
            "  output %act: float32[batch,seq,8]\n"
            "}\n");
}

TEST(FuseGpu, BiasFreeMatMulTakesAReluOrAResidual) {
  // T5/Llama: Linear layers without bias. A Relu or a residual Add still fuses
  // (cuBLASLt's RELU epilogue, C with beta = 1); a bare MatMul stays.
  Builder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), Dim::Symbol("seq"), 8}));
  Value* wi = b.Op("MatMul", "wi", {x, b.Const("w_in", {8, 16})});
  Value* h = b.Op("Relu", "relu", {wi});
  Value* wo = b.Op("MatMul", "wo", {h, b.Const("w_out", {16, 8})});
  Value* sum = b.Op("Add", "residual", {x, wo});
  b.Output(b.Op("MatMul", "head", {sum, b.Const("w_head", {8, 4})}));
  auto f = FuseAndCompare(*b.Done(), 3);
  EXPECT_EQ(PrintGraph(*f),
            "opset ai.onnx=17, kiln=1\n"
            "graph main {\n"
            "  input %x: float32[batch,seq,8]\n"
            "  init %w_in: float32[8,16]\n"
            "  init %w_out: float32[16,8]\n"
            "  init %w_head: float32[8,4]\n"
            "  %relu = kiln.FusedMatMul[activation=\"Relu\"](%x, %w_in)  # wi\n"
            "  %residual = kiln.FusedMatMul[activation=\"\"](%relu, %w_out, _, %x)  # wo\n"
            "  %head = MatMul(%residual, %w_head)  # head\n"
            "  output %head: float32[batch,seq,4]\n"
            "}\n");
}

// torch's 2-D Linear (Gemm, transB 1) and a ReLU, as VGG's and AlexNet's heads write them: one FusedMatMul
// with B transposed once; a Gemm without the ReLU, with alpha 2 or a full [M, N] C stays.
TEST(FuseGpu, GemmReluHead) {
  Builder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), 12}));
  Value* h = b.Op("Gemm", "fc1", {x, b.Const("w1", {16, 12}), b.Const("b1", {16})},
                  {{"transB", Attribute::FromInt(1)}});
  Value* r = b.Op("Relu", "relu1", {h});
  Value* plain = b.Op("Gemm", "fc2", {r, b.Const("w2", {8, 16}), b.Const("b2", {8})},
                      {{"transB", Attribute::FromInt(1)}});
  Value* scaled = b.Op("Gemm", "fc3", {plain, b.Const("w3", {8, 8})}, {{"alpha", Attribute::FromFloat(2.f)}});
  b.Output(b.Op("Relu", "relu3", {scaled}));
  Value* full = b.Op("Gemm", "fc4", {x, b.Const("w4", {12, 4}), b.Const("c4", {2, 4})});
  b.Output(b.Op("Relu", "relu4", {full}));
  auto f = FuseAndCompare(*b.Done(), 2, 1e-6);
  EXPECT_EQ(CountOps(*f, "FusedMatMul"), 1) << PrintGraph(*f);
  EXPECT_EQ(CountOps(*f, "Gemm"), 3);
  EXPECT_EQ(CountOps(*f, "Relu"), 2);
}

TEST(FuseGpu, Float16AndDoubleAreExact) {
  for (DataType dt : {DataType::kFloat16, DataType::kDouble}) {
    Builder b(dt);
    Value* x = b.Input("x", kImage);
    Value* c = b.Op("Conv", "conv", {x, b.Const("w", {4, 4, 3, 3}), b.Const("b", {4})},
                    {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
    Value* add = b.Op("Add", "add", {c, x});
    Value* r = b.Op("Relu", "relu", {add});
    Value* mm = b.Op("MatMul", "mm", {r, b.Const("wm", {6, 5})});
    b.Output(b.Op("Relu", "out", {b.Op("Add", "bias", {mm, b.Const("bm", {5})})}));
    auto m = b.Done();
    auto f = FuseAndCompare(*m);  // tolerance 0: the reference rounds per step like the unfused graph
    EXPECT_EQ(CountOps(*f, "FusedConv"), 1);
    EXPECT_EQ(CountOps(*f, "FusedMatMul"), 1);
    EXPECT_EQ(f->graph->num_nodes(), 2u);
  }
}

const AttributeMap kPads1 = {{"pads", Attribute::FromInts({1, 1, 1, 1})}};

// EfficientNet's Swish, v * sigmoid(v), after a conv and after a residual Add
// (the Mul's operands in either order).
TEST(FuseGpu, ConvSwish) {
  Builder b;
  Value* x = b.Input("x", kImage);
  Value* c1 = b.Op("Conv", "conv1", {x, b.Const("w1", {4, 4, 3, 3}), b.Const("b1", {4})}, kPads1);
  Value* m1 = b.Op("Mul", "swish1", {c1, b.Op("Sigmoid", "sig1", {c1})});
  Value* c2 = b.Op("Conv", "conv2", {m1, b.Const("w2", {4, 4, 1, 1})});
  Value* a2 = b.Op("Add", "add2", {c2, x});
  b.Output(b.Op("Mul", "swish2", {b.Op("Sigmoid", "sig2", {a2}), a2}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m);
  EXPECT_EQ(PrintGraph(*f),
            "opset ai.onnx=17, kiln=1\n"
            "graph main {\n"
            "  input %x: float32[batch,4,6,6]\n"
            "  init %w1: float32[4,4,3,3]\n"
            "  init %b1: float32[4]\n"
            "  init %w2: float32[4,4,1,1]\n"
            "  %swish1 = kiln.FusedConv[activation=\"Swish\", pads=[1, 1, 1, 1]](%x, %w1, %b1)  # conv1\n"
            "  %swish2 = kiln.FusedConv[activation=\"Swish\"](%swish1, %w2, _, %x)  # conv2\n"
            "  output %swish2: float32[batch,4,6,6]\n"
            "}\n");
}

// MobileNetV2's ReLU6 (Clip with constant bounds, opset 11+), a Clip with only
// a max, and an SE gate (Conv → Sigmoid, the gate's Mul stays).
TEST(FuseGpu, ConvClipAndSigmoid) {
  Builder b;
  Value* x = b.Input("x", kImage);
  Value* c1 = b.Op("Conv", "conv1", {x, b.Const("w1", {4, 4, 3, 3}), b.Const("b1", {4})}, kPads1);
  Value* r6 = b.Op("Clip", "relu6", {c1, b.Scalar("zero", 0), b.Scalar("six", 6)});
  Value* c2 = b.Op("Conv", "conv2", {r6, b.Const("w2", {4, 4, 1, 1})});
  Value* k2 = b.Op("Clip", "clip_max", {c2, nullptr, b.Scalar("half", 0.5, {1})});
  Value* pooled = b.Op("GlobalAveragePool", "pool", {k2});
  Value* se = b.Op("Conv", "se", {pooled, b.Const("w3", {4, 4, 1, 1}), b.Const("b3", {4})});
  b.Output(b.Op("Mul", "gate", {k2, b.Op("Sigmoid", "se_sig", {se})}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m);
  EXPECT_EQ(
      PrintGraph(*f),
      "opset ai.onnx=17, kiln=1\n"
      "graph main {\n"
      "  input %x: float32[batch,4,6,6]\n"
      "  init %w1: float32[4,4,3,3]\n"
      "  init %b1: float32[4]\n"
      "  init %w2: float32[4,4,1,1]\n"
      "  init %w3: float32[4,4,1,1]\n"
      "  init %b3: float32[4]\n"
      "  %relu6 = kiln.FusedConv[activation=\"Clip\", activation_max=6.0, activation_min=0.0, "
      "pads=[1, 1, 1, 1]](%x, %w1, %b1)  # conv1\n"
      "  %clip_max = kiln.FusedConv[activation=\"Clip\", activation_max=0.5, activation_min=-inf](%relu6, "
      "%w2)  # conv2\n"
      "  %pool = GlobalAveragePool(%clip_max)  # pool\n"
      "  %se_sig = kiln.FusedConv[activation=\"Sigmoid\"](%pool, %w3, %b3)  # se\n"
      "  %gate = Mul(%clip_max, %se_sig)  # gate\n"
      "  output %gate: float32[batch,4,6,6]\n"
      "}\n");
}

// MobileNetV3's hard activations: HardSwish after a depthwise conv and a 1x1
// expansion, HardSigmoid (torch's alpha 1/6) after an SE gate's 1x1 conv, in
// float32 and float16, bit-exact against the unfused ops. A dense 3x3 conv keeps
// its HardSwish (cuDNN's graph API, which dense convs use, has none).
TEST(FuseGpu, ConvHardActivationsOnDepthwiseAnd1x1) {
  for (DataType dt : {DataType::kFloat, DataType::kFloat16}) {
    SCOPED_TRACE(DataTypeName(dt));
    Builder b(dt);
    Value* x = b.Input("x", kImage);
    Value* e = b.Op("Conv", "expand", {x, b.Const("we", {8, 4, 1, 1}), b.Const("be", {8})});
    Value* e_act = b.Op("HardSwish", "expand_hs", {e});
    Value* d = b.Op("Conv", "dw", {e_act, b.Const("wd", {8, 1, 3, 3}), b.Const("bd", {8})},
                    {{"group", Attribute::FromInt(8)}, {"pads", Attribute::FromInts({1, 1, 1, 1})}});
    Value* d_act = b.Op("HardSwish", "dw_hs", {d});
    Value* pooled = b.Op("GlobalAveragePool", "pool", {d_act});
    Value* se = b.Op("Conv", "se", {pooled, b.Const("ws", {8, 8, 1, 1}), b.Const("bs", {8})});
    Value* gate = b.Op("HardSigmoid", "se_hsig", {se},
                       {{"alpha", Attribute::FromFloat(1.f / 6)}, {"beta", Attribute::FromFloat(0.5f)}});
    Value* gated = b.Op("Mul", "gated", {d_act, gate});
    Value* dense = b.Op("Conv", "dense", {gated, b.Const("wc", {4, 8, 3, 3})}, kPads1);
    b.Output(b.Op("HardSwish", "dense_hs", {dense}));
    auto m = b.Done();
    auto f = FuseAndCompare(*m, 2);
    EXPECT_EQ(CountOps(*f, "FusedConv"), 3) << PrintGraph(*f);
    EXPECT_EQ(CountOps(*f, "HardSwish"), 1) << "the dense conv's stays";
    EXPECT_EQ(CountOps(*f, "HardSigmoid"), 0);
    for (const Node* n : f->graph->nodes()) {
      if (n->op_type != "FusedConv") continue;
      if (n->name == "se") {
        EXPECT_EQ(n->attr("activation")->s, "HardSigmoid");
        EXPECT_EQ(n->attr("activation_alpha")->f, 1.f / 6);
        EXPECT_EQ(n->attr("activation_beta")->f, 0.5f);
      } else if (n->name == "expand" || n->name == "dw") {
        EXPECT_EQ(n->attr("activation")->s, "HardSwish") << n->name;
      } else {
        EXPECT_EQ(n->attr("activation")->s, "") << n->name;
      }
    }
  }
}

// Before opset 11 Clip's bounds are attributes.
TEST(FuseGpu, ConvClipOpset10) {
  Builder b;
  b.Opset(10);
  Value* x = b.Input("x", kImage);
  Value* c = b.Op("Conv", "conv", {x, b.Const("w", {4, 4, 3, 3})}, kPads1);
  Value* a = b.Op("Add", "add", {c, x});
  b.Output(b.Op("Clip", "clip", {a}, {{"min", Attribute::FromFloat(-0.25f)}}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m);
  ASSERT_EQ(f->graph->num_nodes(), 1u);
  const Node* n = f->graph->nodes()[0];
  EXPECT_EQ(n->op_type, "FusedConv");
  EXPECT_EQ(n->attr("activation")->s, "Clip");
  EXPECT_EQ(n->attr("activation_min")->f, -0.25f);
  EXPECT_EQ(n->attr("activation_max")->f, std::numeric_limits<float>::infinity());
  EXPECT_EQ(n->input(3)->name(), "x");
}

// Every conv epilogue, in float32, float16 and float64: the fused CPU
// reference gives the unfused graph's bits (FuseAndCompare with tolerance 0).
// Darknet/YOLO's LeakyReLU (slope 0.1; 0.01 by default) after a dense conv, a residual Add and a 1x1 conv, in
// FP32, FP16 and double: fused with its slope, bit for bit against the unfused ops.
TEST(FuseGpu, ConvLeakyRelu) {
  for (DataType dt : {DataType::kFloat, DataType::kFloat16, DataType::kDouble}) {
    SCOPED_TRACE(DataTypeName(dt));
    Builder b(dt);
    Value* x = b.Input("x", kImage);
    Value* c1 = b.Op("Conv", "conv1", {x, b.Const("w1", {4, 4, 3, 3}), b.Const("b1", {4})}, kPads1);
    Value* l1 = b.Op("LeakyRelu", "leaky1", {c1}, {{"alpha", Attribute::FromFloat(0.1f)}});
    Value* c2 = b.Op("Conv", "conv2", {l1, b.Const("w2", {4, 4, 1, 1})});
    b.Output(b.Op("LeakyRelu", "leaky2", {b.Op("Add", "add", {c2, x})}));
    auto f = FuseAndCompare(*b.Done(), 3);
    EXPECT_EQ(f->graph->num_nodes(), 2u) << PrintGraph(*f);
    for (const Node* n : f->graph->nodes()) {
      ASSERT_EQ(n->attr("activation")->s, "LeakyRelu");
      EXPECT_FLOAT_EQ(n->attr("activation_alpha")->f, n->name == "conv1" ? 0.1f : 0.01f);
    }
  }
}

TEST(FuseGpu, ConvEpiloguesAreExactInEveryType) {
  for (int64_t opset : {17, 10}) {
    for (DataType dt : {DataType::kFloat, DataType::kFloat16, DataType::kDouble}) {
      SCOPED_TRACE(std::string(DataTypeName(dt)) + " opset " + std::to_string(opset));
      Builder b(dt);
      b.Opset(opset);
      Value* x = b.Input("x", kImage);
      Value* c1 = b.Op("Conv", "conv1", {x, b.Const("w1", {4, 4, 3, 3}), b.Const("b1", {4})}, kPads1);
      Value* s1 = b.Op("Mul", "swish", {b.Op("Sigmoid", "sig", {c1}), c1});
      Value* c2 = b.Op("Conv", "conv2", {s1, b.Const("w2", {4, 4, 3, 3})}, kPads1);
      Value* a2 = b.Op("Add", "add", {x, c2});
      Value* k2 = opset >= 11
                      ? b.Op("Clip", "clip", {a2, b.Scalar("lo", -0.5), b.Scalar("hi", 0.5)})
                      : b.Op("Clip", "clip", {a2},
                             {{"min", Attribute::FromFloat(-0.5f)}, {"max", Attribute::FromFloat(0.5f)}});
      Value* c3 = b.Op("Conv", "conv3", {k2, b.Const("w3", {4, 4, 1, 1})});
      Value* g3 = b.Op("Sigmoid", "sig3", {c3});
      Value* c4 = b.Op("Conv", "conv4", {g3, b.Const("w4", {4, 4, 1, 1}), b.Const("b4", {4})});
      Value* a4 = b.Op("Add", "add4", {c4, g3});
      b.Output(b.Op("Mul", "swish4", {a4, b.Op("Sigmoid", "sig4", {a4})}));
      auto m = b.Done();
      auto f = FuseAndCompare(*m, 3);
      EXPECT_EQ(CountOps(*f, "FusedConv"), 4);
      EXPECT_EQ(f->graph->num_nodes(), 4u) << PrintGraph(*f);
    }
  }
}

// NaN and infinities through Clip (also with min > max), Relu, Sigmoid, Swish
// and LeakyRelu epilogues: the fused reference treats them as the unfused ops do.
TEST(FuseGpu, ConvEpiloguesPassNaNLikeTheOps) {
  for (DataType dt : {DataType::kFloat, DataType::kFloat16}) {
    SCOPED_TRACE(DataTypeName(dt));
    Builder b(dt);
    Value* x = b.Input("x", Shape::Of({1, 4, 3, 3}));
    Value* z = b.Input("z", Shape::Of({1, 4, 3, 3}));
    auto conv_add = [&](const std::string& name) {
      Value* c = b.Op("Conv", name, {x, b.Const("w_" + name, {4, 4, 1, 1})});
      return b.Op("Add", name + "_add", {c, z});
    };
    Value* a1 = conv_add("c1");
    b.Output(b.Op("Clip", "clip", {a1, b.Scalar("lo", -0.5), b.Scalar("hi", 0.5)}));
    Value* a2 = conv_add("c2");
    b.Output(b.Op("Clip", "clip_crossed", {a2, b.Scalar("lo2", 0.5), b.Scalar("hi2", -0.5)}));
    b.Output(b.Op("Relu", "relu", {conv_add("c3")}));
    b.Output(b.Op("Sigmoid", "sig", {conv_add("c4")}));
    Value* a5 = conv_add("c5");
    b.Output(b.Op("Mul", "swish", {a5, b.Op("Sigmoid", "sig5", {a5})}));
    b.Output(b.Op("LeakyRelu", "leaky", {conv_add("c6")}, {{"alpha", Attribute::FromFloat(0.1f)}}));
    auto m = b.Done();
    std::mt19937 rng(11);
    Tensor zt = RandomTensor(dt, {1, 4, 3, 3}, rng);
    const float specials[] = {std::nanf(""), std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity(), -0.0f};
    for (int i = 0; i < 4; ++i) {
      if (dt == DataType::kFloat)
        zt.mutable_data<float>()[i * 9] = specials[i];
      else
        zt.mutable_data<Half>()[i * 9] = Half(specials[i]);
    }
    std::map<std::string, RtValue> feed;
    feed["x"] = RtValue::FromTensor(RandomTensor(dt, {1, 4, 3, 3}, rng));
    feed["z"] = RtValue::FromTensor(zt);
    auto f = FuseAndCompare(*m, 1, 0.0, &feed);
    EXPECT_EQ(CountOps(*f, "FusedConv"), 6);
    EXPECT_EQ(f->graph->num_nodes(), 6u);
  }
}

TEST(FuseGpu, LeavesUnsafeActivationsAlone) {
  Builder b;
  Value* x = b.Input("x", kImage);
  Value* lo = b.Input("lo", Shape::Of({}));
  // 1. Swish whose v has a third use.
  Value* c1 = b.Op("Conv", "c1", {x, b.Const("w1", {4, 4, 1, 1})});
  Value* m1 = b.Op("Mul", "m1", {c1, b.Op("Sigmoid", "s1", {c1})});
  Value* t1 = b.Op("Tanh", "t1", {c1});
  // 2. Swish whose sigmoid is a graph output.
  Value* c2 = b.Op("Conv", "c2", {m1, b.Const("w2", {4, 4, 1, 1})});
  Value* s2 = b.Op("Sigmoid", "s2", {c2});
  Value* m2 = b.Op("Mul", "m2", {s2, c2});
  // 3. v used by a Sigmoid and by a Mul that does not take that Sigmoid.
  Value* c3 = b.Op("Conv", "c3", {m2, b.Const("w3", {4, 4, 1, 1})});
  Value* m3 = b.Op("Mul", "m3", {c3, b.Op("Sigmoid", "s3x", {t1})});
  Value* s3 = b.Op("Sigmoid", "s3", {c3});
  // 4. Clip whose min is not a constant.
  Value* c4 = b.Op("Conv", "c4", {s3, b.Const("w4", {4, 4, 1, 1})});
  Value* k4 = b.Op("Clip", "k4", {c4, lo, b.Scalar("six", 6)});
  // 5. Conv output that is a graph output, feeding Clip / Sigmoid.
  Value* c5 = b.Op("Conv", "c5", {k4, b.Const("w5", {4, 4, 1, 1})});
  Value* k5 = b.Op("Clip", "k5", {c5, b.Scalar("zero", 0), b.Scalar("six5", 6)});
  Value* c6 = b.Op("Conv", "c6", {k5, b.Const("w6", {4, 4, 1, 1})});
  Value* s6 = b.Op("Sigmoid", "s6", {c6});
  for (Value* v : {s2, m2, m3, c5, c6, s6}) b.Output(v);
  auto m = b.Done();
  std::string printed = PrintGraph(*m);
  auto f = FuseAndCompare(*m);
  EXPECT_EQ(PrintGraph(*f), printed);
  EXPECT_EQ(f->opsets.count("kiln"), 0u);
}

// A bound that a float attribute cannot hold exactly (float64 model) is left
// to the Clip op.
TEST(FuseGpu, LeavesInexactClipBoundAlone) {
  Builder b(DataType::kDouble);
  Value* x = b.Input("x", kImage);
  Value* c = b.Op("Conv", "conv", {x, b.Const("w", {4, 4, 1, 1})});
  b.Output(b.Op("Clip", "clip", {c, b.Scalar("lo", 0.1), b.Scalar("hi", 0.5)}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m);
  EXPECT_EQ(CountOps(*f, "FusedConv"), 0);
}

// Conv → Add → Swish where the Add's output is also a graph output: Conv and
// Add fuse, the Swish stays.
TEST(FuseGpu, SharedAddOutputKeepsTheSwish) {
  Builder b;
  Value* x = b.Input("x", kImage);
  Value* c = b.Op("Conv", "conv", {x, b.Const("w", {4, 4, 1, 1})});
  Value* a = b.Op("Add", "add", {c, x});
  b.Output(a);
  b.Output(b.Op("Mul", "swish", {a, b.Op("Sigmoid", "sig", {a})}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m);
  EXPECT_EQ(CountOps(*f, "FusedConv"), 1);
  EXPECT_EQ(CountOps(*f, "Sigmoid"), 1);
  EXPECT_EQ(CountOps(*f, "Mul"), 1);
  EXPECT_EQ(f->graph->outputs[0]->producer()->attr("activation")->s, "");
}

// The plan stores the optimized IR as ONNX bytes: fused nodes, their domain,
// attributes and the "kiln" opset must survive the round trip.
TEST(FuseGpu, SurvivesOnnxRoundTrip) {
  Builder b;
  Value* x = b.Input("x", kImage);
  Value* c = b.Op("Conv", "conv", {x, b.Const("w", {4, 4, 3, 3})}, {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  Value* r = b.Op("Relu", "relu", {b.Op("Add", "add", {c, x})});
  Value* mm = b.Op("MatMul", "mm", {r, b.Const("wm", {6, 5})});
  b.Output(b.Op("Add", "bias", {mm, b.Const("bm", {5})}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m);
  ASSERT_TRUE(testing_build::ExpectOnnxRoundTrip(*f));
}

// A one-node model with kiln.<op> over graph inputs x (and more) → y.
std::unique_ptr<Model> FusedNodeModel(const std::string& op, const std::vector<Shape>& inputs,
                                      const std::string& activation, AttributeMap attrs = {}) {
  auto m = std::make_unique<Model>();
  m->opsets[""] = 17;
  m->opsets["kiln"] = 1;
  m->graph = std::make_shared<Graph>();
  Graph& g = *m->graph;
  Node* n = g.AddNode(op, "fused", "kiln");
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].rank_known()) {
      n->AddInput(nullptr);
      continue;
    }
    Value* v = g.AddValue("in" + std::to_string(i));
    v->type = TypeInfo::Tensor(DataType::kFloat, inputs[i]);
    g.inputs.push_back(v);
    n->AddInput(v);
  }
  n->attrs = std::move(attrs);
  n->attrs["activation"].type = Attribute::Type::kString;
  n->attrs["activation"].s = activation;
  Value* y = g.AddValue("y");
  n->AddOutput(y);
  g.outputs.push_back(y);
  return m;
}

TEST(FusedOps, InferShapes) {
  auto conv = FusedNodeModel(
      "FusedConv",
      {kImage, Shape::Of({8, 4, 3, 3}), Shape::Unranked(), Shape({Dim::Symbol("batch"), 8, 6, 6})}, "Relu",
      {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  ASSERT_TRUE(InferShapes(*conv).ok());
  EXPECT_EQ(conv->graph->outputs[0]->type.ToString(), "float32[batch,8,6,6]");
  auto mm =
      FusedNodeModel("FusedMatMul", {Shape({Dim::Symbol("n"), 3, 5}), Shape::Of({5, 7}), Shape::Of({7})}, "");
  ASSERT_TRUE(InferShapes(*mm).ok());
  EXPECT_EQ(mm->graph->outputs[0]->type.ToString(), "float32[n,3,7]");
}

TEST(FusedOps, RejectsBadInputs) {
  auto z_shape = FusedNodeModel(
      "FusedConv",
      {kImage, Shape::Of({8, 4, 3, 3}), Shape::Unranked(), Shape({Dim::Symbol("batch"), 8, 5, 6})}, "Relu",
      {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  Status s = InferShapes(*z_shape);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("must have the conv output's shape"), std::string::npos) << s.ToString();
  auto act = FusedNodeModel("FusedConv", {kImage, Shape::Of({8, 4, 3, 3})}, "Tanh");
  EXPECT_FALSE(InferShapes(*act).ok());
  auto bias = FusedNodeModel("FusedMatMul", {Shape::Of({2, 5}), Shape::Of({5, 7}), Shape::Of({5})}, "");
  s = InferShapes(*bias);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("bias length"), std::string::npos) << s.ToString();
  // The CPU reference checks Z at run time too (symbolic dims that turn out different).
  auto run = FusedNodeModel(
      "FusedConv",
      {kImage, Shape::Of({8, 4, 3, 3}), Shape::Unranked(), Shape({Dim::Symbol("other"), 8, 6, 6})}, "",
      {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  ASSERT_TRUE(InferShapes(*run).ok());
  std::mt19937 rng(3);
  std::map<std::string, RtValue> feed;
  feed["in0"] = RtValue::FromTensor(RandomTensor(DataType::kFloat, {2, 4, 6, 6}, rng));
  feed["in1"] = RtValue::FromTensor(RandomTensor(DataType::kFloat, {8, 4, 3, 3}, rng));
  feed["in3"] = RtValue::FromTensor(RandomTensor(DataType::kFloat, {3, 8, 6, 6}, rng));
  auto r = ReferenceExecutor(*run).Run(feed);
  EXPECT_FALSE(r.ok());
}

TEST(FusedOps, ConvActivations) {
  const std::vector<Shape> inputs = {kImage, Shape::Of({8, 4, 3, 3})};
  const AttributeMap clip = {{"activation_min", Attribute::FromFloat(0.f)},
                             {"activation_max", Attribute::FromFloat(6.f)}};
  for (const char* act : {"", "Relu", "Sigmoid", "Swish", "HardSwish", "HardSigmoid", "LeakyRelu"}) {
    auto m = FusedNodeModel("FusedConv", inputs, act);
    EXPECT_TRUE(InferShapes(*m).ok()) << act;
  }
  auto m = FusedNodeModel("FusedConv", inputs, "Clip", clip);
  EXPECT_TRUE(InferShapes(*m).ok());
  auto unbounded = FusedNodeModel("FusedConv", inputs, "Clip");  // -inf..+inf
  EXPECT_TRUE(InferShapes(*unbounded).ok());
}

TEST(FusedOps, RejectsBadActivations) {
  const std::vector<Shape> conv = {kImage, Shape::Of({8, 4, 3, 3})};
  const std::vector<Shape> mm = {Shape::Of({2, 5}), Shape::Of({5, 7})};
  auto expect_error = [](Model& m, const std::string& text) {
    Status s = InferShapes(m);
    EXPECT_FALSE(s.ok()) << text;
    EXPECT_NE(s.message().find("'fused'"), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find(text), std::string::npos) << s.ToString();
  };
  auto tanh = FusedNodeModel("FusedConv", conv, "Tanh");
  expect_error(*tanh,
               "unknown activation 'Tanh' (expected \"\", \"Relu\", \"Clip\", \"Sigmoid\", \"Swish\", "
               "\"HardSwish\", \"HardSigmoid\", \"Gelu\" or \"LeakyRelu\")");
  // HardSigmoid's alpha/beta (LeakyRelu's alpha) on another activation.
  auto stray_alpha = FusedNodeModel("FusedConv", conv, "Relu", {{"activation_alpha", Attribute::FromFloat(0.5f)}});
  expect_error(*stray_alpha,
               "activation_alpha applies only to activations \"HardSigmoid\" and \"LeakyRelu\"");
  auto stray_beta =
      FusedNodeModel("FusedConv", conv, "LeakyRelu", {{"activation_beta", Attribute::FromFloat(0.5f)}});
  expect_error(*stray_beta, "activation_beta applies only to activation \"HardSigmoid\"");
  for (const char* act : {"Swish", "Clip", "Sigmoid"}) {
    auto m = FusedNodeModel("FusedMatMul", mm, act);
    expect_error(*m, std::string("unknown activation '") + act + "' (expected \"\", \"Relu\" or \"GeluTanh\")");
  }
  // GeluTanh is the products' (cuBLASLt's GELU epilogue), not the convolutions'.
  auto gelu_conv = FusedNodeModel("FusedConv", conv, "GeluTanh");
  expect_error(*gelu_conv, "unknown activation 'GeluTanh'");
  auto stray = FusedNodeModel("FusedConv", conv, "Relu", {{"activation_max", Attribute::FromFloat(6.f)}});
  expect_error(*stray, "activation_min/activation_max apply only to activation \"Clip\"");
  auto typed = FusedNodeModel("FusedConv", conv, "Clip", {{"activation_min", Attribute::FromInt(0)}});
  expect_error(*typed, "attribute activation_min must be a float");
}

// The exported ResNet-50 (torchvision, 64x64 input): 33 Conv→Relu and 16
// Conv→Add→Relu chains fuse; outputs agree with the unfused model.
TEST(FuseGpu, ResNet50Zoo) {
  const std::string path = fixtures::ZooModel("resnet50");
  if (path.empty()) return;
  auto loaded = LoadModel(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  std::unique_ptr<Model> m = std::move(*loaded);
  ASSERT_TRUE(InferShapes(*m).ok());
  auto f = FuseAndCompare(*m, 1, 1e-6);
  EXPECT_EQ(CountOps(*f, "FusedConv"), 49);
  EXPECT_EQ(CountOps(*f, "Conv"), 4);
  EXPECT_EQ(CountOps(*f, "Relu"), 0);
  EXPECT_EQ(CountOps(*f, "Add"), 0);
  EXPECT_EQ(f->graph->outputs[0]->name(), m->graph->outputs[0]->name());
}

// The GPU builder's order: simplifier, then fusion.
TEST(FuseGpu, ResNet50ZooAfterSimplifier) {
  const std::string path = fixtures::ZooModel("resnet50");
  if (path.empty()) return;
  auto loaded = LoadModel(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  std::unique_ptr<Model> m = std::move(*loaded);
  ASSERT_TRUE(InferShapes(*m).ok());
  std::unique_ptr<Model> simple = CloneModel(*m);
  PassContext ctx;
  Status s = RunSimplify(*simple, ctx);
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto f = FuseAndCompare(*simple, 1, 1e-6);
  EXPECT_EQ(CountOps(*f, "FusedConv"), 49);
  EXPECT_EQ(CountOps(*f, "Conv"), 4);
  // And against the original model (the simplifier may reorder float sums slightly).
  std::unique_ptr<Model> fused_copy = CloneModel(*f);
  std::mt19937 rng(5);
  std::map<std::string, RtValue> feed;
  feed[m->graph->inputs[0]->name()] =
      RtValue::FromTensor(RandomTensor(DataType::kFloat, {1, 3, 64, 64}, rng));
  auto want = ReferenceExecutor(*m).Run(feed);
  auto got = ReferenceExecutor(*fused_copy).Run(feed);
  ASSERT_TRUE(want.ok() && got.ok());
  Tolerance tol;
  tol.rtol = 1e-3;
  tol.atol = 1e-3;
  Status close = ExpectClose("resnet50 output", (*want)[0].tensor, (*got)[0].tensor, tol);
  EXPECT_TRUE(close.ok()) << close.message();
}

// 49 Conv→Swish (stem, expand, depthwise, SE reduce, head), 16 SE gate
// Conv→Sigmoid, 9 project convs with the residual Add; the 7 other project
// convs have nothing to fuse.
TEST(FuseGpu, EfficientNetB0Zoo) {
  auto m = SimplifiedZooModel("efficientnet_b0");
  if (!m) return;  // the fixture is missing: a failure is recorded
  auto f = FuseAndCompare(*m, 1, 1e-5);
  EXPECT_EQ(CountOps(*f, "FusedConv"), 74);
  EXPECT_EQ(CountOps(*f, "Conv"), 7);
  EXPECT_EQ(CountOps(*f, "Sigmoid"), 0);
  EXPECT_EQ(CountOps(*f, "Mul"), 16);  // the SE gates
  EXPECT_EQ(CountOps(*f, "Add"), 0);
  int swish = 0, sigmoid = 0;
  for (const Node* n : f->graph->nodes()) {
    if (n->op_type != "FusedConv") continue;
    swish += n->attr("activation")->s == "Swish";
    sigmoid += n->attr("activation")->s == "Sigmoid";
  }
  EXPECT_EQ(swish, 49);
  EXPECT_EQ(sigmoid, 16);
}

// 35 Conv→Clip(0, 6), 10 project convs with the residual Add; the 7 other
// project convs have nothing to fuse.
TEST(FuseGpu, MobileNetV2Zoo) {
  auto m = SimplifiedZooModel("mobilenet_v2");
  if (!m) return;  // the fixture is missing: a failure is recorded
  auto f = FuseAndCompare(*m, 1, 1e-5);
  EXPECT_EQ(CountOps(*f, "FusedConv"), 45);
  EXPECT_EQ(CountOps(*f, "Conv"), 7);
  EXPECT_EQ(CountOps(*f, "Clip"), 0);
  EXPECT_EQ(CountOps(*f, "Add"), 0);
  int clip = 0;
  for (const Node* n : f->graph->nodes())
    if (n->op_type == "FusedConv" && n->attr("activation")->s == "Clip") {
      ++clip;
      EXPECT_EQ(n->attr("activation_min")->f, 0.0f);
      EXPECT_EQ(n->attr("activation_max")->f, 6.0f);
    }
  EXPECT_EQ(clip, 35);
}

// ViT-B/16's 12 erf-GELUs (torch's Div, Erf, Add, Mul, Mul) become kiln.Gelu.
// The model is large for the CPU reference: the pass and the verifier only.
TEST(FuseGpu, VitB16Zoo) {
  auto m = SimplifiedZooModel("vit_b_16");
  if (!m) return;  // the fixture is missing: a failure is recorded
  PassContext ctx;
  Status s = RunFuseForGpu(*m, ctx);
  ASSERT_TRUE(s.ok()) << s.ToString();
  Status valid = VerifyModel(*m);
  EXPECT_TRUE(valid.ok()) << valid.ToString();
  EXPECT_EQ(CountOps(*m, "Gelu"), 12);
  EXPECT_EQ(CountOps(*m, "Erf"), 0);
}

}  // namespace
}  // namespace kiln
