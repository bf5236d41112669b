// Tests for the attention fusion pass (src/passes/fuse_attention.h) and
// kiln.Attention's CPU reference (src/ops/kiln_attention.cc): golden IR for
// the exporters' patterns (ViT's 3-D seq-first heads, BERT's 4-D heads with a
// mask, plain [B, H, S, D]), the chains it must leave alone, and numerics —
// each model runs through the ReferenceExecutor before and after the pass on
// random inputs; the unfused chain rounds after every op and the fused op
// once, so they agree to a tolerance. Also the exported ViT-B/16 from the zoo fixture
// when it is there.
#include "passes/fuse_attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

#include "build/build_passes.h"
#include "graph_builder.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "reference/executor.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::FindOp;
using testing_build::SimplifiedZooModel;
using Builder = testing_build::GraphBuilder;

constexpr double kTol = 1e-5;

std::unique_ptr<Model> FuseAndCompare(const Model& before, int64_t sym = 3) {
  return testing_build::RunPassAndCompare(before, RunFuseAttention, sym, kTol);
}

Attribute Perm(std::vector<int64_t> p) { return Attribute::FromInts(std::move(p)); }

// Inputs Q, K, V of [batch, 2, 6, 8] (heads first) and the raw scores Q·Kᵀ.
struct Scores {
  Value *q, *k, *v, *scores;
};
Scores HeadsFirstScores(Builder& b) {
  const Shape heads({Dim::Symbol("batch"), 2, 6, 8});
  Scores r;
  r.q = b.Input("q", heads);
  r.k = b.Input("k", heads);
  r.v = b.Input("v", heads);
  Value* kt = b.Op("Transpose", "kt", {r.k}, {{"perm", Perm({0, 1, 3, 2})}});
  r.scores = b.Op("MatMul", "scores", {r.q, kt});
  return r;
}

