// einsum_matmul: batched-matrix-product Einsums become MatMul (the oracle: the
// Einsum graph on the CPU reference), so attention written with einsum fuses.
#include "passes/einsum_matmul.h"

#include <gtest/gtest.h>

#include "graph_builder.h"
#include "passes/fuse_attention.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

AttributeMap Equation(const char* eq) { return {{"equation", Attribute::FromString(eq)}}; }

// softmax(einsum("bhid,bhjd->bhij", q, k) · 0.25) then einsum("bhij,bhjd->bhid", p, v).
std::unique_ptr<Model> EinsumAttention(const char* scores_eq, const char* out_eq) {
  GraphBuilder b;
  const Dim batch = Dim::Symbol("batch");
  Value* q = b.Input("q", Shape({batch, 2, 5, 8}));
  Value* k = b.Input("k", Shape({batch, 2, 6, 8}));
  Value* v = b.Input("v", Shape({batch, 2, 6, 8}));
  Value* s = b.Op("Mul", "scaled", {b.Op("Einsum", "scores", {q, k}, Equation(scores_eq)), b.Scalar("c", 0.25)});
  Value* p = b.Op("Softmax", "probs", {s}, {{"axis", Attribute::FromInt(-1)}});
  b.Output(b.Op("Einsum", "ctx", {p, v}, Equation(out_eq)));
  return b.Done();
}

TEST(EinsumMatMul, EinsumAttentionBecomesMatMulsAndFuses) {
  auto f = RunPassAndCompare(*EinsumAttention("bhid,bhjd->bhij", "bhij,bhjd->bhid"), RunEinsumToMatMul, 3, 1e-5);
  EXPECT_EQ(CountOps(*f, "Einsum"), 0);
  EXPECT_EQ(CountOps(*f, "MatMul"), 2);
  PassContext ctx;
  ASSERT_TRUE(RunFuseAttention(*f, ctx).ok());
  EXPECT_EQ(CountOps(*f, "Attention"), 1);
  // MaxViT's spelling: spaces and capitals.
  auto spaced = RunPassAndCompare(*EinsumAttention("B H I D, B H J D -> B H I J", "B H I J, B H J D -> B H I D"),
                                  RunEinsumToMatMul, 3, 1e-5);
  EXPECT_EQ(CountOps(*spaced, "Einsum"), 0);
}

TEST(EinsumMatMul, OtherEquationsStay) {
  // A reduction over a batch letter, a permuted result and a contraction axis not last in A are no batched product.
  for (const char* eq : {"bhid,bhjd->hij", "bhid,bhjd->bhji", "bhdi,bhjd->bhij"}) {
    GraphBuilder b;
    Value* x = b.Input("x", Shape({2, 2, 5, 5}));
    Value* y = b.Input("y", Shape({2, 2, 5, 5}));
    b.Output(b.Op("Einsum", "e", {x, y}, Equation(eq)));
    auto f = RunPassAndCompare(*b.Done(), RunEinsumToMatMul, 2, 0.0);
    EXPECT_EQ(CountOps(*f, "Einsum"), 1) << eq;
  }
}

}  // namespace
}  // namespace kiln
