// qconv_epilogue: the residual Add, Relu/Clip and QuantizeLinear after kiln.QConv / kiln.QMatMul → the
// layer's epilogue. The oracle is the graph before the pass (the same ops unfused) on the CPU reference: bit
// for bit where the fused epilogue divides by y_scale after the Add, as QuantizeLinear does; within one step
// of the output's scale where it folds 1 / y_scale into the multiplier (the plain form, as onnxruntime's
// QLinearConv).
#include "passes/qconv_epilogue.h"

#include <gtest/gtest.h>

#include "graph_builder.h"
#include "int8_graph.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;
using namespace testing_int8;  // NOLINT: the INT8 graph helpers

enum class Residual { kNone, kFloat, kInt8 };

struct Form {
  Residual residual = Residual::kNone;
  const char* act = "Relu";  // "Relu", "Clip" or ""
  bool requantize = true;
  bool y_read_elsewhere = false;
};

// x → Q → QConv → [Add r] → [act] → [Q(0.04) → DQ] → output.
std::unique_ptr<Model> Tail(const Form& f) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("n"), 8, 6, 6}));
  Value* y = QConv(b, "conv", Quantize(b, "xq", x, 0.01f), 0.01f);
  if (f.y_read_elsewhere) b.Output(y);
  if (f.residual != Residual::kNone) {
    Value* r = b.Input("r", Shape({Dim::Symbol("n"), 16, 6, 6}));
    if (f.residual == Residual::kInt8) r = Dequantize(b, "rdq", Quantize(b, "rq", r, 0.02f), 0.02f);
    y = b.Op("Add", "residual", {y, r});
  }
  if (std::string(f.act) == "Relu") y = b.Op("Relu", "relu", {y});
  if (std::string(f.act) == "Clip")
    y = b.Op("Clip", "clip", {y, ScalarOf(b, "lo", 0.f), ScalarOf(b, "hi", 6.f)});
  if (f.requantize) y = Dequantize(b, "ydq", Quantize(b, "yq", y, 0.04f), 0.04f);
  b.Output(y);
  return b.Done();
}

const Node* Layer(const Model& m) {
  for (const Node* n : m.graph->nodes())
    if (n->op_type == "QConv" || n->op_type == "QMatMul") return n;
  return nullptr;
}

TEST(QConvEpilogue, ResidualReluAndRequantizationJoinTheLayer) {
  Form f;
  f.residual = Residual::kFloat;
  auto m = RunPassAndCompare(*Tail(f), RunQConvEpilogue);  // bit for bit: v / y_scale after the Add
  EXPECT_EQ(CountOps(*m, "Add"), 0);
  EXPECT_EQ(CountOps(*m, "Relu"), 0);
  EXPECT_EQ(CountOps(*m, "QuantizeLinear"), 1) << "the input's";
  const Node* layer = Layer(*m);
  ASSERT_NE(layer, nullptr);
  EXPECT_EQ(layer->input(9)->name(), "r");
  EXPECT_EQ(layer->attr("activation")->s, "Relu");
  EXPECT_EQ(layer->output(0)->dtype(), DataType::kInt8);
}

TEST(QConvEpilogue, DequantizedResidualIsReadAsInt8) {
  Form f;
  f.residual = Residual::kInt8;
  auto m = RunPassAndCompare(*Tail(f), RunQConvEpilogue);
  EXPECT_EQ(CountOps(*m, "DequantizeLinear"), 1) << "the output's only";
  const Node* layer = Layer(*m);
  ASSERT_NE(layer, nullptr);
  EXPECT_EQ(layer->input(9)->dtype(), DataType::kInt8);
  EXPECT_EQ(layer->input(10)->data->data<float>()[0], 0.02f);
}

TEST(QConvEpilogue, PlainReluAndRequantizationAreWithinOneStep) {
  // The plain form folds 1 / y_scale into the multiplier: one step (0.04) at most.
  auto m = RunPassAndCompare(*Tail({}), RunQConvEpilogue, 2, 0.0401);
  EXPECT_EQ(CountOps(*m, "Relu"), 0);
  EXPECT_EQ(CountOps(*m, "QuantizeLinear"), 1);
}

