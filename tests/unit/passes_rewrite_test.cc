// Golden-IR tests of the simplifier's rewriting passes (layout merging,
// BatchNorm/bias folding, CSE), the pipeline (fixpoint, --skip) and the
// equivalence check `kiln simplify` verifies with.
#include <gtest/gtest.h>

#include "ir/clone.h"
#include "ir/verifier.h"
#include "pass_test_util.h"
#include "passes/cse.h"
#include "passes/dce.h"
#include "passes/fold_pad.h"
#include "passes/fuse_batchnorm.h"
#include "passes/fuse_bias.h"
#include "passes/infer_shapes_pass.h"
#include "passes/merge_layout.h"
#include "passes/pipeline.h"
#include "reference/equivalence.h"

namespace kiln {
namespace {

using namespace testing_passes;  // NOLINT

// BatchNormalization inputs: scale, bias, mean, var with `c` channels.
std::vector<Value*> BnParams(ModelBuilder& b, int64_t c) {
  return {b.Init("bn_scale", Ramp({c}, 1.0f)), b.Init("bn_bias", Ramp({c}, 0.3f)),
          b.Init("bn_mean", Ramp({c}, 0.1f)), b.Init("bn_var", Ramp({c}, 1.5f))};
}

// ---- merge_layout ----

TEST(MergeLayout, Transposes) {
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({2, 3, 4}));
  Value* t1 = b.Op1("Transpose", {x}, "t1", {{"perm", Attribute::FromInts({0, 2, 1})}});
  Value* t2 = b.Op1("Transpose", {t1}, "t2", {{"perm", Attribute::FromInts({2, 0, 1})}});
  b.Output(b.Op1("Relu", {t2}, "a"));
  Value* u1 = b.Op1("Transpose", {x}, "u1", {{"perm", Attribute::FromInts({1, 0, 2})}});
  b.Output(b.Op1("Transpose", {u1}, "b", {{"perm", Attribute::FromInts({1, 0, 2})}}));  // identity: b needs a producer
  RunGolden("merge_layout_transposes", b.Take(), RunMergeLayout);
}

TEST(MergeLayout, ReshapesAndSqueezes) {
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim::Symbol("batch"), 6, 4}));
  Value* r1 = b.Op1("Reshape", {x, b.Ints("s1", {0, 24})}, "r1");
  b.Output(b.Op1("Reshape", {r1, b.Ints("s2", {0, 4, 6})}, "a"));  // 0 copies batch: kept
  Value* u1 = b.Op1("Unsqueeze", {x, b.Ints("ax1", {0})}, "u1");
  b.Output(b.Op1("Unsqueeze", {u1, b.Ints("ax2", {-1})}, "b"));  // → Unsqueeze(x, [0, 4])
  Value* u2 = b.Op1("Unsqueeze", {x, b.Ints("ax3", {1})}, "u2");
  Value* sq = b.Op1("Squeeze", {u2, b.Ints("ax4", {1})}, "sq");  // cancels
  b.Output(b.Op1("Relu", {sq}, "c"));
  Value* f = b.Op1("Reshape", {x, b.Ints("s3", {0, 2, 3, 4})}, "f");
  b.Output(b.Op1("Flatten", {f}, "d", {{"axis", Attribute::FromInt(2)}}));  // → Reshape(x, [0, 2, 12])
  RunGolden("merge_layout_reshapes", b.Take(), RunMergeLayout);
}

TEST(MergeLayout, SqueezeAttributesBeforeOpset13) {
  ModelBuilder b(11);
  Value* x = b.Input("x", DataType::kFloat, Shape({1, 3, 1, 4}));
  Value* s1 = b.Op1("Squeeze", {x}, "s1", {{"axes", Attribute::FromInts({0})}});
  b.Output(b.Op1("Squeeze", {s1}, "out", {{"axes", Attribute::FromInts({1})}}));  // → Squeeze(x, axes=[0, 2])
  RunGolden("merge_layout_squeeze_opset11", b.Take(), RunMergeLayout);
}

