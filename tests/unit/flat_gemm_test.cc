// flat_gemm: Reshape(Gemm(Reshape(x, [-1, K]), B, C), [lead..., N]) → MatMul(x, B') + C on the tokens. The
// oracle is the graph before the pass on the CPU reference, at batch and sequence other than the export's.
#include "passes/flat_gemm.h"

#include <gtest/gtest.h>

#include "graph_builder.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

struct Form {
  bool trans_b = false;
  float alpha = 1.f, beta = 1.f;
  std::vector<int64_t> c_dims = {12};  // empty: no C
  bool heads = false;                  // x is the attention's [b, s, 2, 4] output, not [b, s, 8]
  bool flat_read_elsewhere = false;
};

// transformers' Conv1D: size_out = x.size()[:-1] + (N,); addmm(C, x.view(-1, K), B).view(size_out).
std::unique_ptr<Model> FlatGemm(const Form& f) {
  GraphBuilder b;
  const Dim bs = Dim::Symbol("b"), s = Dim::Symbol("s");
  Value* x = f.heads ? b.Input("x", Shape({bs, s, 2, 4})) : b.Input("x", Shape({bs, s, 8}));
  Value* flat = b.Op("Reshape", "flat", {x, b.Int64s("to2d", {-1, 8})});
  std::vector<Value*> in = {flat, f.trans_b ? b.Const("w", {12, 8}) : b.Const("w", {8, 12})};
  if (!f.c_dims.empty()) in.push_back(b.Const("c", f.c_dims));
  AttributeMap attrs = {{"transB", Attribute::FromInt(f.trans_b ? 1 : 0)}};
  if (f.alpha != 1.f) attrs["alpha"] = Attribute::FromFloat(f.alpha);
  if (f.beta != 1.f) attrs["beta"] = Attribute::FromFloat(f.beta);
  Value* y = b.Op("Gemm", "gemm", in, attrs);
  Value* lead =
      b.Op("Shape", "lead", {x}, {{"start", Attribute::FromInt(0)}, {"end", Attribute::FromInt(2)}});
  Value* size_out =
      b.Op("Concat", "size_out", {lead, b.Int64s("n", {12})}, {{"axis", Attribute::FromInt(0)}});
  b.Output(b.Op("Reshape", "z", {y, size_out}));
  if (f.flat_read_elsewhere) b.Output(b.Op("Relu", "flat_relu", {flat}));
  return b.Done();
}

std::map<std::string, RtValue> Feed(bool heads) {
  std::mt19937 rng(7);
  const std::vector<int64_t> dims = heads ? std::vector<int64_t>{3, 5, 2, 4} : std::vector<int64_t>{3, 5, 8};
  return {{"x", RtValue::FromTensor(testing_build::RandomTensor(DataType::kFloat, dims, rng))}};
}

std::unique_ptr<Model> Check(const Form& f) {
  const auto feed = Feed(f.heads);
  return RunPassAndCompare(*FlatGemm(f), RunFlatGemm, 0, 1e-5, &feed);
}

TEST(FlatGemm, Conv1DBecomesAMatMulOnTheTokens) {
  auto m = Check({});
  EXPECT_EQ(CountOps(*m, "Gemm"), 0);
  EXPECT_EQ(CountOps(*m, "MatMul"), 1);
  EXPECT_EQ(CountOps(*m, "Add"), 1);
  EXPECT_EQ(CountOps(*m, "Reshape"), 0) << "both views go";
  for (const Node* n : m->graph->nodes()) {
    if (n->op_type != "MatMul") continue;
    EXPECT_EQ(n->input(0)->name(), "x");
  }
}

TEST(FlatGemm, TransposedScaledWeightsAndRowBias) {
  Form f;
  f.trans_b = true;
  f.alpha = 0.5f;
  f.c_dims = {1, 12};
  EXPECT_EQ(CountOps(*Check(f), "Gemm"), 0);
}

TEST(FlatGemm, NoBiasAndAScalarBias) {
  Form none;
  none.c_dims = {};
  auto m = Check(none);
  EXPECT_EQ(CountOps(*m, "Gemm"), 0);
  EXPECT_EQ(CountOps(*m, "Add"), 0);
  Form scalar;
  scalar.c_dims = {1};
  EXPECT_EQ(CountOps(*Check(scalar), "Gemm"), 0);
}

// The attention's [b, s, H, D] output flattened straight to [b·s, H·D]: the product reads a view [b, s, H·D].
TEST(FlatGemm, HeadsFlattenThroughAView) {
  Form f;
  f.heads = true;
  auto m = Check(f);
  EXPECT_EQ(CountOps(*m, "Gemm"), 0);
  EXPECT_EQ(CountOps(*m, "Reshape"), 1);
}

TEST(FlatGemm, OtherFormsStay) {
  Form beta;
  beta.beta = 2.f;
  EXPECT_EQ(CountOps(*Check(beta), "Gemm"), 1) << "beta scales C";
  Form shared;
  shared.flat_read_elsewhere = true;
  EXPECT_EQ(CountOps(*Check(shared), "Gemm"), 1) << "the flat tokens are read elsewhere";
}

}  // namespace
}  // namespace kiln
