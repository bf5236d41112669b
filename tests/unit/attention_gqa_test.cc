// attention_gqa: HF's repeat_kv copies in front of a fused attention go; the
// attention reads the K/V heads themselves (grouped-query). The oracle is the
// graph before the pass, whose repeat is plain Unsqueeze/Expand/Reshape and
// whose attention is the op's reference on the repeated heads.
#include "passes/attention_gqa.h"

#include <gtest/gtest.h>

#include "fused_attention_model.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;
using testing_build::WithFusedAttention;

// Llama-style attention: q [batch, 8, 5, 4]; k0, v0 [batch, kv_heads, 6, 4],
// each repeated to 8 heads by repeat_kv (unless `plain_v`: v has 8 heads).
std::unique_ptr<Model> LlamaAttention(int64_t kv_heads, bool plain_v = false) {
  GraphBuilder b;
  const Dim batch = Dim::Symbol("batch");
  Value* q = b.Input("q", Shape({batch, 8, 5, 4}));
  auto repeat = [&](const std::string& name) {
    Value* x = b.Input(name, Shape({batch, kv_heads, 6, 4}));
    Value* u = b.Op("Unsqueeze", name + "_u", {x, b.Int64s(name + "_axes", {2})});
    Value* e = b.Op("Expand", name + "_e", {u, b.Int64s(name + "_wide", {1, kv_heads, 8 / kv_heads, 6, 4})});
    return b.Op("Reshape", name + "_r", {e, b.Int64s(name + "_heads", {0, 8, 6, 4})});
  };
  Value* k = repeat("k");
  Value* v = plain_v ? b.Input("v", Shape({batch, 8, 6, 4})) : repeat("v");
  Value* kt = b.Op("Transpose", "kt", {k}, {{"perm", Attribute::FromInts({0, 1, 3, 2})}});
  Value* s = b.Op("Mul", "scaled", {b.Op("MatMul", "scores", {q, kt}), b.Scalar("scale", 0.5)});
  Value* p = b.Op("Softmax", "probs", {s}, {{"axis", Attribute::FromInt(-1)}});
  b.Output(b.Op("MatMul", "ctx", {p, v}));
  return WithFusedAttention(b.Done());
}

TEST(AttentionGqa, RepeatKvCopiesGoAndTheAttentionReadsTheKvHeads) {
  for (int64_t kv_heads : {2, 1}) {  // grouped-query, multi-query
    auto f = RunPassAndCompare(*LlamaAttention(kv_heads), RunAttentionGqa, 3, 1e-5);
    EXPECT_EQ(CountOps(*f, "Expand"), 0) << kv_heads;
    EXPECT_EQ(CountOps(*f, "Unsqueeze"), 0) << kv_heads;
    for (const Node* n : f->graph->nodes()) {
      if (n->op_type != "Attention") continue;
      EXPECT_EQ(n->input(1)->shape().ToString(), "[batch," + std::to_string(kv_heads) + ",6,4]");
      EXPECT_EQ(n->input(2)->shape().ToString(), "[batch," + std::to_string(kv_heads) + ",6,4]");
    }
  }
}

TEST(AttentionGqa, KAndVMustBothBeRepeats) {
  auto m = LlamaAttention(2, /*plain_v=*/true);
  auto f = RunPassAndCompare(*m, RunAttentionGqa, 3, 0.0);
  EXPECT_EQ(CountOps(*f, "Expand"), 1);
}

}  // namespace
}  // namespace kiln