// ---- fuse_batchnorm ----

TEST(FuseBatchNorm, IntoConv) {
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim::Symbol("batch"), 3, 5, 5}));
  Value* conv = b.Op1("Conv", {x, b.Init("w", Ramp({4, 3, 3, 3})), b.Init("b", Ramp({4}, 0.5f))}, "conv",
                      {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  std::vector<Value*> in = {conv};
  for (Value* p : BnParams(b, 4)) in.push_back(p);
  b.Output(b.Op1("BatchNormalization", in, "out", {{"epsilon", Attribute::FromFloat(1e-3f)}}));
  RunGolden("fuse_batchnorm_conv", b.Take(), RunFuseBatchNorm);
}

TEST(FuseBatchNorm, IntoGemmAndMatMulAdd) {
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim::Symbol("batch"), 3}));
  Value* g = b.Op1("Gemm", {x, b.Init("wg", Ramp({4, 3})), b.Init("cg", Ramp({4}))}, "g",
                   {{"transB", Attribute::FromInt(1)}, {"beta", Attribute::FromFloat(0.5f)}});
  std::vector<Value*> in = {g};
  for (Value* p : BnParams(b, 4)) in.push_back(p);
  Value* bn1 = b.Op1("BatchNormalization", in, "bn1");
  Value* mm = b.Op1("MatMul", {bn1, b.Init("wm", Ramp({4, 4}, 0.2f))}, "mm");
  Value* add = b.Op1("Add", {mm, b.Init("cm", Ramp({4}, -0.1f))}, "add");
  in[0] = add;
  b.Output(b.Op1("BatchNormalization", in, "out"));
  RunGolden("fuse_batchnorm_gemm_matmul", b.Take(), RunFuseBatchNorm);
}

TEST(FuseBatchNorm, KeepsConvWithOtherUsers) {
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({1, 3, 4, 4}));
  Value* conv = b.Op1("Conv", {x, b.Init("w", Ramp({4, 3, 1, 1}))}, "conv");
  std::vector<Value*> in = {conv};
  for (Value* p : BnParams(b, 4)) in.push_back(p);
  b.Output(b.Op1("BatchNormalization", in, "out"));
  b.Output(b.Op1("Relu", {conv}, "other"));
  RunGolden("fuse_batchnorm_kept", b.Take(), RunFuseBatchNorm, false);
}

// ---- fuse_bias ----

TEST(FuseBias, ConvAddAndMatMulAdd) {
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim::Symbol("batch"), 3, 4, 4}));
  Value* conv = b.Op1("Conv", {x, b.Init("w", Ramp({2, 3, 1, 1}))}, "conv");
  Value* a = b.Op1("Add", {conv, b.Init("bias", Floats({1, 2, 1, 1}, {0.5f, -1.0f}))}, "a");
  b.Output(a);
  Value* v = b.Input("v", DataType::kFloat, Shape({Dim::Symbol("batch"), 3}));
  Value* mm = b.Op1("MatMul", {v, b.Init("wm", Ramp({3, 5}))}, "mm");
  b.Output(b.Op1("Add", {b.Init("bm", Ramp({5}, 0.7f)), mm}, "out"));
  RunGolden("fuse_bias_conv_matmul", b.Take(), RunFuseBias);
}

// ---- fold_pad ----

