// attention_heads: BART/Whisper/CLIP-style head splits around a 3-D
// kiln.Attention become one "bshd" attention on the [B, S, H, D] views; the
// CPU reference computes the same (the query's scale moves into the op).
#include "passes/attention_heads.h"

#include <gtest/gtest.h>

#include "graph_builder.h"
#include "passes/fuse_attention.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

// HF BART attention on [batch, 5, 16] projections, 2 heads of 8; `bias`: an
// additive [5, 5] (or, with `per_head_bias`, a [4, 5, 5] one: batch 2 · 2 heads) mask.
std::unique_ptr<Model> BartAttention(bool bias, bool per_head_bias = false, bool extra_use = false) {
  GraphBuilder b;
  const Shape tokens({per_head_bias ? Dim(2) : Dim::Symbol("batch"), 5, 16});
  Value* q = b.Op("Mul", "q_scaled", {b.Input("q", tokens), b.Scalar("scaling", 0.35)});
  Value* heads = b.Int64s("heads", {0, 5, 2, 8});
  Value* flat = b.Int64s("flat", {-1, 5, 8});
  auto split = [&](const std::string& name, Value* p) {
    Value* x = b.Op("Reshape", name + "_view", {p, heads});
    Value* t = b.Op("Transpose", name + "_t", {x}, {{"perm", Attribute::FromInts({0, 2, 1, 3})}});
    return b.Op("Reshape", name + "_3d", {t, flat});
  };
  Value* q3 = split("q", q);
  Value* k3 = split("k", b.Input("k", tokens));
  Value* v3 = split("v", b.Input("v", tokens));
  Value* kt = b.Op("Transpose", "kt", {k3}, {{"perm", Attribute::FromInts({0, 2, 1})}});
  Value* s = b.Op("MatMul", "scores", {q3, kt});
  if (bias) s = b.Op("Add", "masked", {s, per_head_bias ? b.Input("mask", Shape({4, 5, 5}))
                                                        : b.Input("mask", Shape({5, 5}))});
  Value* p = b.Op("Softmax", "probs", {s}, {{"axis", Attribute::FromInt(-1)}});
  Value* y = b.Op("MatMul", "ctx", {p, v3});
  Value* y4 = b.Op("Reshape", "ctx_4d", {y, b.Int64s("ctx_heads", {-1, 2, 5, 8})});
  Value* yt = b.Op("Transpose", "ctx_t", {y4}, {{"perm", Attribute::FromInts({0, 2, 1, 3})}});
  b.Output(b.Op("Reshape", "out", {yt, b.Int64s("merged", {0, 5, 16})}));
  if (extra_use) b.Output(y);
  auto m = b.Done();
  PassContext ctx;
  EXPECT_TRUE(RunFuseAttention(*m, ctx).ok());
  EXPECT_EQ(CountOps(*m, "Attention"), 1) << "bias " << bias << " per head " << per_head_bias;
  return m;
}

TEST(AttentionHeads, SplitsAndMergeBecomeViews) {
  for (bool bias : {false, true}) {
    auto f = RunPassAndCompare(*BartAttention(bias), RunAttentionHeads, 3, 1e-5);
    EXPECT_EQ(CountOps(*f, "Transpose"), 0) << "bias " << bias;
    EXPECT_EQ(CountOps(*f, "Mul"), 0) << "the query's scale is the op's";
    EXPECT_EQ(CountOps(*f, "Reshape"), 4);  // Q, K, V to heads, the output back to [B, S, E]
    for (const Node* n : f->graph->nodes()) {
      if (n->op_type == "Attention") {
        EXPECT_EQ(n->attr("layout")->s, "bshd");
        EXPECT_FLOAT_EQ(n->attr("scale")->f, 0.35f);
        EXPECT_EQ(n->input(0)->shape().ToString(), "[batch,5,2,8]");
      }
    }
  }
}

TEST(AttentionHeads, PerHeadBiasOrOtherUsesKeepTheCopies) {
  auto per_head = RunPassAndCompare(*BartAttention(true, true), RunAttentionHeads);
  EXPECT_EQ(CountOps(*per_head, "Transpose"), 4);
  auto used = RunPassAndCompare(*BartAttention(false, false, true), RunAttentionHeads);
  EXPECT_EQ(CountOps(*used, "Transpose"), 4);  // the 3-D output is a graph output too
}

}  // namespace
}  // namespace kiln
