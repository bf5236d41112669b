// gelu_epilogue: a GELU after a kiln.FusedMatMul goes into the product's
// epilogue as cuBLASLt's tanh-form GELU. The oracle is the model before the
// pass (the product, then the GELU op's own reference) on the CPU reference:
// bit for bit for the tanh form, within float16's resolution for the erf form
// (taken only in float16), and erf in float32 is left alone.
#include "passes/gelu_epilogue.h"

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

struct Form {
  DataType dt = DataType::kFloat16;
  const char* approximate = "none";
  bool residual = false;     // FusedMatMul's Z: the GELU would follow the residual Add
  bool gelu_output = false;  // the product's output is read by more than the GELU
  bool plain = false;        // fc1 is a bias-free ONNX MatMul (what fuse_gpu leaves without an epilogue)
};

// x[batch, 7, 32] · w[32, 48] + bias → GELU → · w2[48, 16].
std::unique_ptr<Model> Mlp(const Form& f) {
  GraphBuilder b(f.dt);
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), 7, 32}));
  std::vector<Value*> in = {x, b.Const("w1", {32, 48})};
  if (!f.plain) in.push_back(b.Const("b1", {48}));
  if (f.residual) in.push_back(b.Input("z", Shape({Dim::Symbol("batch"), 7, 48})));
  Value* h = f.plain ? b.Op("MatMul", "fc1", in)
                     : b.Op("FusedMatMul", "fc1", in, {{"activation", Attribute::FromString("")}}, "kiln");
  if (f.gelu_output) b.Output(h);
  Value* g = b.Op("Gelu", "gelu", {h}, {{"approximate", Attribute::FromString(f.approximate)}}, "kiln");
  b.Output(b.Op("MatMul", "fc2", {g, b.Const("w2", {48, 16})}));
  return b.Done();
}

Status Pass(Model& m, PassContext& ctx) { return RunGeluEpilogue(m, ctx, nullptr); }

std::string Activation(const Model& m) {
  for (const Node* n : m.graph->nodes())
    if (n->op_type == "FusedMatMul") return passes::AttrString(*n, "activation", "?");
  return "?";
}

TEST(GeluEpilogue, TanhGeluIsExactInEveryFloatType) {
  for (DataType dt : {DataType::kFloat, DataType::kFloat16}) {
    Form f;
    f.dt = dt;
    f.approximate = "tanh";
    auto out = RunPassAndCompare(*Mlp(f), Pass);  // tolerance 0
    EXPECT_EQ(CountOps(*out, "Gelu"), 0) << DataTypeName(dt);
    EXPECT_EQ(Activation(*out), "GeluTanh");
  }
}

// ConvNeXt's bias-free Linear (random weights: a zero bias folds away) before its GELU.
TEST(GeluEpilogue, ABiasFreeMatMulTakesItToo) {
  Form f;
  f.approximate = "tanh";
  f.plain = true;
  auto out = RunPassAndCompare(*Mlp(f), Pass);
  EXPECT_EQ(CountOps(*out, "Gelu"), 0);
  EXPECT_EQ(CountOps(*out, "MatMul"), 1) << "fc2, read by no GELU, stays";
  EXPECT_EQ(Activation(*out), "GeluTanh");
}

TEST(GeluEpilogue, ErfGeluBecomesTheTanhFormOnlyInFloat16) {
  std::vector<std::string> report;
  auto m = Mlp(Form());
  auto before = CloneModel(*m);
  PassContext ctx;
  ASSERT_TRUE(RunGeluEpilogue(*m, ctx, &report).ok());
  EXPECT_EQ(CountOps(*m, "Gelu"), 0);
  EXPECT_EQ(Activation(*m), "GeluTanh");
  ASSERT_EQ(report.size(), 1u);
  EXPECT_NE(
      report[0].find("node 'fc1' (kiln.FusedMatMul) takes node 'gelu' (kiln.Gelu) as cuBLASLt's tanh-form"),
      std::string::npos)
      << report[0];
  // Against the erf GELU: float16's rounding, not a wrong activation (rtol 1e-2 fails for ReLU in its place).
  RunPassAndCompare(*before, Pass, 3, 1e-2);

  Form fp32;
  fp32.dt = DataType::kFloat;
  auto kept = RunPassAndCompare(*Mlp(fp32), Pass);
  EXPECT_EQ(CountOps(*kept, "Gelu"), 1) << "an FP32 build keeps the exact erf GELU";
}

TEST(GeluEpilogue, AResidualOrAnotherReaderKeepsTheGelu) {
  for (int variant = 0; variant < 2; ++variant) {
    Form f;
    f.approximate = "tanh";
    (variant == 0 ? f.residual : f.gelu_output) = true;
    auto out = RunPassAndCompare(*Mlp(f), Pass);
    EXPECT_EQ(CountOps(*out, "Gelu"), 1) << "variant " << variant;
    EXPECT_EQ(Activation(*out), "");
  }
}

}  // namespace
}  // namespace kiln