// torchvision ViT's nn.MultiheadAttention at opset 17: [S, N, D] heads
// (N = batch·heads), Q scaled by Div, K transposed to [N, D, S].
TEST(FuseAttention, SeqFirstHeads3D) {
  Builder b;
  const Shape heads({5, Dim::Symbol("n"), 4});
  Value* q = b.Input("q", heads);
  Value* k = b.Input("k", heads);
  Value* v = b.Input("v", heads);
  Value* qt = b.Op("Transpose", "qt", {q}, {{"perm", Perm({1, 0, 2})}});
  Value* qs = b.Op("Div", "qs", {qt, b.Scalar("two", 2.0)});
  Value* kt = b.Op("Transpose", "kt", {k}, {{"perm", Perm({1, 2, 0})}});
  Value* vt = b.Op("Transpose", "vt", {v}, {{"perm", Perm({1, 0, 2})}});
  Value* s = b.Op("MatMul", "scores", {qs, kt});
  Value* p = b.Op("Softmax", "probs", {s}, {{"axis", Attribute::FromInt(-1)}});
  Value* y = b.Op("MatMul", "ctx", {p, vt});
  b.Output(b.Op("Transpose", "yt", {y}, {{"perm", Perm({1, 0, 2})}}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m);
  EXPECT_EQ(PrintGraph(*f),
            "opset ai.onnx=17, kiln=1\n"
            "graph main {\n"
            "  input %q: float32[5,n,4]\n"
            "  input %k: float32[5,n,4]\n"
            "  input %v: float32[5,n,4]\n"
            "  %yt = kiln.Attention[layout=\"bshd\", scale=0.5](%q, %k, %v)  # scores\n"
            "  output %yt: float32[5,n,4]\n"
            "}\n");
}

// GPT-2 (transformers' eager attention): scores divided by √D, masked by
// torch.where(causal, w, finfo(float32).min), then the padding mask added:
// the Where becomes part of the bias (Where(causal, 0, min) + mask).
TEST(FuseAttention, CausalWhereMaskBecomesBias) {
  for (bool padding : {true, false}) {
    Builder b;
    const Scores in = HeadsFirstScores(b);
    Value* v = in.v;
    Value* s = b.Op("Div", "scaled", {in.scores, b.Scalar("sqrt_d", std::sqrt(8.0))});
    // Random keep/mask pattern (some rows fully masked), as a bool of [1, 1, S, S].
    Value* causal = b.Op("Greater", "causal", {b.Const("tri", {1, 1, 6, 6}), b.Scalar("zero", 0.0)});
    Value* w = b.Op("Where", "masked", {causal, s, b.Scalar("min", -3.4028234663852886e38)});
    Value* a = padding ? b.Op("Add", "padded", {w, b.Input("mask", Shape({Dim::Symbol("batch"), 1, 1, 6}))}) : w;
    Value* p = b.Op("Softmax", "probs", {a}, {{"axis", Attribute::FromInt(-1)}});
    b.Output(b.Op("MatMul", "ctx", {p, v}));
    auto m = b.Done();
    auto f = FuseAndCompare(*m);
    EXPECT_EQ(CountOps(*f, "Attention"), 1);
    EXPECT_EQ(CountOps(*f, "Softmax"), 0);
    EXPECT_EQ(CountOps(*f, "Where"), 1);  // Where(causal, 0, min), the bias
    EXPECT_EQ(CountOps(*f, "Add"), padding ? 1 : 0);
    const Node* att = FindOp(*f, "Attention");
    ASSERT_TRUE(att);
    EXPECT_EQ(att->num_inputs(), 4u);
  }
}

// DistilBERT (transformers' eager attention): scores.masked_fill(mask, min),
// i.e. Where(mask, min, scores): the scores in the Where's last slot. Fuses as
// the Where(causal, scores, min) form does, the bias being Where(mask, min, 0).
TEST(FuseAttention, MaskedFillWhereBecomesBias) {
  Builder b;
  const Scores in = HeadsFirstScores(b);
  Value* s = b.Op("Div", "scaled", {in.scores, b.Scalar("sqrt_d", std::sqrt(8.0))});
  // Padding: key positions whose mask value is 0, as a bool of [batch, 1, 1, S].
  Value* pad = b.Op("Less", "pad", {b.Input("keep", Shape({Dim::Symbol("batch"), 1, 1, 6})), b.Scalar("half", 0.0)});
  Value* w = b.Op("Where", "masked", {pad, b.Scalar("min", -3.4028234663852886e38), s});
  Value* p = b.Op("Softmax", "probs", {w}, {{"axis", Attribute::FromInt(-1)}});
  b.Output(b.Op("MatMul", "ctx", {p, in.v}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m);
  EXPECT_EQ(CountOps(*f, "Attention"), 1);
  EXPECT_EQ(CountOps(*f, "Softmax"), 0);
  const Node* att = FindOp(*f, "Attention");
  ASSERT_TRUE(att);
  ASSERT_EQ(att->num_inputs(), 4u);
  const Node* bias = att->input(3)->producer();
  ASSERT_TRUE(bias);
  EXPECT_EQ(bias->op_type, "Where");
  EXPECT_TRUE(bias->input(1)->data.has_value());  // min where masked, 0 elsewhere
}

// torch's SDPA as the dynamo exporter writes it: the Softmax's NaN rows (all
// keys masked) are zeroed before the product. The guard moves after the fused
// node. The mask here masks every key of some rows, so the guard matters.
TEST(FuseAttention, NanGuardAfterSoftmaxMovesAfterTheFusedNode) {
  Builder b;
  const Scores in = HeadsFirstScores(b);
  Value* v = in.v;
  Value* s = b.Op("Mul", "scaled", {in.scores, b.Scalar("c", 0.35)});
  // -inf over whole query rows where the constant is negative.
  Value* masked = b.Op("Less", "m", {b.Const("pattern", {1, 1, 6, 1}), b.Scalar("z", 0.0)});
  Value* bias = b.Op("Where", "bias", {masked, b.Scalar("neg_inf", -INFINITY), b.Scalar("zero_b", 0.0)});
  Value* p = b.Op("Softmax", "probs", {b.Op("Add", "biased", {s, bias})}, {{"axis", Attribute::FromInt(-1)}});
  Value* nan = b.Op("IsNaN", "isnan", {p});
  Value* w = b.Op("Where", "guard", {nan, b.Scalar("zero", 0.0), p});
  b.Output(b.Op("MatMul", "ctx", {w, v}));
  auto m = b.Done();
  // Some rows are fully masked (zeros after the guard), some are not.
  auto ref = ReferenceExecutor(*m).Run(testing_build::RandomFeed(*m, 3));
  ASSERT_TRUE(ref.ok());
  int zero_rows = 0, rows = 0;
  const Tensor& y = (*ref)[0].tensor;
  for (int64_t r = 0; r < y.numel() / 8; ++r, ++rows) {
    bool all_zero = true;
    for (int64_t c = 0; c < 8; ++c) all_zero = all_zero && y.ScalarAt(r * 8 + c) == 0.0;
    zero_rows += all_zero;
  }
  EXPECT_GT(zero_rows, 0);
  EXPECT_LT(zero_rows, rows);
  auto f = FuseAndCompare(*m);
  EXPECT_EQ(CountOps(*f, "Attention"), 1);
  EXPECT_EQ(CountOps(*f, "Softmax"), 0);
  EXPECT_EQ(CountOps(*f, "IsNaN"), 1);
  const Node* guard = f->graph->outputs[0]->producer();
  ASSERT_TRUE(guard);
  EXPECT_EQ(guard->op_type, "Where");
  EXPECT_EQ(guard->input(2)->producer()->op_type, "Attention");
}

// A Where that fills with a value that is not negligible next to the scores
// is not a mask: the chain is left alone.
TEST(FuseAttention, WhereWithAModerateFillStays) {
  Builder b;
  const Scores in = HeadsFirstScores(b);
  Value* v = in.v;
  Value* s = in.scores;
  Value* causal = b.Op("Greater", "causal", {b.Const("tri", {1, 1, 6, 6}), b.Scalar("zero", 0.0)});
  Value* w = b.Op("Where", "masked", {causal, s, b.Scalar("fill", -100.0)});
  Value* p = b.Op("Softmax", "probs", {w}, {{"axis", Attribute::FromInt(-1)}});
  b.Output(b.Op("MatMul", "ctx", {p, v}));
  auto f = FuseAndCompare(*b.Done());
  EXPECT_EQ(CountOps(*f, "Attention"), 0);
}

// Older GPT-2, GPT-Neo and GPT-J exports fill masked scores with masked_bias (-1e4, -1e9), not
// finfo.min: fused when the mask provably keeps a key in every row (a causal mask), where the bias form
// gives the same weights; a random mask (rows may be fully masked) keeps its chain. Forms: the buffer
// tril(ones) sliced as `bias[:, :, k - q : k, :k]` and cast to bool, and Trilu(ConstantOfShape(1)).
TEST(FuseAttention, LegacyCausalMaskedBiasFuses) {
  for (int form = 0; form < 3; ++form) {
    SCOPED_TRACE(form);
    Builder b;
    const Scores in = HeadsFirstScores(b);
    Value* causal;
    if (form == 0) {
      Tensor tri(DataType::kUInt8, {1, 1, 8, 8});
      for (int64_t i = 0; i < 8; ++i)
        for (int64_t j = 0; j < 8; ++j) tri.mutable_data<uint8_t>()[i * 8 + j] = j <= i;
      Value* buffer = b.Fixed("bias_buffer", tri);
      Value* rows =
          b.Op("Slice", "rows", {buffer, b.Int64s("r0", {2}), b.Int64s("r1", {8}), b.Int64s("ra", {2})});
      Value* cols =
          b.Op("Slice", "cols", {rows, b.Int64s("c0", {0}), b.Int64s("c1", {6}), b.Int64s("ca", {3})});
      causal = b.Op("Cast", "to_bool", {cols},
                    {{"to", Attribute::FromInt(static_cast<int64_t>(DataType::kBool))}});
    } else if (form == 1) {
      Tensor one(DataType::kFloat, {1});
      one.mutable_data<float>()[0] = 1.f;
      Attribute value;
      value.type = Attribute::Type::kTensor;
      value.t = one;
      Value* ones = b.Op("ConstantOfShape", "ones", {b.Int64s("square", {6, 6})}, {{"value", value}});
      Value* tril = b.Op("Trilu", "tril", {ones}, {{"upper", Attribute::FromInt(0)}});
      Value* r = b.Op("Reshape", "view", {tril, b.Int64s("view_shape", {1, 1, 6, 6})});
      causal =
          b.Op("Cast", "to_bool", {r}, {{"to", Attribute::FromInt(static_cast<int64_t>(DataType::kBool))}});
    } else {  // a random keep pattern: some rows keep no key
      causal = b.Op("Greater", "causal", {b.Const("tri", {1, 1, 6, 6}), b.Scalar("zero", 0.0)});
    }
    Value* w = b.Op("Where", "masked", {causal, in.scores, b.Scalar("masked_bias", form == 1 ? -1e9 : -1e4)});
    Value* p = b.Op("Softmax", "probs", {w}, {{"axis", Attribute::FromInt(-1)}});
    b.Output(b.Op("MatMul", "ctx", {p, in.v}));
    auto f = FuseAndCompare(*b.Done());
    EXPECT_EQ(CountOps(*f, "Attention"), form < 2 ? 1 : 0);
  }
}

// BERT: [B, S, H, D] heads, scores divided by √D, plus a [B, 1, 1, S] mask.
TEST(FuseAttention, SeqFirstHeads4DWithMask) {
  Builder b;
  const Shape heads({Dim::Symbol("batch"), 6, 2, 8});
  Value* q = b.Input("q", heads);
  Value* k = b.Input("k", heads);
  Value* v = b.Input("v", heads);
  Value* mask = b.Input("mask", Shape({Dim::Symbol("batch"), 1, 1, 6}));
  Value* qt = b.Op("Transpose", "qt", {q}, {{"perm", Perm({0, 2, 1, 3})}});
  Value* kt = b.Op("Transpose", "kt", {k}, {{"perm", Perm({0, 2, 3, 1})}});
  Value* vt = b.Op("Transpose", "vt", {v}, {{"perm", Perm({0, 2, 1, 3})}});
  Value* s = b.Op("MatMul", "scores", {qt, kt});
  Value* sd = b.Op("Div", "scaled", {s, b.Scalar("sqrt_d", std::sqrt(8.0))});
  Value* sm = b.Op("Add", "masked", {sd, mask});
  Value* p = b.Op("Softmax", "probs", {sm}, {{"axis", Attribute::FromInt(3)}});
  Value* y = b.Op("MatMul", "ctx", {p, vt});
  b.Output(b.Op("Transpose", "yt", {y}, {{"perm", Perm({0, 2, 1, 3})}}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m);
  EXPECT_EQ(CountOps(*f, "Transpose"), 0);
  const Node* a = FindOp(*f, "Attention");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->num_inputs(), 4u);
  EXPECT_EQ(a->input(3)->name(), "mask");
  EXPECT_EQ(a->attrs.at("layout").s, "bshd");
  EXPECT_NEAR(a->attrs.at("scale").f, 1.0 / std::sqrt(8.0), 1e-7);
}

// torch 2's nn.MultiheadAttention at opset 17: [S, N, D] heads transposed
// and reshaped to [B, H, S, D], Q and Kᵀ each scaled by √scale, Y transposed
// to [S, B, H, D].
TEST(FuseAttention, SeqBatchHeads) {
  Builder b;
  const Shape heads({5, 6, 4});  // S, N = B·H = 2·3, D
  auto to4 = [&](Value* x, const std::string& name) {
    Value* t = b.Op("Transpose", name + "_t", {x}, {{"perm", Perm({1, 0, 2})}});
    Value* shape = b.Op("Constant", name + "_shape", {},
                        {{"value", Attribute::FromTensor(Tensor::FromVector<int64_t>(DataType::kInt64, {4}, {2, 3, 5, 4}))}});
    return b.Op("Reshape", name + "_4d", {t, shape});
  };
  Value* q = to4(b.Input("q", heads), "q");
  Value* k = to4(b.Input("k", heads), "k");
  Value* v = to4(b.Input("v", heads), "v");
  Value* qs = b.Op("Mul", "qs", {q, b.Scalar("c1", 0.5)});
  Value* kt = b.Op("Transpose", "kt", {k}, {{"perm", Perm({0, 1, 3, 2})}});
  Value* ks = b.Op("Mul", "ks", {kt, b.Scalar("c2", 0.5)});
  Value* p = b.Op("Softmax", "probs", {b.Op("MatMul", "scores", {qs, ks})}, {{"axis", Attribute::FromInt(-1)}});
  Value* y = b.Op("MatMul", "ctx", {p, v});
  b.Output(b.Op("Transpose", "yt", {y}, {{"perm", Perm({2, 0, 1, 3})}}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m);
  EXPECT_EQ(CountOps(*f, "Transpose"), 0);
  EXPECT_EQ(CountOps(*f, "Reshape"), 3);
  const Node* a = FindOp(*f, "Attention");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->attrs.at("layout").s, "sbhd");
  EXPECT_FLOAT_EQ(a->attrs.at("scale").f, 0.25f);
  EXPECT_EQ(a->input(0)->shape().ToString(), "[5,2,3,4]");
  EXPECT_EQ(f->graph->outputs[0]->name(), "yt");
}

// torch 2's dynamo exporter writes Kᵀ as one Transpose of K's [S, N, D] to
// [N, D, S] and a Reshape to [B, H, D, S], and scales with [1]-shaped constants.
TEST(FuseAttention, SeqBatchHeadsDynamoKt) {
  Builder b;
  const Shape tokens({5, Dim::Symbol("batch"), 12});  // S, B, E = H·D = 3·4
  auto shape = [&](const std::string& name, std::vector<int64_t> dims) {
    const int64_t rank = static_cast<int64_t>(dims.size());
    return b.Op("Constant", name, {},
                {{"value", Attribute::FromTensor(Tensor::FromVector<int64_t>(DataType::kInt64, {rank}, dims))}});
  };
  auto heads = [&](const std::string& name) {  // [S, B·H, D]
    return b.Op("Reshape", name + "_heads", {b.Input(name, tokens), shape(name + "_hshape", {5, -1, 4})});
  };
  auto to4 = [&](Value* x, const std::string& name) {
    Value* t = b.Op("Transpose", name + "_t", {x}, {{"perm", Perm({1, 0, 2})}});
    return b.Op("Reshape", name + "_4d", {t, shape(name + "_shape", {-1, 3, 5, 4})});
  };
  Value* q = to4(heads("q"), "q");
  Value* v = to4(heads("v"), "v");
  Value* kt3 = b.Op("Transpose", "kt3", {heads("k")}, {{"perm", Perm({1, 2, 0})}});
  Value* kt = b.Op("Reshape", "kt", {kt3, shape("kt_shape", {-1, 3, 4, 5})});
  Value* qs = b.Op("Mul", "qs", {q, b.Scalar("c1", 0.5, {1})});
  Value* ks = b.Op("Mul", "ks", {kt, b.Scalar("c2", 0.5, {1})});
  Value* p = b.Op("Softmax", "probs", {b.Op("MatMul", "scores", {qs, ks})}, {{"axis", Attribute::FromInt(-1)}});
  b.Output(b.Op("Transpose", "yt", {b.Op("MatMul", "ctx", {p, v})}, {{"perm", Perm({2, 0, 1, 3})}}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m, 2);
  EXPECT_EQ(CountOps(*f, "Transpose"), 0);
  EXPECT_EQ(CountOps(*f, "Attention"), 1);
  const Node* a = FindOp(*f, "Attention");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->attrs.at("layout").s, "sbhd");
  EXPECT_EQ(a->input(1)->shape().ToString(), a->input(0)->shape().ToString());
}

// Plain [B, H, S, D] (what a model with its own transposes leaves): the
// scale on K after its Transpose and on the scores multiply.
TEST(FuseAttention, HeadsFirst) {
  Builder b;
  Value* q = b.Input("q", Shape({2, 3, 5, 4}));
  Value* k = b.Input("k", Shape({2, 3, 7, 4}));
  Value* v = b.Input("v", Shape({2, 3, 7, 6}));
  Value* kt = b.Op("Transpose", "kt", {k}, {{"perm", Perm({0, 1, 3, 2})}});
  Value* ks = b.Op("Mul", "ks", {b.Scalar("c", 0.5), kt});
  Value* s = b.Op("MatMul", "scores", {q, ks});
  Value* ss = b.Op("Mul", "scaled", {s, b.Scalar("c2", 0.25)});
  Value* p = b.Op("Softmax", "probs", {ss}, {{"axis", Attribute::FromInt(-1)}});
  b.Output(b.Op("MatMul", "ctx", {p, v}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m);
  EXPECT_EQ(CountOps(*f, "Attention"), 1);
  EXPECT_EQ(f->graph->num_nodes(), 1u);
  const Node* a = FindOp(*f, "Attention");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->attrs.at("layout").s, "bhsd");
  EXPECT_FLOAT_EQ(a->attrs.at("scale").f, 0.125f);
  EXPECT_EQ(f->graph->outputs[0]->name(), "ctx");
}

// Seq-first inputs, but Y itself is the graph output in [B, H, S, D]: a
// Transpose after the fused node turns its [B, S, H, D] result back.
TEST(FuseAttention, SeqFirstWithoutOutputTranspose) {
  Builder b;
  const Shape heads({2, 5, 3, 4});
  Value* q = b.Input("q", heads);
  Value* k = b.Input("k", heads);
  Value* v = b.Input("v", heads);
  Value* qt = b.Op("Transpose", "qt", {q}, {{"perm", Perm({0, 2, 1, 3})}});
  Value* kt = b.Op("Transpose", "kt", {k}, {{"perm", Perm({0, 2, 3, 1})}});
  Value* vt = b.Op("Transpose", "vt", {v}, {{"perm", Perm({0, 2, 1, 3})}});
  Value* p = b.Op("Softmax", "probs", {b.Op("MatMul", "scores", {qt, kt})});
  Value* y = b.Op("MatMul", "ctx", {p, vt});
  b.Output(b.Op("Relu", "relu", {y}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m);
  EXPECT_EQ(CountOps(*f, "Attention"), 1);
  EXPECT_EQ(CountOps(*f, "Transpose"), 1);
}

// Chains that must stay as they are.
TEST(FuseAttention, LeavesOtherChainsAlone) {
  auto build = [](int variant) {
    Builder b;
    const int64_t batch = variant == 3 ? 1 : 2;
    Value* q = b.Input("q", Shape({batch, 3, 5, 4}));
    // variant 2: K in [B, S, H, D] but Q and V not transposed from that layout.
    Value* k = b.Input("k", variant == 2 ? Shape({batch, 5, 3, 4}) : Shape({batch, 3, 5, 4}));
    Value* v = b.Input("v", Shape({batch, 3, 5, 4}));
    const std::vector<int64_t> kperm = variant == 2 ? std::vector<int64_t>{0, 2, 3, 1} : std::vector<int64_t>{0, 1, 3, 2};
    Value* s = b.Op("MatMul", "scores", {q, b.Op("Transpose", "kt", {k}, {{"perm", Perm(kperm)}})});
    if (variant == 3) s = b.Op("Add", "grown", {s, b.Input("big", Shape({2, 3, 5, 5}))});  // bias grows the scores
    Value* p = b.Op("Softmax", "probs", {s}, {{"axis", Attribute::FromInt(variant == 0 ? 2 : -1)}});
    b.Output(b.Op("MatMul", "ctx", {p, v}));
    if (variant == 1) b.Output(s);  // the scores are also an output
    return b.Done();
  };
  for (int variant = 0; variant < 4; ++variant) {
    auto m = build(variant);
    PassContext ctx;
    ASSERT_TRUE(RunFuseAttention(*m, ctx).ok());
    EXPECT_FALSE(ctx.changed) << "variant " << variant;
    EXPECT_EQ(CountOps(*m, "Attention"), 0) << "variant " << variant;
  }
}

// Q's and K's head sizes differ at run time: the reference names the node and shapes.
TEST(KilnAttention, RejectsMismatchedShapes) {
  Builder b;
  Value* q = b.Input("q", Shape({2, 3, 5, 4}));
  Value* k = b.Input("k", Shape({2, 3, 5, Dim::Symbol("dk")}));
  Value* v = b.Input("v", Shape({2, 3, 5, 4}));
  b.Output(b.Op("Attention", "attn", {q, k, v}, {{"scale", Attribute::FromFloat(1.f)}}, "kiln"));
  auto m = b.Done();
  auto out = ReferenceExecutor(*m).Run(testing_build::RandomFeed(*m, 6));
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("attn"), std::string::npos) << out.status().ToString();
  EXPECT_NE(out.status().message().find("head size"), std::string::npos) << out.status().ToString();
}

// head_ranges from a hostile or broken model: a clear error naming the node, at shape inference (known
// head counts) or at run time, with no overflow of first + count.
TEST(KilnAttention, BadHeadRangesAreErrors) {
  const std::vector<std::vector<int64_t>> bad = {
      {0, 2, 2, 2},                // not six
      {0, 2, 2, 2, 4, 0},          // a zero count
      {0, 2, 2, 2, INT64_MAX, 2},  // would overflow first + count
      {0, 2, 2, 2, 5, 2},          // V's range [5, 7) outside 6 heads
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    SCOPED_TRACE(i);
    for (bool symbolic : {false, true}) {
      Builder b;
      const Shape packed({2, 5, symbolic ? Dim::Symbol("h") : Dim(6), 4});
      Value* qkv = b.Input("qkv", packed);
      b.Output(b.Op("Attention", "attn", {qkv, qkv, qkv},
                    {{"scale", Attribute::FromFloat(1.f)},
                     {"layout", Attribute::FromString("bshd")},
                     {"head_ranges", Attribute::FromInts(bad[i])}},
                    "kiln"));
      auto m = b.Release();
      Status st = InferShapes(*m);
      if (st.ok()) {
        std::map<std::string, RtValue> feed = {
            {"qkv", RtValue::FromTensor(Tensor(DataType::kFloat, {2, 5, 6, 4}))}};
        auto out = ReferenceExecutor(*m).Run(feed);
        ASSERT_FALSE(out.ok()) << "symbolic " << symbolic;
        st = out.status();
      }
      EXPECT_NE(st.message().find("attn"), std::string::npos) << st.ToString();
      EXPECT_NE(st.message().find("head"), std::string::npos) << st.ToString();
    }
  }
}

// The reference against a hand computation: one head, two keys.
TEST(KilnAttention, ReferenceValues) {
  Builder b;
  Value* q = b.Input("q", Shape({1, 1, 1, 2}));
  Value* k = b.Input("k", Shape({1, 1, 2, 2}));
  Value* v = b.Input("v", Shape({1, 1, 2, 1}));
  Value* bias = b.Input("bias", Shape({2}));
  b.Output(b.Op("Attention", "attn", {q, k, v, bias}, {{"scale", Attribute::FromFloat(0.5f)}}, "kiln"));
  auto m = b.Done();
  auto put = [](std::vector<int64_t> dims, std::vector<float> vals) {
    Tensor t(DataType::kFloat, dims);
    for (size_t i = 0; i < vals.size(); ++i) t.mutable_data<float>()[i] = vals[i];
    return RtValue::FromTensor(t);
  };
  std::map<std::string, RtValue> feed = {{"q", put({1, 1, 1, 2}, {1, 2})},
                                         {"k", put({1, 1, 2, 2}, {1, 0, 0, 1})},
                                         {"v", put({1, 1, 2, 1}, {10, 20})},
                                         {"bias", put({2}, {0, -1})}};
  auto out = ReferenceExecutor(*m).Run(feed);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  // scores = 0.5·[1, 2] + [0, -1] = [0.5, 0]; softmax → w0 = e^.5/(e^.5+1).
  const double w0 = std::exp(0.5) / (std::exp(0.5) + 1.0);
  EXPECT_NEAR((*out)[0].tensor.ScalarAt(0), 10 * w0 + 20 * (1 - w0), 1e-5);
}

// transformers 5's masks are `mask.expand(batch, -1, q, k)` computed from
// shapes; shape inference cannot follow the -1, so the bias's head dim is
// unknown. The Add keeps the scores' shape, so no valid bias grows them: the
// bias joins the fused node, whose kernels check its run-time dims.
TEST(FuseAttention, BiasWithAnUnknownDim) {
  Builder b;
  const Scores in = HeadsFirstScores(b);
  Value* v = in.v;
  Value* mask = b.Input("mask", Shape({Dim::Symbol("batch"), Dim::Unknown(), 6, 6}));
  Value* s = b.Op("Mul", "scaled", {in.scores, b.Scalar("c", 0.35)});
  Value* p = b.Op("Softmax", "probs", {b.Op("Add", "masked", {s, mask})}, {{"axis", Attribute::FromInt(-1)}});
  b.Output(b.Op("MatMul", "ctx", {p, v}));
  auto m = b.Done();
  ASSERT_TRUE(m->graph->FindValue("masked")->shape()[1].known());  // broadcast(2, ?) is 2
  for (int64_t mask_heads : {1, 2}) {
    std::mt19937 rng(3);
    std::map<std::string, RtValue> feed;
    for (const char* name : {"q", "k", "v"})
      feed[name] = RtValue::FromTensor(testing_build::RandomTensor(DataType::kFloat, {3, 2, 6, 8}, rng));
    feed["mask"] = RtValue::FromTensor(testing_build::RandomTensor(DataType::kFloat, {3, mask_heads, 6, 6}, rng));
    auto f = testing_build::RunPassAndCompare(*m, RunFuseAttention, 3, kTol, &feed);
    EXPECT_EQ(CountOps(*f, "Attention"), 1);
    EXPECT_EQ(CountOps(*f, "Softmax"), 0);
  }
  // The same chain where the bias could grow the scores (the Add's dims are
  // not the scores') stays unfused.
  Builder g;
  const Scores in2 = HeadsFirstScores(g);
  Value* grow = g.Input("bias", Shape({Dim::Unknown(), Dim::Unknown(), 6, 6}));
  Value* p2 = g.Op("Softmax", "probs", {g.Op("Add", "biased", {in2.scores, grow})}, {{"axis", Attribute::FromInt(-1)}});
  g.Output(g.Op("MatMul", "ctx", {p2, in2.v}));
  auto unfused = FuseAndCompare(*g.Done(), 2);
  EXPECT_EQ(CountOps(*unfused, "Attention"), 0);
}

// T5 (transformers' T5Attention): the scores get the position bias, then the
// padding mask, by two Adds; no scale. Both addends become one bias.
TEST(FuseAttention, ChainOfBiasAdds) {
  Builder b;
  const Shape heads({Dim::Symbol("batch"), 6, 2, 8});  // [B, S, H, D]
  Value* q = b.Input("q", heads);
  Value* k = b.Input("k", heads);
  Value* v = b.Input("v", heads);
  Value* kt = b.Op("Transpose", "kt", {k}, {{"perm", Perm({0, 2, 3, 1})}});
  Value* s = b.Op("MatMul", "scores", {b.Op("Transpose", "qt", {q}, {{"perm", Perm({0, 2, 1, 3})}}), kt});
  Value* with_position = b.Op("Add", "position", {s, b.Const("position_bias", {1, 2, 6, 6})});
  Value* mask = b.Input("mask", Shape({Dim::Symbol("batch"), 1, 1, 6}));
  Value* p = b.Op("Softmax", "probs", {b.Op("Add", "padded", {with_position, mask})}, {{"axis", Attribute::FromInt(-1)}});
  Value* vt = b.Op("Transpose", "vt", {v}, {{"perm", Perm({0, 2, 1, 3})}});
  b.Output(b.Op("Transpose", "yt", {b.Op("MatMul", "ctx", {p, vt})}, {{"perm", Perm({0, 2, 1, 3})}}));
  auto f = FuseAndCompare(*b.Done());
  EXPECT_EQ(CountOps(*f, "Attention"), 1);
  EXPECT_EQ(CountOps(*f, "Softmax"), 0);
  EXPECT_EQ(CountOps(*f, "Add"), 1);  // position_bias + mask, the fused node's bias
  const Node* att = FindOp(*f, "Attention");
  ASSERT_TRUE(att);
  EXPECT_EQ(att->num_inputs(), 4u);
}

// T5 shares one position bias and one mask across its layers: the build makes their sum once (cse after the
// attention passes), not once per attention.
TEST(FuseAttention, LayersThatShareTheirBiasesSumThemOnce) {
  Builder b;
  const Shape heads({Dim::Symbol("batch"), 6, 2, 8});  // [B, S, H, D]
  Value* position_bias = b.Const("position_bias", {1, 2, 6, 6});
  Value* mask = b.Input("mask", Shape({Dim::Symbol("batch"), 1, 1, 6}));
  for (const std::string layer : {"l0", "l1", "l2"}) {
    Value* q = b.Input(layer + "_q", heads);
    Value* k = b.Input(layer + "_k", heads);
    Value* v = b.Input(layer + "_v", heads);
    Value* kt = b.Op("Transpose", layer + "_kt", {k}, {{"perm", Perm({0, 2, 3, 1})}});
    Value* qt = b.Op("Transpose", layer + "_qt", {q}, {{"perm", Perm({0, 2, 1, 3})}});
    Value* s = b.Op("MatMul", layer + "_scores", {qt, kt});
    Value* with_position = b.Op("Add", layer + "_position", {s, position_bias});
    Value* p = b.Op("Softmax", layer + "_probs", {b.Op("Add", layer + "_padded", {with_position, mask})},
                    {{"axis", Attribute::FromInt(-1)}});
    Value* vt = b.Op("Transpose", layer + "_vt", {v}, {{"perm", Perm({0, 2, 1, 3})}});
    b.Output(b.Op("Transpose", layer + "_yt", {b.Op("MatMul", layer + "_ctx", {p, vt})},
                  {{"perm", Perm({0, 2, 1, 3})}}));
  }
  std::unique_ptr<Model> built = b.Done();
  std::vector<std::string> notes;
  ASSERT_TRUE(RunBuildPasses(*built, BuildOptions{}, &notes).ok());
  EXPECT_EQ(CountOps(*built, "Attention"), 3);
  EXPECT_EQ(CountOps(*built, "Add"), 1) << "one position bias + mask for the three attentions";
}

// BertModel of transformers 5.17 exported by torch 2.11 (tests/fixtures/hf5_bert_tiny.onnx,
// two layers): the mask's unknown head dim (above) kept every layer unfused before.
TEST(FuseAttention, HfBertTransformers5) {
  auto m = testing_build::SimplifiedFixtureModel("hf5_bert_tiny.onnx");
  if (!m) return;  // the fixture is missing: a failure is recorded
  std::mt19937 rng(5);
  std::uniform_int_distribution<int64_t> token(0, 63);
  Tensor ids(DataType::kInt64, {2, 128});
  Tensor mask(DataType::kInt64, {2, 128});
  for (int64_t i = 0; i < ids.numel(); ++i) {
    ids.mutable_data<int64_t>()[i] = token(rng);
    mask.mutable_data<int64_t>()[i] = i < 128 || i % 128 < 90 ? 1 : 0;  // the second row is padded
  }
  std::map<std::string, RtValue> feed = {{"input_ids", RtValue::FromTensor(ids)},
                                         {"attention_mask", RtValue::FromTensor(mask)}};
  auto f = testing_build::RunPassAndCompare(*m, RunFuseAttention, 2, 1e-4, &feed);
  EXPECT_EQ(CountOps(*f, "Attention"), 2);
  EXPECT_EQ(CountOps(*f, "Softmax"), 0);
}

TEST(FuseAttention, VitB16Zoo) {
  auto m = SimplifiedZooModel("vit_b_16");
  if (!m) return;  // the fixture is missing: a failure is recorded
  const int transposes = CountOps(*m, "Transpose");
  auto f = testing_build::RunPassAndCompare(*m, RunFuseAttention, 1, 1e-4);
  EXPECT_EQ(CountOps(*f, "Attention"), 12);
  EXPECT_EQ(CountOps(*f, "Softmax"), 0);
  EXPECT_EQ(CountOps(*f, "Transpose"), transposes - 12 * 4);  // Q, K, V and Y of every layer
}

// torch 2's dynamo exporter (sbhd layout, dynamo's Kᵀ): a two-layer ViT,
// tests/fixtures/vit_tiny_dynamo.onnx (export_zoo.py --only vit_tiny --exporter dynamo).
TEST(FuseAttention, VitTinyDynamo) {
  auto m = testing_build::SimplifiedFixtureModel("vit_tiny_dynamo.onnx");
  if (!m) return;  // the fixture is missing: a failure is recorded
  auto f = testing_build::RunPassAndCompare(*m, RunFuseAttention, 2, 1e-4);
  EXPECT_EQ(CountOps(*f, "Attention"), 2);
  EXPECT_EQ(CountOps(*f, "Softmax"), 0);
}

}  // namespace
}  // namespace kiln
