// attention_views: Transposes between attention layouts around kiln.Attention
// go into its per-tensor layouts. The oracle is the graph before the pass
// (Transposes as copies, the op on uniform layouts) on the CPU reference.
#include "passes/attention_views.h"

#include <gtest/gtest.h>

#include "fused_attention_model.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;
using testing_build::WithFusedAttention;

// Llama's tail: q, k [batch, 4, S, 8] ("bhsd"); V split from [batch, 6, 4, 8]
// by Transpose(0, 2, 1, 3) (or, `v_perm`, another one); the output merged
// back to [batch, 5, 4, 8] by the same Transpose.
std::unique_ptr<Model> LlamaTail(std::vector<int64_t> v_perm = {0, 2, 1, 3}, bool v_dims_bshd = true) {
  GraphBuilder b;
  const Dim batch = Dim::Symbol("batch");
  Value* q = b.Input("q", Shape({batch, 4, 5, 8}));
  Value* k = b.Input("k", Shape({batch, 4, 6, 8}));
  Value* v0 = b.Input("v0", v_dims_bshd ? Shape({batch, 6, 4, 8}) : Shape({batch, 4, 8, 6}));
  Value* v = b.Op("Transpose", "v_heads", {v0}, {{"perm", Attribute::FromInts(v_perm)}});
  Value* kt = b.Op("Transpose", "kt", {k}, {{"perm", Attribute::FromInts({0, 1, 3, 2})}});
  Value* s = b.Op("Mul", "scaled", {b.Op("MatMul", "scores", {q, kt}), b.Scalar("scale", 0.35)});
  Value* p = b.Op("Softmax", "probs", {s}, {{"axis", Attribute::FromInt(-1)}});
  Value* y = b.Op("MatMul", "ctx", {p, v});
  b.Output(b.Op("Transpose", "merge", {y}, {{"perm", Attribute::FromInts({0, 2, 1, 3})}}));
  return WithFusedAttention(b.Done());
}

TEST(AttentionViews, VSplitAndOutputMergeBecomeLayouts) {
  auto m = LlamaTail();
  ASSERT_EQ(CountOps(*m, "Transpose"), 2) << "V's split and the merge are copies before the pass";
  auto f = RunPassAndCompare(*m, RunAttentionViews, 3, 1e-5);
  EXPECT_EQ(CountOps(*f, "Transpose"), 0);
  for (const Node* n : f->graph->nodes()) {
    if (n->op_type != "Attention") continue;
    ASSERT_NE(n->attr("layouts"), nullptr);
    EXPECT_EQ(n->attr("layouts")->strings, (std::vector<std::string>{"bhsd", "bhsd", "bshd", "bshd"}));
    EXPECT_EQ(n->input(2)->name(), "v0");
  }
  EXPECT_EQ(f->graph->outputs[0]->shape().ToString(), "[batch,5,4,8]");
}

TEST(AttentionViews, ATransposeThatIsNoLayoutChangeStays) {
  // V from [batch, 4, 8, 6] by swapping its last two axes: D and S trade places, which no layout does.
  auto m = LlamaTail({0, 1, 3, 2}, /*v_dims_bshd=*/false);
  const int before = CountOps(*m, "Transpose");
  auto f = RunPassAndCompare(*m, RunAttentionViews, 3, 1e-5);
  EXPECT_EQ(CountOps(*f, "Transpose"), before - 1) << "only the output merge goes";
}

}  // namespace
}  // namespace kiln