TEST(FoldPad, ZeroPadsJoinConvAndAveragePool) {
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim::Symbol("batch"), 3, 6, 6}));
  // torch's avg_pool2d(padding=1): Pad + AveragePool (count_include_pad 0, no pads of its own)
  Value* px = b.Op1("Pad", {x, b.Ints("p1", {0, 0, 1, 1, 0, 0, 1, 1})}, "px");
  b.Output(b.Op1("AveragePool", {px}, "pool",
                 {{"kernel_shape", Attribute::FromInts({3, 3})}, {"strides", Attribute::FromInts({1, 1})}}));
  // tf2onnx's SAME conv: asymmetric Pad + Conv (with pads of its own too), explicit zero constant_value
  Value* v = b.Input("v", DataType::kFloat, Shape({Dim::Symbol("batch"), 3, 7, 7}));
  Value* pv =
      b.Op1("Pad", {v, b.Ints("p2", {0, 0, 0, 1, 0, 0, 1, 2}), b.Init("zero", Floats({}, {0.f}))}, "pv");
  b.Output(b.Op1("Conv", {pv, b.Init("w", Ramp({4, 3, 3, 3})), b.Init("bias", Ramp({4}, 0.3f))}, "conv",
                 {{"strides", Attribute::FromInts({2, 2})}, {"pads", Attribute::FromInts({1, 0, 0, 1})}}));
  RunGolden("fold_pad_conv_avgpool", b.Take(), RunFoldPad);
}

TEST(FoldPad, LeavesWhatItCannotFold) {
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({2, 3, 6, 6}));
  auto pool = [&](Value* in, const std::string& name, AttributeMap extra = {}) {
    extra["kernel_shape"] = Attribute::FromInts({3, 3});
    b.Output(b.Op1("AveragePool", {in}, name, std::move(extra)));
  };
  const std::vector<int64_t> spatial = {0, 0, 1, 1, 0, 0, 1, 1};
  pool(b.Op1("Pad", {x, b.Ints("p_reflect", spatial)}, "reflect",
             {{"mode", Attribute::FromString("reflect")}}),
       "a");
  pool(b.Op1("Pad", {x, b.Ints("p_one", spatial), b.Init("one", Floats({}, {1.f}))}, "ones"), "b");
  pool(b.Op1("Pad", {x, b.Ints("p_channel", {0, 1, 1, 1, 0, 0, 1, 1})}, "channel"), "c");
  Value* shared = b.Op1("Pad", {x, b.Ints("p_shared", spatial)}, "shared");
  pool(shared, "d");
  b.Output(b.Op1("Relu", {shared}, "e"));  // a second user
  pool(b.Op1("Pad", {x, b.Ints("p_ceil", spatial)}, "ceil"), "f", {{"ceil_mode", Attribute::FromInt(1)}});
  pool(b.Op1("Pad", {x, b.Ints("p_own", spatial)}, "own"), "g",
       {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  b.Output(b.Op1("MaxPool", {b.Op1("Pad", {x, b.Ints("p_max", spatial)}, "max")}, "h",
                 {{"kernel_shape", Attribute::FromInts({3, 3})}}));
  pool(b.Op1("Pad", {x, b.Ints("p_neg", {0, 0, -1, 1, 0, 0, 1, 1})}, "crop"), "i");
  RunGolden("fold_pad_leaves", b.Take(), RunFoldPad, /*expect_change=*/false);
}

// ---- cse ----

TEST(Cse, MergesDuplicatesButNotRandomOps) {
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({2, 3}));
  Value* c1 = b.Init("c1", Floats({3}, {1, 2, 3}));
  Value* c2 = b.Init("c2", Floats({3}, {1, 2, 3}));
  Value* a1 = b.Op1("Add", {x, c1}, "a1");
  Value* a2 = b.Op1("Add", {x, c2}, "a2");  // same once c2 is c1
  Value* s1 = b.Op1("Softmax", {a1}, "s1", {{"axis", Attribute::FromInt(1)}});
  Value* s2 = b.Op1("Softmax", {a2}, "s2", {{"axis", Attribute::FromInt(1)}});
  Value* s3 = b.Op1("Softmax", {a2}, "s3", {{"axis", Attribute::FromInt(0)}});  // other attribute
  Value* r1 = b.Op1("RandomNormalLike", {x}, "r1");
  Value* r2 = b.Op1("RandomNormalLike", {x}, "r2");
  Value* sum = b.Op1("Sum", {s1, s2, s3}, "sum");
  b.Output(sum);
  b.Output(b.Op1("Sub", {r1, r2}, "noise"));
  auto m = b.Take();
  PassContext ctx;
  ASSERT_TRUE(RunShapeInference(*m, ctx).ok());
  std::string before = PrintIr(*m);
  ASSERT_TRUE(RunCse(*m, ctx).ok());
  EXPECT_TRUE(ctx.changed);
  PassContext dce;
  ASSERT_TRUE(RunDeadCodeElimination(*m, dce).ok());
  EXPECT_TRUE(VerifyModel(*m).ok());
  ExpectGolden("cse_basic", before, PrintIr(*m));
}

