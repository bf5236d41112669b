// pack_qkv: the Q/K/V projections of one input become one product that
// kiln.Attention reads as head ranges. The oracle is the model before any
// attention pass (MatMul, Softmax, Transposes: ONNX ops' references) on the CPU
// reference; against the fused but unpacked model the packed one is bit for bit
// the same.
#include "passes/pack_qkv.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "build/build_passes.h"
#include "graph_builder.h"
#include "passes/attention_scale.h"
#include "passes/attention_views.h"
#include "passes/fuse_attention.h"
#include "reference/compare.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

constexpr int64_t kHidden = 16, kHeads = 4, kHeadDim = 4;

struct Form {
  bool bias = true;  // MatMul + Add (BERT); false: MatMul alone (T5, ViT after split_projection)
  bool computed_shape =
      false;           // the head split's shape from Shape/Slice/Concat (HF's view(*x.shape[:-1], H, D))
  bool cross = false;  // K and V from a second input (an encoder's memory)
  bool gemm = false;   // 2-D tokens [10, E] through Gemm(transB) and Reshape([-1, S, H, D])
  bool q_also_output = false;  // Q's projection is read elsewhere too
  bool split = false;          // GPT-2's c_attn: one MatMul + bias, Split into Q, K and V
  bool k_bias_free = false;    // Whisper: q_proj and v_proj with a bias, k_proj without
  bool q_scaled = false;       // BART: q_proj(x) * scaling before the head split (attention_scale takes it)
};

// HF BERT's self-attention: three Linear layers, each viewed as [B, S, H, D] and
// transposed to heads, scores scaled, softmax, context merged back to [B, S, E].
std::unique_ptr<Model> Attention(const Form& f) {
  GraphBuilder b;
  const Dim batch = Dim::Symbol("batch");
  Value* x = f.gemm ? b.Input("x", Shape({10, kHidden})) : b.Input("x", Shape({batch, 5, kHidden}));
  Value* mem = f.cross ? b.Input("mem", Shape({batch, 6, kHidden})) : x;
  auto heads_shape = [&](const std::string& name, Value* of, int64_t seq) {
    if (f.gemm) return b.Int64s(name, {-1, seq, kHeads, kHeadDim});
    if (!f.computed_shape) return b.Int64s(name, {0, 0, kHeads, kHeadDim});
    Value* lead =
        b.Op("Slice", name + "_lead",
             {b.Op("Shape", name + "_of", {of}), b.Int64s(name + "_s", {0}), b.Int64s(name + "_e", {2})});
    return b.Op("Concat", name, {lead, b.Int64s(name + "_hd", {kHeads, kHeadDim})},
                {{"axis", Attribute::FromInt(0)}});
  };
  auto project = [&](const std::string& name, Value* in, int64_t seq, std::vector<int64_t> perm) {
    Value* y;
    if (f.gemm) {
      y = b.Op("Gemm", name, {in, b.Const(name + "_w", {kHidden, kHidden}), b.Const(name + "_b", {kHidden})},
               {{"transB", Attribute::FromInt(1)}});
    } else {
      y = b.Op("MatMul", name, {in, b.Const(name + "_w", {kHidden, kHidden})});
      if (f.bias && !(name == "k" && f.k_bias_free))
        y = b.Op("Add", name + "_add", {y, b.Const(name + "_b", {kHidden})});
    }
    if (name == "q" && f.q_scaled) y = b.Op("Mul", "q_scaling", {y, b.Scalar("scaling", 0.25)});
    if (name == "q" && f.q_also_output) b.Output(y);
    Value* r = b.Op("Reshape", name + "_heads", {y, heads_shape(name + "_shape", in, seq)});
    return b.Op("Transpose", name + "_t", {r}, {{"perm", Attribute::FromInts(perm)}});
  };
  const int64_t kv_seq = f.cross ? 6 : 5;
  Value *q, *k, *v;
  if (f.split) {
    Value* y = b.Op("Add", "c_attn_add",
                    {b.Op("MatMul", "c_attn", {x, b.Const("c_attn_w", {kHidden, 3 * kHidden})}),
                     b.Const("c_attn_b", {3 * kHidden})});
    Node* split = y->producer()->graph()->AddNode("Split", "split");
    split->AddInput(y);
    split->AddInput(b.Int64s("sizes", {kHidden, kHidden, kHidden}));
    split->attrs["axis"] = Attribute::FromInt(-1);
    Value* part[3];
    const char* names[3] = {"q", "k", "v"};
    const std::vector<int64_t> perms[3] = {{0, 2, 1, 3}, {0, 2, 3, 1}, {0, 2, 1, 3}};
    Value* t[3];
    for (int i = 0; i < 3; ++i) {
      part[i] = y->producer()->graph()->AddValue(std::string(names[i]) + "_part");
      split->AddOutput(part[i]);
      Value* r = b.Op("Reshape", std::string(names[i]) + "_heads",
                      {part[i], b.Int64s(std::string(names[i]) + "_shape", {0, 0, kHeads, kHeadDim})});
      t[i] = b.Op("Transpose", std::string(names[i]) + "_t", {r}, {{"perm", Attribute::FromInts(perms[i])}});
    }
    q = t[0], k = t[1], v = t[2];
  } else {
    q = project("q", x, 5, {0, 2, 1, 3});
    k = project("k", mem, kv_seq, {0, 2, 3, 1});  // Kᵀ: [B, H, D, S]
    v = project("v", mem, kv_seq, {0, 2, 1, 3});
  }
  Value* s = b.Op("Mul", "scaled", {b.Op("MatMul", "scores", {q, k}), b.Scalar("scale", 0.5)});
  Value* p = b.Op("Softmax", "probs", {s}, {{"axis", Attribute::FromInt(-1)}});
  Value* ctx = b.Op("Transpose", "merge", {b.Op("MatMul", "ctx", {p, v})},
                    {{"perm", Attribute::FromInts({0, 2, 1, 3})}});
  b.Output(b.Op("Reshape", "out", {ctx, b.Int64s("out_shape", {0, 0, kHidden})}));
  return b.Done();
}

