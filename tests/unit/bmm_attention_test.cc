// Tests for the BART-style attention rewrite (src/passes/bmm_attention.h): the
// 3-D products with a mask added to a 4-D view of the scores compute the same
// in 4-D (CPU reference), and fuse_attention then fuses them with the mask as
// the bias; Shape readers of the 3-D views are pointed at the 4-D ones.
#include "passes/bmm_attention.h"

#include <gtest/gtest.h>

#include "graph_builder.h"
#include "passes/fuse_attention.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using Builder = testing_build::GraphBuilder;

// x [batch, S, 8] → heads [batch, 2, S, 4] → the [batch·2, S, 4] view BART multiplies.
Value* Heads3D(Builder& b, const std::string& name, Value* x, int64_t s) {
  Value* split = b.Op("Reshape", name + "_split", {x, b.Int64s(name + "_split_shape", {0, 0, 2, 4})});
  Value* heads = b.Op("Transpose", name + "_heads", {split}, {{"perm", Attribute::FromInts({0, 2, 1, 3})}});
  return b.Op("Reshape", name + "_3d", {heads, b.Int64s(name + "_3d_shape", {-1, s, 4})});
}

// HF BART's eager attention, cross-attention shaped (6 queries, 5 keys), with
// its padding mask added between the two views of the scores and the key
// length read from the 3-D keys (src_len = key_states.size(1)).
std::unique_ptr<Model> BartAttention() {
  Builder b;
  Value* q3 = Heads3D(b, "q", b.Input("x", Shape({Dim::Symbol("batch"), 6, 8})), 6);
  Value* k3 = Heads3D(b, "k", b.Input("mem_k", Shape({Dim::Symbol("batch"), 5, 8})), 5);
  Value* v3 = Heads3D(b, "v", b.Input("mem_v", Shape({Dim::Symbol("batch"), 5, 8})), 5);
  Value* kt3 = b.Op("Transpose", "kt", {k3}, {{"perm", Attribute::FromInts({0, 2, 1})}});
  Value* s3 = b.Op("MatMul", "scores", {q3, kt3});
  Value* s4 = b.Op("Reshape", "scores_4d", {s3, b.Int64s("s4_shape", {-1, 2, 6, 5})});
  Value* masked = b.Op("Add", "masked", {s4, b.Input("mask", Shape({Dim::Symbol("batch"), 1, 1, 5}))});
  Value* back = b.Op("Reshape", "scores_3d", {masked, b.Int64s("s3_shape", {-1, 6, 5})});
  Value* p = b.Op("Softmax", "probs", {back}, {{"axis", Attribute::FromInt(-1)}});
  Value* y3 = b.Op("MatMul", "ctx", {p, v3});
  b.Output(b.Op("Reshape", "ctx_4d", {y3, b.Int64s("y4_shape", {-1, 2, 6, 4})}));
  b.Output(b.Op("Gather", "src_len", {b.Op("Shape", "k_shape", {k3}), b.Int64s("one", {1})}));
  return b.Done();
}

TEST(BmmAttention, MaskedThreeDAttentionBecomesFourDAndFuses) {
  auto m = BartAttention();
  auto four = testing_build::RunPassAndCompare(*m, RunBmmAttention, 3, 1e-6);
  EXPECT_EQ(CountOps(*four, "Softmax"), 1);
  // Only the head splits' Reshapes stay, each [batch, S, 8] → [batch, S, 2, 4].
  EXPECT_EQ(CountOps(*four, "Reshape"), 3);
  EXPECT_EQ(CountOps(*four, "Shape"), 1);  // src_len now reads the 4-D keys' dim 2
  auto fused = testing_build::RunPassAndCompare(*four, RunFuseAttention, 3, 1e-5);
  EXPECT_EQ(CountOps(*fused, "Attention"), 1);
  EXPECT_EQ(CountOps(*fused, "Softmax"), 0);
  EXPECT_EQ(CountOps(*fused, "MatMul"), 0);
}

// Without a mask between the views, or with a reader of the 3-D scores, the
// 3-D form stays (fuse_attention takes the plain 3-D form itself).
TEST(BmmAttention, OtherThreeDAttentionStays) {
  Builder b;
  Value* q3 = Heads3D(b, "q", b.Input("x", Shape({Dim::Symbol("batch"), 6, 8})), 6);
  Value* k3 = Heads3D(b, "k", b.Input("y", Shape({Dim::Symbol("batch"), 6, 8})), 6);
  Value* s3 = b.Op("MatMul", "scores",
                   {q3, b.Op("Transpose", "kt", {k3}, {{"perm", Attribute::FromInts({0, 2, 1})}})});
  Value* p = b.Op("Softmax", "probs", {s3}, {{"axis", Attribute::FromInt(-1)}});
  b.Output(b.Op("MatMul", "ctx", {p, q3}));
  auto f = testing_build::RunPassAndCompare(*b.Done(), RunBmmAttention, 3);
  EXPECT_EQ(CountOps(*f, "Reshape"), 4);  // the two 3-D views and their splits
}

}  // namespace
}  // namespace kiln
