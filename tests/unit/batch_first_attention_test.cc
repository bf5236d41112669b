// batch_first_attention: nn.MultiheadAttention(batch_first=True) projects and
// attends sequence-first between two Transposes; after the pass it does both
// batch-first on views, and the CPU reference computes the same (batch 3, so
// a mix-up of the batch and sequence axes shows: at batch 1 they coincide).
#include "passes/batch_first_attention.h"

#include <gtest/gtest.h>

#include "fused_attention_model.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;
using testing_build::WithFusedAttention;

// torch 1.13's export of nn.MultiheadAttention(16, 2, batch_first=True) on
// x [batch, 5, 16]: Transpose to [5, batch, 16]; q, k, v = x·W + b, each
// viewed [5, batch·2, 8] and transposed to [batch·2, 5, 8]; bmm, softmax,
// bmm (kᵀ as the simplifier leaves it: one Transpose to [batch·2, 8, 5]); back to [5, batch·2, 8], [5·batch, 16], out_proj (Gemm), [5, batch, 16]
// and Transpose to [batch, 5, 16]. `extra_reader`: the first Transpose's
// output is a graph output too (the pass must leave it alone). `dynamic`: the
// sequence is symbolic, so the exporter reads the seq-first shape with a Shape
// node and reshapes the out_proj result to it.
std::unique_ptr<Model> TorchMha(bool extra_reader, bool dynamic = false) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), dynamic ? Dim::Symbol("seq") : Dim(5), 16}));
  Value* t = b.Op("Transpose", "seq_first", {x}, {{"perm", Attribute::FromInts({1, 0, 2})}});
  Value* heads = b.Int64s("heads", {dynamic ? 0 : 5, -1, 8});
  auto project = [&](const std::string& name) {
    Value* p = b.Op("MatMul", name + "_proj", {t, b.Const(name + "_w", {16, 16})});
    p = b.Op("Add", name + "_bias", {p, b.Const(name + "_b", {16})});
    return b.Op("Reshape", name + "_heads", {p, heads});
  };
  auto transpose = [&](const std::string& name, Value* in, std::vector<int64_t> perm) {
    return b.Op("Transpose", name, {in}, {{"perm", Attribute::FromInts(perm)}});
  };
  Value* q = b.Op("Mul", "q_scaled", {transpose("q_t", project("q"), {1, 0, 2}), b.Scalar("scaling", 0.35)});
  Value* kt = transpose("kt", project("k"), {1, 2, 0});  // the simplifier's merge of k's two Transposes
  Value* v = transpose("v_t", project("v"), {1, 0, 2});
  Value* p = b.Op("Softmax", "probs", {b.Op("MatMul", "scores", {q, kt})}, {{"axis", Attribute::FromInt(-1)}});
  Value* y = b.Op("MatMul", "ctx", {p, v});
  Value* ys = b.Op("Transpose", "ctx_t", {y}, {{"perm", Attribute::FromInts({1, 0, 2})}});
  Value* flat = b.Op("Reshape", "ctx_flat", {ys, b.Int64s("flat", {-1, 16})});
  Value* o = b.Op("Gemm", "out_proj", {flat, b.Const("o_w", {16, 16}), b.Const("o_b", {16})},
                  {{"transB", Attribute::FromInt(1)}});
  Value* back = dynamic ? b.Op("Shape", "seq_first_shape", {t}) : b.Int64s("seq_first_shape", {5, -1, 16});
  Value* o3 = b.Op("Reshape", "out_seq_first", {o, back});
  b.Output(b.Op("Transpose", "batch_first", {o3}, {{"perm", Attribute::FromInts({1, 0, 2})}}));
  if (extra_reader) b.Output(t);
  return WithFusedAttention(b.Done());
}

TEST(BatchFirstAttention, TransposesGoAndTheAttentionReadsBatchFirstViews) {
  auto m = TorchMha(false);
  const int transposes = CountOps(*m, "Transpose");
  ASSERT_GE(transposes, 2) << "the model has its two Transposes before the pass";
  auto f = RunPassAndCompare(*m, RunBatchFirstAttention, 3, 1e-5);
  EXPECT_EQ(CountOps(*f, "Transpose"), transposes - 2);
  for (const Node* n : f->graph->nodes()) {
    if (n->op_type != "Attention") continue;
    EXPECT_EQ(n->attr("layout")->s, "bshd");
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ(n->input(i)->shape().ToString(), "[batch,5,2,8]");
  }
  EXPECT_EQ(f->graph->outputs[0]->shape().ToString(), "[batch,5,16]");
}