// The build's attention passes, then attention_scale and pack_qkv.
Status FuseThenPack(Model& m, PassContext& ctx) {
  KILN_RETURN_IF_ERROR(RunFuseAttention(m, ctx));
  KILN_RETURN_IF_ERROR(RunAttentionViews(m, ctx));
  KILN_RETURN_IF_ERROR(RunAttentionScale(m, ctx));
  return RunPackQkv(m, ctx);
}

Status FuseOnly(Model& m, PassContext& ctx) {
  KILN_RETURN_IF_ERROR(RunFuseAttention(m, ctx));
  return RunAttentionViews(m, ctx);
}

const Node* TheAttention(const Model& m) {
  for (const Node* n : m.graph->nodes())
    if (n->op_type == "Attention") return n;
  return nullptr;
}

std::vector<int64_t> HeadRanges(const Model& m) {
  const Node* a = TheAttention(m);
  if (!a || !a->attr("head_ranges")) return {};
  return a->attr("head_ranges")->ints;
}

TEST(PackQkv, BertSelfAttentionBecomesOneProduct) {
  auto raw = Attention(Form());
  auto f = RunPassAndCompare(*raw, FuseThenPack, 2, 1e-5);
  ASSERT_NE(TheAttention(*f), nullptr);
  EXPECT_EQ(CountOps(*f, "MatMul"), 1);
  EXPECT_EQ(CountOps(*f, "Add"), 1);
  EXPECT_EQ(CountOps(*f, "Transpose"), 0);
  EXPECT_EQ(HeadRanges(*f), (std::vector<int64_t>{0, 4, 4, 4, 8, 4}));
  const Node* a = TheAttention(*f);
  EXPECT_TRUE(a->input(0) == a->input(1) && a->input(1) == a->input(2));
  EXPECT_EQ(a->input(0)->shape().ToString(), "[batch,5,12,4]");
  const Node* product = a->input(0)->producer()->input(0)->producer()->input(0)->producer();
  ASSERT_TRUE(product && product->op_type == "MatMul");
  EXPECT_EQ(product->input(1)->shape().ToString(), "[16,48]");
}

TEST(PackQkv, BitForBitAgainstTheUnpackedAttention) {
  auto fused = RunPassAndCompare(*Attention(Form()), FuseOnly, 2, 1e-5);
  ASSERT_EQ(CountOps(*fused, "MatMul"), 3);
  auto f = RunPassAndCompare(*fused, RunPackQkv);  // tolerance 0: the same dot products and biases
  EXPECT_EQ(CountOps(*f, "MatMul"), 1);
}

