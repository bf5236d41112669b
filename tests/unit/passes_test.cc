// Golden-IR tests of the simplifier's folding and cleanup passes: shape
// inference runs first, then the pass (and dead-code elimination, which drops
// what the pass left unused); the printed IR before/after must match
// tests/golden/<name>.txt, the result must be verifier-clean and compute what
// the original computed on the CPU reference.
#include <gtest/gtest.h>

#include "ir/clone.h"
#include "ir/verifier.h"
#include "pass_test_util.h"
#include "passes/constant_fold.h"
#include "passes/dce.h"
#include "passes/eliminate_identity.h"
#include "passes/eliminate_nop.h"
#include "passes/fold_shapes.h"
#include "passes/infer_shapes_pass.h"
#include "reference/equivalence.h"

namespace kiln {
namespace {

using namespace testing_passes;  // NOLINT

// ---- shape_inference ----

TEST(ShapeInference, DropsStaleDeclarationsAndKeepsDefaultsRuntime) {
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim::Symbol("batch"), 6}));
  Value* k = b.Input("k", DataType::kInt64, Shape({2}));  // an input with a default: not a constant
  k->data = Tensor::Int64s({2, 3});
  b.graph().initializers.push_back(k);
  Value* r = b.Op1("Reshape", {x, b.Ints("s", {0, 2, 3})}, "r");
  r->type = TypeInfo::Tensor(DataType::kFloat, Shape({Dim::Symbol("stale"), 99}));  // wrong value_info
  Value* shape = b.Op1("Shape", {k}, "shape");
  b.Output(b.Op1("Relu", {r}, "out"));
  b.Output(b.Op1("Add", {k, shape}, "sum"));
  auto m = b.Take();
  std::string before = PrintIr(*m);
  PassContext ctx;
  ASSERT_TRUE(RunShapeInference(*m, ctx).ok());
  EXPECT_FALSE(ctx.changed);
  EXPECT_FALSE(m->graph->FindValue("sum")->data.has_value());  // k may be fed at run time
  ExpectGolden("shape_inference_basic", before, PrintIr(*m));
}

// ---- constant_fold ----

TEST(ConstantFold, FoldsConstantsAndAllConstantNodes) {
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim::Symbol("batch"), 4}));
  Value* c = b.Op1("Constant", {}, "c", {{"value", Attribute::FromTensor(Floats({4}, {1, 2, 3, 4}))}});
  Value* w = b.Init("w", Ramp({4, 4}));
  Value* wt = b.Op1("Transpose", {w}, "wt");  // 16 elements: folded by the pass, not inference
  Value* c2 = b.Op1("Add", {c, c}, "c2");
  Value* y = b.Op1("MatMul", {x, wt}, "y");
  b.Output(b.Op1("Add", {y, c2}, "out"));
  RunGolden("constant_fold_basic", b.Take(), RunConstantFold);
}

TEST(ConstantFold, NeverFoldsRandomOps) {
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({2}));
  Value* r = b.Op1("RandomUniform", {}, "r", {{"shape", Attribute::FromInts({2})}, {"seed", Attribute::FromFloat(1)}});
  Value* s = b.Op1("Add", {r, r}, "s");
  b.Output(b.Op1("Mul", {x, s}, "out"));
  auto m = b.Take();
  PassContext ctx;
  ASSERT_TRUE(RunShapeInference(*m, ctx).ok());
  ASSERT_TRUE(RunConstantFold(*m, ctx).ok());
  EXPECT_FALSE(ctx.changed);
  EXPECT_EQ(m->graph->num_nodes(), 3u);
}

TEST(ConstantFold, RespectsMaxFoldBytesAndWarns) {
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({64, 64}));
  Value* w = b.Init("w", Ramp({64, 64}));
  Value* wt = b.Op("Transpose", {w}, {"wt"}, {}, "big_transpose")->output(0);
  b.Output(b.Op1("Add", {x, wt}, "out"));
  PassContext ctx;
  ctx.max_fold_bytes = 1024;
  ctx = RunGolden("constant_fold_limit", b.Take(), RunConstantFold, false, ctx);
  ASSERT_EQ(ctx.warnings.size(), 1u);
  EXPECT_NE(ctx.warnings[0].find("big_transpose"), std::string::npos) << ctx.warnings[0];
  EXPECT_NE(ctx.warnings[0].find("max-fold-bytes"), std::string::npos) << ctx.warnings[0];
}