// torch 2's form of the same module: each head split goes on to
// [batch, 2, 5, 8] (SDPA's 4-D input), and the output is permuted to
// [5, batch, 2, 8] before the merge; fuse_attention makes it "sbhd".
std::unique_ptr<Model> Torch2Mha() {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), 5, 16}));
  Value* t = b.Op("Transpose", "seq_first", {x}, {{"perm", Attribute::FromInts({1, 0, 2})}});
  auto split = [&](const std::string& name) {
    Value* p = b.Op("MatMul", name + "_proj", {t, b.Const(name + "_w", {16, 16})});
    p = b.Op("Add", name + "_bias", {p, b.Const(name + "_b", {16})});
    Value* r = b.Op("Reshape", name + "_heads", {p, b.Int64s(name + "_heads_shape", {5, -1, 8})});
    Value* n = b.Op("Transpose", name + "_t", {r}, {{"perm", Attribute::FromInts({1, 0, 2})}});
    return b.Op("Reshape", name + "_4d", {n, b.Int64s(name + "_4d_shape", {-1, 2, 5, 8})});
  };
  Value* q = split("q");
  Value* kt = b.Op("Transpose", "kt", {split("k")}, {{"perm", Attribute::FromInts({0, 1, 3, 2})}});
  Value* v = split("v");
  Value* s = b.Op("Mul", "scaled", {b.Op("MatMul", "scores", {q, kt}), b.Scalar("scaling", 0.35)});
  Value* p = b.Op("Softmax", "probs", {s}, {{"axis", Attribute::FromInt(-1)}});
  Value* y = b.Op("MatMul", "ctx", {p, v});
  Value* ys = b.Op("Transpose", "ctx_t", {y}, {{"perm", Attribute::FromInts({2, 0, 1, 3})}});
  Value* flat = b.Op("Reshape", "ctx_flat", {ys, b.Int64s("flat", {-1, 16})});
  Value* o = b.Op("Gemm", "out_proj", {flat, b.Const("o_w", {16, 16}), b.Const("o_b", {16})},
                  {{"transB", Attribute::FromInt(1)}});
  Value* o3 = b.Op("Reshape", "out_seq_first", {o, b.Int64s("seq_first_shape", {5, -1, 16})});
  b.Output(b.Op("Transpose", "batch_first", {o3}, {{"perm", Attribute::FromInts({1, 0, 2})}}));
  return WithFusedAttention(b.Done());
}

TEST(BatchFirstAttention, Torch2SbhdFormToo) {
  auto m = Torch2Mha();
  for (const Node* n : m->graph->nodes())
    if (n->op_type == "Attention") {
      EXPECT_EQ(n->attr("layout")->s, "sbhd");
    }
  const int transposes = CountOps(*m, "Transpose");
  auto f = RunPassAndCompare(*m, RunBatchFirstAttention, 3, 1e-5);
  EXPECT_EQ(CountOps(*f, "Transpose"), transposes - 2);
  for (const Node* n : f->graph->nodes())
    if (n->op_type == "Attention") {
      EXPECT_EQ(n->input(0)->shape().ToString(), "[batch,5,2,8]");
    }
}

TEST(BatchFirstAttention, SymbolicSequenceRunsOutProjIn3D) {
  // The out_proj Gemm cannot go back to [B, S, E] by a constant Reshape: it
  // becomes MatMul + Add on the 3-D batch-first value; the Shape of the
  // seq-first value becomes x's shape reordered.
  auto m = TorchMha(false, true);
  const int transposes = CountOps(*m, "Transpose");
  std::mt19937 rng(7);
  const std::map<std::string, RtValue> feed = {
      {"x", RtValue::FromTensor(testing_build::RandomTensor(DataType::kFloat, {3, 4, 16}, rng))}};  // batch != seq
  auto f = RunPassAndCompare(*m, RunBatchFirstAttention, 3, 1e-5, &feed);
  EXPECT_EQ(CountOps(*f, "Transpose"), transposes - 2);
  EXPECT_EQ(CountOps(*f, "Gemm"), 0);
  EXPECT_EQ(f->graph->outputs[0]->shape().ToString(), "[batch,seq,16]");
}

TEST(BatchFirstAttention, ASecondReaderOfTheTransposeKeepsIt) {
  auto m = TorchMha(true);
  const int transposes = CountOps(*m, "Transpose");
  auto f = RunPassAndCompare(*m, RunBatchFirstAttention, 3, 0.0);
  EXPECT_EQ(CountOps(*f, "Transpose"), transposes);
}

}  // namespace
}  // namespace kiln