TEST(QConvEpilogue, ClipWithConstantBoundsAndAFloatOutput) {
  Form f;
  f.residual = Residual::kFloat;
  f.act = "Clip";
  f.requantize = false;
  auto m = RunPassAndCompare(*Tail(f), RunQConvEpilogue);
  const Node* layer = Layer(*m);
  ASSERT_NE(layer, nullptr);
  EXPECT_EQ(layer->attr("activation")->s, "Clip");
  EXPECT_EQ(layer->attr("activation_max")->f, 6.f);
  EXPECT_EQ(layer->output(0)->dtype(), DataType::kFloat);
}

// SiLU as exporters write it (YOLO): Mul(y, Sigmoid(y)), y's two users; then the requantization. Bit for
// bit: the epilogue computes the Sigmoid and Mul references' float operations, and divides by y_scale after.
TEST(QConvEpilogue, SiluAndRequantizationJoinTheLayer) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("n"), 8, 6, 6}));
  Value* y = QConv(b, "conv", Quantize(b, "xq", x, 0.01f), 0.01f);
  Value* silu = b.Op("Mul", "silu", {b.Op("Sigmoid", "sigmoid", {y}), y});
  b.Output(Dequantize(b, "ydq", Quantize(b, "yq", silu, 0.04f), 0.04f));
  auto m = RunPassAndCompare(*b.Done(), RunQConvEpilogue);
  EXPECT_EQ(CountOps(*m, "Sigmoid"), 0);
  EXPECT_EQ(CountOps(*m, "Mul"), 0);
  EXPECT_EQ(CountOps(*m, "QuantizeLinear"), 1);
  const Node* layer = Layer(*m);
  ASSERT_NE(layer, nullptr);
  EXPECT_EQ(layer->attr("activation")->s, "Swish");
}

TEST(QConvEpilogue, AnOutputReadElsewhereStays) {
  Form f;
  f.y_read_elsewhere = true;
  auto m = RunPassAndCompare(*Tail(f), RunQConvEpilogue);
  EXPECT_EQ(CountOps(*m, "Relu"), 1);
  EXPECT_EQ(CountOps(*m, "QuantizeLinear"), 2);
}

// ResNet's downsample block end: relu(conv3(x) + downsample(x)), the downsample computed after conv3.
std::unique_ptr<Model> DownsampleBlock() {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("n"), 8, 6, 6}));
  Value* xq = Quantize(b, "xq", x, 0.01f);
  Value* main = QConv(b, "conv3", xq, 0.01f);
  Value* down = QConv(b, "downsample", xq, 0.01f);
  b.Output(b.Op("Relu", "relu", {b.Op("Add", "residual", {main, down})}));
  return b.Done();
}

// The residual computed after the layer (ResNet's downsample branch): the layer moves to the Add.
TEST(QConvEpilogue, ResidualComputedAfterTheLayer) {
  auto m = RunPassAndCompare(*DownsampleBlock(), RunQConvEpilogue);
  EXPECT_EQ(CountOps(*m, "Add"), 0);
  EXPECT_EQ(CountOps(*m, "Relu"), 0);
  const Node* first = Layer(*m);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->name, "downsample") << "conv3 now runs after the branch it adds";
}

// QMatMul takes the same epilogue: a Linear, its residual and ReLU.
TEST(QConvEpilogue, MatMulResidualAndRelu) {
  GraphBuilder b;
  Value* a = b.Input("a", Shape({Dim::Symbol("n"), 4, 24}));
  Weights w = MakeWeights(b, "fc", {24, 16}, 16);
  Value* y = b.Op("QMatMul", "fc",
                  {Quantize(b, "aq", a, 0.01f), ScalarOf(b, "as", 0.01f), Int8Zero(b, "azp"), w.w, w.scale,
                   nullptr, w.bias},
                  {}, "kiln");
  Value* r = b.Input("r", Shape({Dim::Symbol("n"), 4, 16}));
  b.Output(b.Op("Relu", "relu", {b.Op("Add", "residual", {r, y})}));
  auto m = RunPassAndCompare(*b.Done(), RunQConvEpilogue);
  EXPECT_EQ(CountOps(*m, "Add"), 0);
  EXPECT_EQ(CountOps(*m, "Relu"), 0);
}