TEST(ConstantFold, TreatsInputsWithDefaultsAsRuntimeValues) {
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({2}));
  x->data = Floats({2}, {1, 2});
  b.graph().initializers.push_back(x);
  b.Output(b.Op1("Neg", {x}, "out"));
  auto m = b.Take();
  PassContext ctx;
  ASSERT_TRUE(RunShapeInference(*m, ctx).ok());
  ASSERT_TRUE(RunConstantFold(*m, ctx).ok());
  EXPECT_FALSE(ctx.changed);
  EXPECT_EQ(m->graph->num_nodes(), 1u);
}

// ---- fold_shapes ----

TEST(FoldShapes, SymbolicReshapeTargetUsesCopyDims) {
  // Reshape(x, Concat(Shape(x)[0], Shape(x)[1], 12, 64)) → Reshape(x, [0, 0, 12, 64]).
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim::Symbol("batch"), Dim::Symbol("seq"), 768}));
  Value* shape = b.Op1("Shape", {x}, "shape");
  Value* i0 = b.Ints("i0", {0});
  Value* i1 = b.Ints("i1", {1});
  Value* d0 = b.Op1("Gather", {shape, i0}, "d0", {{"axis", Attribute::FromInt(0)}});
  Value* d1 = b.Op1("Gather", {shape, i1}, "d1", {{"axis", Attribute::FromInt(0)}});
  Value* heads = b.Ints("heads", {12, 64});
  Value* target = b.Op1("Concat", {d0, d1, heads}, "target", {{"axis", Attribute::FromInt(0)}});
  b.Output(b.Op1("Reshape", {x, target}, "out"));
  RunGolden("fold_shapes_symbolic_reshape", b.Take(), RunFoldShapes);
}

TEST(FoldShapes, KnownDimsBecomeInitializers) {
  // Flatten written as Reshape(x, Concat(Shape(x)[0], -1)) with a fixed batch.
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({2, 3, 4}));
  Value* shape = b.Op1("Shape", {x}, "shape");
  Value* d0 = b.Op1("Gather", {shape, b.Init("zero", Tensor::ScalarInt64(0))}, "d0", {{"axis", Attribute::FromInt(0)}});
  Value* u = b.Op1("Unsqueeze", {d0, b.Ints("axes", {0})}, "u");
  Value* target = b.Op1("Concat", {u, b.Ints("minus1", {-1})}, "target", {{"axis", Attribute::FromInt(0)}});
  b.Output(b.Op1("Reshape", {x, target}, "out"));
  RunGolden("fold_shapes_known", b.Take(), RunFoldShapes);
}

TEST(FoldShapes, SymbolicFlattenKeepsItsMinusOne) {
  // Reshape(x, Concat(Shape(x)[0], -1)) with symbolic dims → Reshape(x, [0, -1]):
  // the original target had that -1 too.
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim::Symbol("batch"), Dim::Symbol("seq"), 4}));
  Value* shape = b.Op1("Shape", {x}, "shape");
  Value* d0 = b.Op1("Gather", {shape, b.Ints("i0", {0})}, "d0", {{"axis", Attribute::FromInt(0)}});
  Value* target = b.Op1("Concat", {d0, b.Ints("minus1", {-1})}, "target", {{"axis", Attribute::FromInt(0)}});
  b.Output(b.Op1("Reshape", {x, target}, "out"));
  RunGolden("fold_shapes_symbolic_flatten", b.Take(), RunFoldShapes);
}

TEST(FoldShapes, NoNewMinusOneBesideCopies) {
  // Reshape(x, Concat(Shape(x)[0], Shape(x)[1] * Shape(x)[2])): [0, -1] would fail
  // on an empty batch where the original works, so the chain stays.
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim::Symbol("batch"), Dim::Symbol("seq"), 4}));
  Value* shape = b.Op1("Shape", {x}, "shape");
  Value* d0 = b.Op1("Gather", {shape, b.Ints("i0", {0})}, "d0", {{"axis", Attribute::FromInt(0)}});
  Value* d1 = b.Op1("Gather", {shape, b.Ints("i1", {1})}, "d1", {{"axis", Attribute::FromInt(0)}});
  Value* d2 = b.Op1("Gather", {shape, b.Ints("i2", {2})}, "d2", {{"axis", Attribute::FromInt(0)}});
  Value* prod = b.Op1("Mul", {d1, d2}, "prod");
  Value* target = b.Op1("Concat", {d0, prod}, "target", {{"axis", Attribute::FromInt(0)}});
  b.Output(b.Op1("Reshape", {x, target}, "out"));
  auto m = b.Take();
  PassContext ctx;
  ASSERT_TRUE(RunShapeInference(*m, ctx).ok());
  Value* out = m->graph->FindValue("out");
  ASSERT_EQ(out->shape().ToString(), "[batch,seq*4]");
  ASSERT_TRUE(RunFoldShapes(*m, ctx).ok());
  EXPECT_EQ(out->producer()->input(1)->name(), "target");
}

