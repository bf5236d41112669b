// attention_windows: rank-5 windowed attention (MaxViT's form) runs at rank 4
// with the window axis in the batch, then fuses (the oracle: the rank-5 graph
// on the CPU reference).
#include "passes/attention_windows.h"

#include <gtest/gtest.h>

#include "build/build_passes.h"
#include "graph_builder.h"
#include "passes/attention_views.h"
#include "passes/fuse_attention.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::Perm;
using testing_build::RunPassAndCompare;

constexpr int64_t kWindows = 3, kSeq = 5, kHeads = 2, kDim = 4;

// MaxViT: x [B, G, S, H·D] per projection → [B, G, S, H, D] → [B, G, H, S, D];
// K scaled, then transposed for the product; relative-position bias `bias_dims`;
// Y back to [B, G, S, H·D]. `packed`: Q, K and V are column blocks of one
// projection of one input (MaxViT's to_qkv Linear, read through three Slices).
std::unique_ptr<Model> WindowAttention(std::vector<int64_t> bias_dims, bool g_of_k_broadcast = false,
                                       bool packed = false) {
  GraphBuilder b;
  const Dim batch = Dim::Symbol("batch");
  constexpr int64_t kWidth = kHeads * kDim;
  Value* qkv = nullptr;
  if (packed) {
    Value* x = b.Input("x", Shape({batch, kWindows, kSeq, kWidth}));
    qkv = b.Op("MatMul", "to_qkv", {x, b.Const("w_qkv", {kWidth, 3 * kWidth})});
  }
  auto heads = [&](const char* name, int64_t g) {
    const int64_t slot = name[0] == 'q' ? 0 : name[0] == 'k' ? 1 : 2;
    Value* x = packed ? b.Op("Slice", std::string(name) + "_cols",
                             {qkv, b.Int64s(std::string(name) + "_begin", {slot * kWidth}),
                              b.Int64s(std::string(name) + "_end", {(slot + 1) * kWidth}),
                              b.Int64s(std::string(name) + "_axes", {-1})})
                      : b.Input(name, Shape({batch, g, kSeq, kWidth}));
    Value* r = b.Op("Reshape", std::string(name) + "_heads", {x, b.Int64s(std::string(name) + "_shape",
                                                                          {0, g, kSeq, kHeads, kDim})});
    return b.Op("Transpose", std::string(name) + "_t", {r}, Perm({0, 1, 3, 2, 4}));
  };
  Value* q = heads("q", kWindows);
  Value* k = b.Op("Mul", "k_scaled", {heads("k", g_of_k_broadcast ? 1 : kWindows), b.Scalar("c", 0.5)});
  Value* kt = b.Op("Transpose", "kt", {k}, Perm({0, 1, 2, 4, 3}));
  Value* v = heads("v", kWindows);
  Value* s = b.Op("Add", "biased", {b.Op("MatMul", "scores", {q, kt}), b.Const("bias", bias_dims)});
  Value* p = b.Op("Softmax", "probs", {s}, {{"axis", Attribute::FromInt(-1)}});
  Value* y = b.Op("Transpose", "y_t", {b.Op("MatMul", "ctx", {p, v})}, Perm({0, 1, 3, 2, 4}));
  b.Output(b.Op("Reshape", "y", {y, b.Int64s("y_shape", {0, kWindows, kSeq, kWidth})}));
  return b.Done();
}

int CountRank5(const Model& m, const char* op) {
  int n = 0;
  for (const Node* node : m.graph->nodes())
    if (node->op_type == op && node->output(0)->shape().rank() == 5) ++n;
  return n;
}

TEST(AttentionWindows, MaxVitWindowAttentionFoldsAndFusesWithoutCopies) {
  for (const std::vector<int64_t>& bias : {std::vector<int64_t>{kHeads, kSeq, kSeq},
                                           std::vector<int64_t>{1, 1, kHeads, kSeq, kSeq}}) {
    auto f = RunPassAndCompare(*WindowAttention(bias), RunAttentionWindows, 3, 1e-5);
    EXPECT_EQ(CountRank5(*f, "MatMul"), 0);
    EXPECT_EQ(CountRank5(*f, "Transpose"), 0);
    EXPECT_EQ(CountOps(*f, "MatMul"), 2);
    PassContext ctx;
    ASSERT_TRUE(RunFuseAttention(*f, ctx).ok());
    ASSERT_TRUE(RunAttentionViews(*f, ctx).ok());
    EXPECT_EQ(CountOps(*f, "Attention"), 1) << "bias rank " << bias.size();
    EXPECT_EQ(CountOps(*f, "Transpose"), 0) << "bias rank " << bias.size();
    EXPECT_EQ(CountOps(*f, "Softmax"), 0);
    // Still the rank-5 graph's values after fusion.
    RunPassAndCompare(*WindowAttention(bias), [](Model& m, PassContext& c) -> Status {
      for (auto pass : {RunAttentionWindows, RunFuseAttention, RunAttentionViews}) {
        Status s = pass(m, c);
        if (!s.ok()) return s;
      }
      return Status::Ok();
    }, 2, 1e-5);
  }
}

TEST(AttentionWindows, WindowDependentBiasAndBroadcastWindowsStay) {
  // A bias per window ([G, 1, S, S], Swin's shifted-window mask) depends on the folded axis; K shared by every
  // window broadcasts in the product. Neither folds.
  for (auto* m : {WindowAttention({kWindows, 1, kSeq, kSeq}).release(),
                  WindowAttention({kHeads, kSeq, kSeq}, /*g_of_k_broadcast=*/true).release()}) {
    std::unique_ptr<Model> owned(m);
    auto f = RunPassAndCompare(*owned, RunAttentionWindows, 2, 0.0);
    EXPECT_EQ(CountRank5(*f, "MatMul"), 2);
  }
}

TEST(AttentionWindows, PackedProjectionIsOneProductAfterTheBuild) {
  // split_projection gives each column block its own product, attention_windows views each block's heads
  // through a second Reshape, and merge_layout (with dce) makes the two Reshapes one before pack_qkv, which
  // packs the blocks into one product again: MaxViT-T's 66 Q/K/V products became 22.
  auto build = [](Model& m, PassContext&) {
    std::vector<std::string> notes;
    return RunBuildPasses(m, BuildOptions{}, &notes);
  };
  auto f = RunPassAndCompare(*WindowAttention({kHeads, kSeq, kSeq}, false, /*packed=*/true), build, 2, 1e-5);
  EXPECT_EQ(CountOps(*f, "Attention"), 1);
  EXPECT_EQ(CountOps(*f, "MatMul") + CountOps(*f, "FusedMatMul"), 1);
  EXPECT_EQ(CountOps(*f, "Slice"), 0);
}

}  // namespace
}  // namespace kiln