// ---- pipeline ----

std::unique_ptr<Model> MixedModel() {
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim::Symbol("batch"), 3, 4, 4}));
  Value* id = b.Op1("Identity", {x}, "id");
  Value* conv = b.Op1("Conv", {id, b.Init("w", Ramp({4, 3, 3, 3})), b.Init("b", Ramp({4}))}, "conv",
                      {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  std::vector<Value*> in = {conv};
  for (Value* p : BnParams(b, 4)) in.push_back(p);
  Value* bn = b.Op1("BatchNormalization", in, "bn");
  Value* shape = b.Op1("Shape", {bn}, "shape");
  Value* d0 = b.Op1("Gather", {shape, b.Init("zero", Tensor::ScalarInt64(0))}, "d0", {{"axis", Attribute::FromInt(0)}});
  Value* u = b.Op1("Unsqueeze", {d0, b.Ints("axes", {0})}, "u");
  Value* target = b.Op1("Concat", {u, b.Ints("minus1", {-1})}, "target", {{"axis", Attribute::FromInt(0)}});
  Value* flat = b.Op1("Reshape", {bn, target}, "flat");
  Value* t1 = b.Op1("Transpose", {flat}, "t1", {{"perm", Attribute::FromInts({1, 0})}});
  Value* t2 = b.Op1("Transpose", {t1}, "t2", {{"perm", Attribute::FromInts({1, 0})}});
  b.Output(b.Op1("Identity", {t2}, "out"));
  return b.Take();
}

TEST(Pipeline, RunsToAFixpoint) {
  auto m = MixedModel();
  auto original = CloneModel(*m);
  PassContext ctx;
  ASSERT_TRUE(RunShapeInference(*m, ctx).ok());
  std::string before = PrintIr(*m);
  Status st = RunSimplify(*m, ctx);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_TRUE(ctx.changed);
  ExpectGolden("pipeline_mixed", before, PrintIr(*m));
  for (int64_t dim : {1, 3}) {  // symbolic dims (batch, seq) at 1 and 3
    EquivalenceOptions o;
    o.symbolic_dim = dim;
    EquivalenceReport report;
    Status eq = CheckEquivalent(*original, *m, o, &report);
    EXPECT_TRUE(eq.ok()) << eq.message();
    for (const std::string& v : report.vacuous) ADD_FAILURE() << "the equivalence check cannot fail: " << v;
  }
  // A second run finds nothing to do.
  PassContext again;
  ASSERT_TRUE(RunSimplify(*m, again).ok());
  EXPECT_FALSE(again.changed);
}

TEST(Pipeline, HonoursSkipAndRejectsUnknownPasses) {
  auto m = MixedModel();
  PassContext ctx;
  ctx.skip = {"fuse_batchnorm", "eliminate_identity"};
  ASSERT_TRUE(RunSimplify(*m, ctx).ok());
  int bn = 0, identity = 0;
  for (const Node* n : m->graph->nodes()) {
    bn += n->op_type == "BatchNormalization";
    identity += n->op_type == "Identity";
  }
  EXPECT_EQ(bn, 1);
  EXPECT_EQ(identity, 2);

  PassContext bad;
  bad.skip = {"no_such_pass"};
  Status st = RunSimplify(*m, bad);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("unknown pass 'no_such_pass'"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("constant_fold"), std::string::npos) << st.message();
}

TEST(Pipeline, SimplifiesAroundUnknownOps) {
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({2}));
  Value* i = b.Op1("Identity", {x}, "i");
  Node* custom = b.Op("MyOp", {i}, {"c"}, {}, "custom");
  custom->domain = "com.example";
  auto m = b.Take();
  m->opsets["com.example"] = 1;
  Value* c = custom->output(0);
  Value* k = m->graph->AddValue("k");
  k->data = Floats({2}, {1, 2});
  k->type = TypeInfo::Tensor(DataType::kFloat, Shape({2}));
  m->graph->initializers.push_back(k);
  Node* add = m->graph->AddNode("Add", "add");
  add->AddInput(c);
  add->AddInput(k);
  Value* out = m->graph->AddValue("out");
  add->AddOutput(out);
  m->graph->outputs.push_back(out);
  PassContext ctx;
  Status st = RunSimplify(*m, ctx);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(m->graph->num_nodes(), 2u);  // the Identity is gone, MyOp and Add stay
  EXPECT_EQ(custom->input(0), x);
}