// Two blocks (TensorRT's implicit mode with quantized_residuals): block 1's output y feeds block 2's layer
// through a QuantizeLinear and its residual Add. y is written once, in int8, and the Add reads it as an
// int8 z: dq(q(y)) instead of y, within half a step (0.05) of the float residual where y's scale (0.1)
// covers its range (calibration's job; beyond it the int8 residual saturates).
std::unique_ptr<Model> TwoBlocks() {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("n"), 8, 6, 6}));
  Value* y = b.Op("Relu", "relu1", {QConv(b, "conv1", Quantize(b, "xq", x, 0.01f), 0.01f)});
  Weights w = MakeWeights(b, "conv2", {16, 16, 1, 1}, 16);
  Value* c2 = b.Op("QConv", "conv2",
                   {Quantize(b, "yq", y, 0.1f), ScalarOf(b, "conv2_xs", 0.1f), Int8Zero(b, "conv2_xzp"), w.w,
                    w.scale, nullptr, w.bias},
                   {}, "kiln");
  b.Output(b.Op("Relu", "relu2", {b.Op("Add", "residual", {c2, y})}));
  return b.Done();
}

Status RunWithQuantizedResiduals(Model& m, PassContext& ctx) {
  QConvEpilogueOptions o;
  o.quantized_residuals = true;
  return RunQConvEpilogue(m, ctx, o);
}

TEST(QConvEpilogue, QuantizedResidualsWriteTheBlockOutputOnceInInt8) {
  auto m = RunPassAndCompare(*TwoBlocks(), RunWithQuantizedResiduals, 2, 0.03);  // atol 0.03·RMS
  EXPECT_EQ(CountOps(*m, "QuantizeLinear"), 1) << "the input's only";
  for (const Node* n : m->graph->nodes()) {
    if (n->name == "conv1") {
      EXPECT_EQ(n->output(0)->dtype(), DataType::kInt8);
    } else if (n->name == "conv2") {
      EXPECT_EQ(n->input(9), n->input(0)) << "x and z: the same int8 tensor";
    }
  }
  // Without the option the residual stays float: bit for bit, y written in float32.
  auto plain = RunPassAndCompare(*TwoBlocks(), RunQConvEpilogue);
  EXPECT_EQ(CountOps(*plain, "QuantizeLinear"), 2);
}

// A residual branch read only by the residual Add (ResNet's downsample): with a calibrated scale for its
// output, it writes int8 and conv3 reads an int8 z (within half a step, 0.05, of the float branch).
Status RunWithBranchScale(Model& m, PassContext& ctx) {
  QConvEpilogueOptions o;
  o.quantized_residuals = true;
  o.residual_scales["downsample"] = 0.1f;
  return RunQConvEpilogue(m, ctx, o);
}

TEST(QConvEpilogue, CalibratedResidualBranchIsWrittenInInt8) {
  auto m = RunPassAndCompare(*DownsampleBlock(), RunWithBranchScale, 2, 0.03);  // atol 0.03·RMS
  for (const Node* n : m->graph->nodes()) {
    if (n->name == "downsample") {
      EXPECT_EQ(n->output(0)->dtype(), DataType::kInt8);
    } else if (n->name == "conv3") {
      EXPECT_EQ(n->input(9)->dtype(), DataType::kInt8);
      EXPECT_EQ(n->input(10)->data->data<float>()[0], 0.1f);
    }
  }
}

}  // namespace
}  // namespace kiln