TEST(PackQkv, FormsExportersWrite) {
  struct Case {
    const char* name;
    Form form;
    int64_t sym;
    std::vector<int64_t> ranges;
    int products;
  };
  auto with = [](bool Form::*field, bool value) {
    Form f;
    f.*field = value;
    return f;
  };
  const Case cases[] = {
      {"no bias (T5)", with(&Form::bias, false), 2, {0, 4, 4, 4, 8, 4}, 1},
      {"computed head shape (HF view)", with(&Form::computed_shape, true), 3, {0, 4, 4, 4, 8, 4}, 1},
      {"Gemm on 2-D tokens", with(&Form::gemm, true), 10, {0, 4, 4, 4, 8, 4}, 1},
      {"cross-attention: K and V", with(&Form::cross, true), 2, {0, 4, 0, 4, 4, 4}, 2},
      {"Q read elsewhere: K and V", with(&Form::q_also_output, true), 2, {0, 4, 0, 4, 4, 4}, 2},
      {"Split of one product (GPT-2)", with(&Form::split, true), 2, {0, 4, 4, 4, 8, 4}, 1},
      {"bias-free K (Whisper): zero bias columns", with(&Form::k_bias_free, true), 2, {0, 4, 4, 4, 8, 4}, 1},
      {"scaled Q (BART): the scale in the op", with(&Form::q_scaled, true), 2, {0, 4, 4, 4, 8, 4}, 1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto f = RunPassAndCompare(*Attention(c.form), FuseThenPack, c.sym, 1e-5);
    ASSERT_NE(TheAttention(*f), nullptr);
    EXPECT_EQ(HeadRanges(*f), c.ranges);
    EXPECT_EQ(CountOps(*f, c.form.gemm ? "Gemm" : "MatMul"), c.products);
    EXPECT_EQ(CountOps(*f, "Split"), 0);
    EXPECT_EQ(CountOps(*f, "Mul"), 0) << "the score scale and BART's query scaling are the op's scale";
  }
}

// The FP8 rewrite runs after the packing: one F8MatMul (one weight scale, one
// E4M3 copy of x) makes Q, K and V, and the built model still computes the
// float model within FP8's error (random-input calibration).
TEST(PackQkv, Fp8QuantizesThePackedProjectionOnce) {
  auto raw = Attention(Form());
  auto built = CloneModel(*raw);
  BuildOptions o;
  o.fp8 = true;
  o.fp8_model_rel_l2 = 0;
  std::vector<std::string> notes, precision;
  Status st = RunBuildPasses(*built, o, &notes, &precision);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(CountOps(*built, "F8MatMul"), 1);
  EXPECT_EQ(CountOps(*built, "QuantizeE4M3"), 1);
  EXPECT_EQ(HeadRanges(*built), (std::vector<int64_t>{0, 4, 4, 4, 8, 4}));
  auto feed = testing_build::RandomFeed(*raw, 2);
  auto want = ReferenceExecutor(*raw).Run(feed);
  auto got = ReferenceExecutor(*built).Run(feed);
  ASSERT_TRUE(want.ok() && got.ok());
  const Comparison c = CompareTensors((*want)[0].tensor, (*got)[0].tensor, Tolerance::RelL2(1.0));
  EXPECT_LT(c.rel_l2, 0.1);  // E4M3's 3 mantissa bits: a few % (a head read from the wrong range: O(1))
  EXPECT_GT(c.rel_l2, 0.0);  // and it is quantized
  std::printf("FP8 packed attention vs float: rel L2 %.4f\n", c.rel_l2);
}

TEST(PackQkv, ProjectionsOfDifferentInputsStay) {
  // Q from x, K from mem, V from a third input: nothing shares a product.
  GraphBuilder b;
  const Dim batch = Dim::Symbol("batch");
  Value* in[3] = {b.Input("x", Shape({batch, 5, kHidden})), b.Input("m1", Shape({batch, 6, kHidden})),
                  b.Input("m2", Shape({batch, 6, kHidden}))};
  Value* t[3];
  const char* names[3] = {"q", "k", "v"};
  const std::vector<int64_t> perms[3] = {{0, 2, 1, 3}, {0, 2, 3, 1}, {0, 2, 1, 3}};
  for (int i = 0; i < 3; ++i) {
    Value* y = b.Op("MatMul", names[i], {in[i], b.Const(std::string(names[i]) + "_w", {kHidden, kHidden})});
    Value* r = b.Op("Reshape", std::string(names[i]) + "_heads",
                    {y, b.Int64s(std::string(names[i]) + "_shape", {0, 0, kHeads, kHeadDim})});
    t[i] = b.Op("Transpose", std::string(names[i]) + "_t", {r}, {{"perm", Attribute::FromInts(perms[i])}});
  }
  Value* p =
      b.Op("Softmax", "probs", {b.Op("MatMul", "scores", {t[0], t[1]})}, {{"axis", Attribute::FromInt(-1)}});
  b.Output(b.Op("MatMul", "ctx", {p, t[2]}));
  auto f = RunPassAndCompare(*b.Done(), FuseThenPack, 2, 1e-5);
  ASSERT_NE(TheAttention(*f), nullptr);
  EXPECT_TRUE(HeadRanges(*f).empty());
  EXPECT_EQ(CountOps(*f, "MatMul"), 3);
}

}  // namespace
}  // namespace kiln