// ---- equivalence ----

TEST(Equivalence, ReportsTheFirstDifference) {
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim::Symbol("n"), 3}));
  b.Output(b.Op1("Add", {x, b.Init("k", Floats({3}, {1, 2, 3}))}, "out"));
  auto a = b.Take();
  auto changed = CloneModel(*a);
  changed->graph->FindValue("k")->data = Floats({3}, {1, 2, 3.5f});
  EquivalenceOptions o;
  o.input_dims["x"] = {2, 3};
  EXPECT_TRUE(CheckEquivalent(*a, *a, o).ok());
  Status st = CheckEquivalent(*a, *changed, o);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("output 'out' differs in 2 of 6 elements; worst at ["), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("rtol"), std::string::npos) << st.message();
}

// Token type ids index a 2-row embedding (BERT): random ints must stay below 2,
// else the original cannot run and nothing is verified.
TEST(Equivalence, RandomIndicesStayInRangeOfTheirGather) {
  ModelBuilder b;
  Value* ids = b.Input("ids", DataType::kInt64, Shape({Dim::Symbol("n"), 4}));
  Value* pos = b.Input("pos", DataType::kInt64, Shape({4}));
  b.Output(b.Op1("Gather", {b.Init("table", Floats({2, 3}, {1, 2, 3, 4, 5, 6})), ids}, "emb"));
  b.Output(b.Op1("Gather", {b.Init("wide", Floats({2, 3}, {1, 2, 3, 4, 5, 6})), pos}, "col",
                 {{"axis", Attribute::FromInt(-1)}}));
  auto m = b.Take();
  EquivalenceOptions o;
  o.input_dims["ids"] = {16, 4};
  auto feeds = RandomInputs(*m, o);
  ASSERT_TRUE(feeds.ok()) << feeds.status().message();
  const Tensor& t = feeds->at("ids").tensor;
  int64_t ones = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    EXPECT_GE(t.data<int64_t>()[i], 0);
    EXPECT_LT(t.data<int64_t>()[i], 2);
    ones += t.data<int64_t>()[i];
  }
  EXPECT_GT(ones, 0);  // both rows drawn
  const Tensor& p = feeds->at("pos").tensor;
  for (int64_t i = 0; i < p.numel(); ++i) EXPECT_LT(p.data<int64_t>()[i], 3);
  Status st = CheckEquivalent(*m, *m, o);
  EXPECT_TRUE(st.ok()) << st.message();
}

TEST(Equivalence, UnsupportedWhenTheOriginalCannotRun) {
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({2}));
  Node* n = b.Op("MyOp", {x}, {"out"}, {}, "custom");
  n->domain = "com.example";
  b.Output(n->output(0));
  auto m = b.Take();
  m->opsets["com.example"] = 1;
  Status st = CheckEquivalent(*m, *m);
  EXPECT_EQ(st.code(), StatusCode::kUnsupported) << st.message();
}

}  // namespace
}  // namespace kiln