TEST(FoldShapes, ReshapeTarget) {
  Shape in({Dim::Symbol("b"), Dim::Symbol("s"), 768});
  auto t = passes::ReshapeTarget(in, Shape({Dim::Symbol("b"), Dim::Symbol("s"), 12, 64}), true);
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, (std::vector<int64_t>{0, 0, 12, 64}));
  t = passes::ReshapeTarget(in, Shape({Dim::Symbol("b*s"), 768}), true);
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, (std::vector<int64_t>{-1, 768}));
  // Two dims nobody can express: no target.
  EXPECT_FALSE(passes::ReshapeTarget(in, Shape({Dim::Symbol("s"), Dim::Symbol("b"), 768}), true));
  // -1 beside a copied dim fails on empty inputs: only where the original had -1 too.
  EXPECT_FALSE(passes::ReshapeTarget(in, Shape({Dim::Symbol("b"), Dim::Symbol("s*768")}), true));
  t = passes::ReshapeTarget(in, Shape({Dim::Symbol("b"), Dim::Symbol("s*768")}), true, 1);
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, (std::vector<int64_t>{0, -1}));
  // Unknown dims never count as copies.
  EXPECT_FALSE(passes::ReshapeTarget(Shape({Dim(), Dim()}), Shape({Dim(), Dim()}), true));
}

// ---- dce ----

TEST(Dce, RemovesDeadNodesAndInitializersKeepsInputs) {
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({2}));
  b.Input("unused_input", DataType::kFloat, Shape({2}));
  Value* w = b.Init("w", Floats({2}, {1, 2}));
  b.Init("unused_w", Floats({2}, {3, 4}));
  Value* dead = b.Op1("Mul", {x, w}, "dead");
  b.Op1("Relu", {dead}, "dead2");
  b.Output(b.Op1("Neg", {x}, "out"));
  RunGolden("dce_basic", b.Take(), RunDeadCodeElimination);
}

TEST(Dce, RemovesDeadIfAndItsOuterUses) {
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({2}));
  Value* cond = b.Input("cond", DataType::kBool, Shape::Scalar());
  Node* n = b.Op("If", {cond}, {"dead"});
  for (const char* branch : {"then_branch", "else_branch"}) {
    auto g = std::make_shared<Graph>();
    g->name = branch;
    g->parent = &b.graph();
    Node* inner = g->AddNode("Neg", "inner");
    inner->AddInput(x);  // outer value
    Value* o = g->AddValue(std::string(branch) + "_out");
    inner->AddOutput(o);
    g->outputs.push_back(o);
    Attribute a;
    a.type = Attribute::Type::kGraph;
    a.g = g;
    n->attrs[branch] = a;
  }
  b.Output(b.Op1("Relu", {x}, "out"));
  auto m = b.Take();
  PassContext ctx;
  ASSERT_TRUE(RunDeadCodeElimination(*m, ctx).ok());
  EXPECT_TRUE(ctx.changed);
  EXPECT_EQ(m->graph->num_nodes(), 1u);
  EXPECT_EQ(x->uses().size(), 1u);  // no pointer to the destroyed branch nodes
  EXPECT_TRUE(VerifyModel(*m).ok());
}

// ---- eliminate_identity ----

TEST(EliminateIdentity, RemovesIdentityAndDropoutKeepingOutputNames) {
  ModelBuilder b(13);
  Value* x = b.Input("x", DataType::kFloat, Shape({2, 3}));
  Value* r = b.Op1("Relu", {x}, "r");
  Value* i1 = b.Op1("Identity", {r}, "i1");
  Value* d =
      b.Op("Dropout", {i1, nullptr, b.Init("train", Tensor::FromVector<uint8_t>(DataType::kBool, {}, {0}))},
           {"d", ""})
          ->output(0);
  Value* s = b.Op1("Sigmoid", {d}, "s");
  b.Output(b.Op1("Identity", {s}, "out"));  // the graph output keeps its name
  RunGolden("eliminate_identity_basic", b.Take(), RunEliminateIdentity);
}

// torchvision's Swin exports its attention dropout as Dropout(ratio 0, training_mode true): y = x.
TEST(EliminateIdentity, TrainingDropoutOfRatioZero) {
  for (float ratio : {0.f, 0.1f}) {
    ModelBuilder b(13);
    Value* x = b.Input("x", DataType::kFloat, Shape({2, 3}));
    Value* train = b.Init("train", Tensor::FromVector<uint8_t>(DataType::kBool, {}, {1}));
    Value* d =
        b.Op("Dropout", {x, b.Init("ratio", Tensor::FromVector<float>(DataType::kFloat, {}, {ratio})), train},
             {"d", ""})
            ->output(0);
    b.Output(b.Op1("Relu", {d}, "out"));
    std::unique_ptr<Model> m = b.Take();
    PassContext ctx;
    ASSERT_TRUE(RunEliminateIdentity(*m, ctx).ok());
    EXPECT_EQ(ctx.changed, ratio == 0.f) << "ratio " << ratio;
  }
}

TEST(EliminateIdentity, KeepsWhatItCannotRemove) {
  ModelBuilder b(13);
  Value* x = b.Input("x", DataType::kFloat, Shape({2, 3}));
  b.Output(b.Op1("Identity", {x}, "copy"));  // graph input → graph output
  Node* d = b.Op("Dropout", {x}, {"d", "mask"});
  b.Output(d->output(1));  // mask wanted
  Value* t = b.Input("training", DataType::kBool, Shape::Scalar());
  b.Output(b.Op("Dropout", {x, nullptr, t}, {"d2"})->output(0));  // training mode unknown
  RunGolden("eliminate_identity_kept", b.Take(), RunEliminateIdentity, false);
}

TEST(EliminateIdentity, InsideSubgraphs) {
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({2}));
  Value* cond = b.Input("cond", DataType::kBool, Shape::Scalar());
  Node* n = b.Op("If", {cond}, {"out"});
  for (const char* branch : {"then_branch", "else_branch"}) {
    auto g = std::make_shared<Graph>();
    g->name = branch;
    g->parent = &b.graph();
    Node* neg = g->AddNode("Neg", std::string(branch) + "_neg");
    neg->AddInput(x);
    Value* t = g->AddValue(std::string(branch) + "_t");
    neg->AddOutput(t);
    Node* id = g->AddNode("Identity", std::string(branch) + "_id");
    id->AddInput(t);
    Value* o = g->AddValue(std::string(branch) + "_out");
    id->AddOutput(o);
    g->outputs.push_back(o);
    Attribute a;
    a.type = Attribute::Type::kGraph;
    a.g = g;
    n->attrs[branch] = a;
  }
  b.Output(n->output(0));
  RunGolden("eliminate_identity_subgraph", b.Take(), RunEliminateIdentity);
}

// ---- eliminate_nop ----

TEST(EliminateNop, RemovesProvableNoOps) {
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim::Symbol("batch"), 4}));
  Value* c = b.Op1("Cast", {x}, "c", {{"to", Attribute::FromInt(1)}});
  Value* r = b.Op1("Reshape", {c, b.Ints("same", {0, 4})}, "r");
  Value* t = b.Op1("Transpose", {r}, "t", {{"perm", Attribute::FromInts({0, 1})}});
  Value* m = b.Op1("Mul", {t, b.Init("one", Floats({4}, {1, 1, 1, 1}))}, "m");
  Value* p = b.Op1("Pad", {m, b.Ints("zeros", {0, 0, 0, 0})}, "p");
  Value* a = b.Op1("Add", {b.Init("zero", Floats({}, {0})), p}, "a");
  b.Output(b.Op1("Relu", {a}, "out"));
  RunGolden("eliminate_nop_basic", b.Take(), RunEliminateNop);
}

TEST(EliminateNop, KeepsOpsThatChangeSomething) {
  ModelBuilder b;
  Value* x = b.Input("x", DataType::kFloat, Shape({1, 4}));
  Value* c = b.Op1("Cast", {x}, "c", {{"to", Attribute::FromInt(11)}});                    // to double
  Value* m = b.Op1("Mul", {x, b.Init("one", Floats({2, 1}, {1, 1}))}, "m");  // broadcasts to [2,4]
  Value* s =
      b.Op1("Slice", {x, b.Ints("st", {3}), b.Ints("en", {-5}), b.Ints("ax", {1}), b.Ints("stp", {-1})},
            "s");  // same shape, reversed
  b.Output(c);
  b.Output(m);
  b.Output(s);
  RunGolden("eliminate_nop_kept", b.Take(), RunEliminateNop, false);
}

}  // namespace
}  // namespace kiln
