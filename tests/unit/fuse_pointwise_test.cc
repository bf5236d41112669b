// Tests for the pointwise fusion pass (src/passes/fuse_pointwise.h) and the
// kiln.Pointwise op's CPU reference (src/ops/kiln_pointwise.cc): which nodes
// group, the cases left alone (shape arithmetic, paths that leave a group and
// come back, the kernel ABI's limits), and numerics: every model runs through
// the ReferenceExecutor before and after the pass and must agree bit for bit
// (the body runs the same references). The generated kernels themselves are
// tested in pointwise_codegen_test.cc.
#include "passes/fuse_pointwise.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>

#include "build/build_passes.h"
#include "build/codegen/pointwise_source.h"
#include "fixtures.h"
#include "graph_builder.h"
#include "ir/clone.h"
#include "ir/printer.h"
#include "onnx/import.h"
#include "reference/compare.h"
#include "plan/ir_codec.h"
#ifdef KILN_HAS_CUDA
#include "build/cuda/nvrtc_compile.h"
#endif

namespace kiln {
namespace {

using testing_build::CountOps;
using Builder = testing_build::GraphBuilder;

const Shape kSeq({Dim::Symbol("batch"), 8, 16});

std::unique_ptr<Model> Fuse(const Model& m) { return testing_build::RunPassAndCompare(m, RunFusePointwise); }

const Graph& Body(const Model& m, int which = 0) {
  int k = 0;
  for (const Node* n : m.graph->nodes())
    if (n->op_type == "Pointwise" && k++ == which) return *n->attr("body")->g;
  ADD_FAILURE() << "no Pointwise node " << which;
  return *m.graph;
}

TEST(FusePointwise, GeluTanhChainIsOneNode) {
  Builder b;
  Value* x = b.Input("x", kSeq);
  Value* x2 = b.Op("Mul", "x2", {x, x});
  Value* x3 = b.Op("Mul", "x3", {x2, x});
  Value* c = b.Op("Mul", "c", {x3, b.Scalar("k0", 0.044715)});
  Value* d = b.Op("Add", "d", {x, c});
  Value* e = b.Op("Mul", "e", {d, b.Scalar("k1", 0.7978845608)});
  Value* t = b.Op("Tanh", "t", {e});
  Value* g = b.Op("Add", "g", {t, b.Scalar("one", 1.0)});
  Value* h = b.Op("Mul", "h", {x, b.Scalar("half", 0.5)});
  b.Output(b.Op("Mul", "y", {h, g}));
  auto f = Fuse(*b.Done());
  ASSERT_EQ(f->graph->num_nodes(), 1u);
  const Node* n = f->graph->nodes()[0];
  EXPECT_EQ(n->domain, "kiln");
  EXPECT_EQ(n->op_type, "Pointwise");
  EXPECT_EQ(n->num_inputs(), 1u);  // x; the four scalars moved into the body
  EXPECT_EQ(n->output(0)->name(), "y");
  EXPECT_EQ(f->graph->outputs[0], n->output(0));
  const Graph& body = Body(*f);
  EXPECT_EQ(body.num_nodes(), 9u);
  EXPECT_EQ(body.initializers.size(), 4u);
  EXPECT_EQ(f->opsets.at("kiln"), 1);
}

TEST(FusePointwise, BiasResidualReluAroundMatMul) {
  Builder b;
  Value* x = b.Input("x", kSeq);
  Value* m = b.Op("MatMul", "mm", {x, b.Const("w", {16, 16})});
  Value* a = b.Op("Add", "bias", {m, b.Const("bias", {16})});
  Value* r = b.Op("Add", "res", {a, x});
  b.Output(b.Op("Relu", "relu", {r}));
  auto f = Fuse(*b.Done());
  EXPECT_EQ(CountOps(*f, "MatMul"), 1);
  ASSERT_EQ(CountOps(*f, "Pointwise"), 1);
  const Node* n = f->graph->nodes()[1];
  ASSERT_EQ(n->num_inputs(), 3u);  // operands in order of first use: mm, bias (broadcast), x
  EXPECT_EQ(n->input(0)->name(), "mm");
  EXPECT_EQ(n->input(1)->name(), "bias");
  EXPECT_EQ(n->input(2)->name(), "x");
}

TEST(FusePointwise, NoGroupLeavesAndComesBack) {
  // u = Exp(Relu(x)) is one group; the MatMul reads the Relu, and the Add
  // reads both: joining the Add to the first group would make the fused node
  // depend on itself, so the Add starts a group (with the Neg after it).
  Builder b;
  Value* x = b.Input("x", kSeq);
  Value* t = b.Op("Relu", "t", {x});
  Value* u = b.Op("Exp", "u", {t});
  Value* m = b.Op("MatMul", "mm", {t, b.Const("w", {16, 16})});
  Value* y = b.Op("Add", "y", {u, m});
  b.Output(b.Op("Neg", "z", {y}));
  auto f = Fuse(*b.Done());
  EXPECT_EQ(CountOps(*f, "Pointwise"), 2);
  EXPECT_EQ(CountOps(*f, "MatMul"), 1);
  // The first group's Relu output feeds the MatMul, so it is an output of it.
  const Node* first = f->graph->nodes()[0];
  ASSERT_EQ(first->op_type, "Pointwise");
  EXPECT_EQ(first->num_outputs(), 2u);
}

TEST(FusePointwise, ValueUsedOutsideIsAnOutput) {
  Builder b;
  Value* x = b.Input("x", kSeq);
  Value* s = b.Op("Sigmoid", "s", {x});
  b.Output(b.Op("Mul", "swish", {x, s}));
  b.Output(s);
  auto f = Fuse(*b.Done());
  ASSERT_EQ(f->graph->num_nodes(), 1u);
  const Node* n = f->graph->nodes()[0];
  ASSERT_EQ(n->num_outputs(), 2u);
  EXPECT_EQ(f->graph->outputs[0]->name(), "swish");
  EXPECT_EQ(f->graph->outputs[1]->name(), "s");
  EXPECT_EQ(f->graph->outputs[0]->producer(), n);
  EXPECT_EQ(f->graph->outputs[1]->producer(), n);
}

TEST(FusePointwise, SmallerProducerIsRecomputed) {
  // Relu over a [16] input feeds only the Add over [batch,8,16]: it joins the
  // group and is recomputed per element from a broadcast read of v.
  Builder b;
  Value* x = b.Input("x", kSeq);
  Value* v = b.Input("v", Shape({16}));
  Value* p = b.Op("Relu", "p", {v});
  Value* q = b.Op("Add", "q", {x, p});
  b.Output(b.Op("Tanh", "r", {q}));
  auto f = Fuse(*b.Done());
  ASSERT_EQ(f->graph->num_nodes(), 1u);
  const Node* n = f->graph->nodes()[0];
  ASSERT_EQ(n->num_inputs(), 2u);
  EXPECT_EQ(n->input(0)->name(), "v");
  EXPECT_EQ(n->input(1)->name(), "x");
}

TEST(FusePointwise, SmallerProducerUsedElsewhereStays) {
  // The Relu's [16] value is also a graph output: it cannot be recomputed
  // instead of stored, so it keeps its own node.
  Builder b;
  Value* x = b.Input("x", kSeq);
  Value* p = b.Op("Relu", "p", {b.Input("v", Shape({16}))});
  Value* q = b.Op("Add", "q", {x, p});
  b.Output(b.Op("Tanh", "r", {q}));
  b.Output(p);
  auto f = Fuse(*b.Done());
  EXPECT_EQ(CountOps(*f, "Relu"), 1);
  EXPECT_EQ(CountOps(*f, "Pointwise"), 1);
}

TEST(FusePointwise, ShapeArithmeticStaysOnTheHost) {
  // Cast(Shape(x)) * 2 → +1 is host shape arithmetic (the runtime folds it per
  // input shape); it is not device work and is not fused.
  Builder b;
  Value* x = b.Input("x", kSeq);
  Value* s = b.Op("Shape", "s", {x});
  Value* c = b.Op("Cast", "c", {s}, {{"to", Attribute::FromInt(static_cast<int64_t>(DataType::kFloat))}});
  Value* d = b.Op("Mul", "d", {c, b.Scalar("two", 2.0)});
  Value* e = b.Op("Add", "e", {d, b.Scalar("one", 1.0)});
  b.Output(b.Op("Relu", "y", {x}));
  b.Output(e);
  auto f = Fuse(*b.Done());
  EXPECT_EQ(CountOps(*f, "Pointwise"), 0);
  EXPECT_EQ(CountOps(*f, "Cast"), 1);
}

TEST(FusePointwise, TooManyInputsStaysUnfused) {
  // One distinct operand more than the kernel ABI's inputs.
  Builder b;
  Value* acc = b.Input("x", kSeq);
  for (int k = 0; k < KILN_PW_MAX_INPUTS; ++k)
    acc = b.Op("Add", "a" + std::to_string(k), {acc, b.Input("in" + std::to_string(k), kSeq)});
  b.Output(acc);
  auto f = Fuse(*b.Done());
  EXPECT_EQ(CountOps(*f, "Pointwise"), 0);
  EXPECT_EQ(CountOps(*f, "Add"), KILN_PW_MAX_INPUTS);
}

TEST(FusePointwise, UnknownDimsAreNotProvablyEqual) {
  // Dims without a name cannot be proved equal: nothing fuses.
  Builder b;
  Value* x = b.Input("x", Shape({Dim::Unknown(), 16}));
  b.Output(b.Op("Tanh", "t", {b.Op("Relu", "r", {x})}));
  auto f = Fuse(*b.Done());
  EXPECT_EQ(CountOps(*f, "Pointwise"), 0);
}

// x → LayerNorm written out as torch exports it before opset 17.
Value* LayerNormChain(Builder& b, Value* x) {
  const AttributeMap last = {{"axes", Attribute::FromInts({-1})}};
  Value* mean = b.Op("ReduceMean", "mean", {x}, last);
  Value* d = b.Op("Sub", "d", {x, mean});
  Value* var = b.Op("ReduceMean", "var", {b.Op("Pow", "sq", {d, b.Scalar("two", 2.0)})}, last);
  Value* sd = b.Op("Sqrt", "sd", {b.Op("Add", "ve", {var, b.Scalar("eps", 1e-5)})});
  return b.Op("Add", "y", {b.Op("Mul", "g", {b.Op("Div", "n", {d, sd}), b.Const("gamma", {16})}), b.Const("beta", {16})});
}

TEST(FusePointwise, DecomposedLayerNormIsOneRowKernel) {
  Builder b;
  b.Output(LayerNormChain(b, b.Input("x", kSeq)));
  auto f = Fuse(*b.Done());
  ASSERT_EQ(f->graph->num_nodes(), 1u);
  const Node* n = f->graph->nodes()[0];
  EXPECT_EQ(n->op_type, "Pointwise");
  ASSERT_EQ(n->num_inputs(), 3u);  // x, gamma, beta; the scalars are in the body
  EXPECT_EQ(Body(*f).num_nodes(), 9u);
}

TEST(FusePointwise, PerRowValueUsedOutsideKeepsItsGroupUnfused) {
  // The mean is also a graph output: a kernel stores over the domain only, so
  // the group that computes it stays unfused; the rest still fuses.
  Builder b;
  Value* x = b.Input("x", kSeq);
  b.Output(LayerNormChain(b, x));
  b.Output(x);  // replaced by the mean below, once shapes are inferred
  auto m = b.Done();
  Value* mean = m->graph->FindValue("mean");
  m->graph->outputs[1] = mean;
  auto f = Fuse(*m);
  EXPECT_GE(CountOps(*f, "ReduceMean"), 1);
}

TEST(FusePointwise, TransposeOfAnInputIsReadThroughItsPerm) {
  // NCHW → NHWC, then a bias and GELU-free activation chain over NHWC: the
  // Transpose goes into the group; a second use elsewhere would keep it.
  Builder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), 16, 4, 4}));
  Value* t = b.Op("Transpose", "t", {x}, {{"perm", Attribute::FromInts({0, 2, 3, 1})}});
  Value* a = b.Op("Add", "a", {t, b.Const("bias", {16})});
  b.Output(b.Op("Relu", "r", {a}));
  auto f = Fuse(*b.Done());
  ASSERT_EQ(f->graph->num_nodes(), 1u);
  const Node* n = f->graph->nodes()[0];
  ASSERT_EQ(n->num_inputs(), 2u);
  EXPECT_EQ(n->input(1)->name(), "x");  // absorbed inputs come after the plain ones
  EXPECT_EQ(Body(*f).nodes()[0]->op_type, "Transpose");
}

TEST(FusePointwise, TransposeUsedElsewhereStays) {
  Builder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), 16, 4, 4}));
  Value* t = b.Op("Transpose", "t", {x}, {{"perm", Attribute::FromInts({0, 2, 3, 1})}});
  b.Output(b.Op("Relu", "r", {b.Op("Add", "a", {t, b.Const("bias", {16})})}));
  b.Output(t);
  auto f = Fuse(*b.Done());
  EXPECT_EQ(CountOps(*f, "Transpose"), 1);
  EXPECT_EQ(CountOps(*f, "Pointwise"), 1);
}

// q * cos + rotate_half(q) * sin as transformers exports Llama's rotary
// embedding: q is [batch, heads, seq, 16] transposed from [batch, seq, heads,
// 16], rotate_half(q) = cat(-q[..., 8:], q[..., :8]).
Value* RotaryChain(Builder& b, Value* q, const std::string& tag) {
  const int64_t end = std::numeric_limits<int64_t>::max();
  Value* axes = b.Int64s(tag + "axes", {-1});
  Value* x1 = b.Op("Slice", tag + "x1", {q, b.Int64s(tag + "zero", {0}), b.Int64s(tag + "half", {8}), axes});
  Value* x2 = b.Op("Slice", tag + "x2", {q, b.Int64s(tag + "half2", {8}), b.Int64s(tag + "end", {end}), axes});
  Value* rot =
      b.Op("Concat", tag + "rot", {b.Op("Neg", tag + "neg", {x2}), x1}, {{"axis", Attribute::FromInt(-1)}});
  Value* cos = b.Input(tag + "cos", Shape({1, 1, Dim::Symbol("seq"), 16}));
  Value* sin = b.Input(tag + "sin", Shape({1, 1, Dim::Symbol("seq"), 16}));
  return b.Op("Add", tag + "y", {b.Op("Mul", tag + "qc", {q, cos}), b.Op("Mul", tag + "rs", {rot, sin})});
}

TEST(FusePointwise, RotaryIsOneKernel) {
  Builder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), Dim::Symbol("seq"), 4, 16}));
  Value* q = b.Op("Transpose", "q", {x}, {{"perm", Attribute::FromInts({0, 2, 1, 3})}});
  b.Output(RotaryChain(b, q, ""));
  auto f = Fuse(*b.Done());  // bit for bit on the CPU reference
  ASSERT_EQ(f->graph->num_nodes(), 1u) << PrintGraph(*f);
  const Node* n = f->graph->nodes()[0];
  EXPECT_EQ(n->op_type, "Pointwise");
  // cos, sin, then x three times: through the Transpose, and through it and
  // each Slice (the body keeps a copy of each view chain).
  ASSERT_EQ(n->num_inputs(), 5u);
  for (size_t i = 2; i < 5; ++i) EXPECT_EQ(n->input(i)->name(), "x");
  const Graph& body = Body(*f);
  EXPECT_EQ(body.nodes()[0]->op_type, "Transpose");
  int slices = 0, concats = 0;
  for (const Node* m : body.nodes()) {
    slices += m->op_type == "Slice";
    concats += m->op_type == "Concat";
  }
  EXPECT_EQ(slices, 2);
  EXPECT_EQ(concats, 1);
  auto k = codegen::GeneratePointwise(*n, f->OpsetOf(""), "k");
  ASSERT_TRUE(k.ok()) << k.status().ToString();
  ASSERT_EQ(k->input_views.size(), 5u);
  EXPECT_TRUE(k->input_views[0].empty());
  EXPECT_EQ(k->input_views[3].ops.size(), 2u);  // perm, then slice
  EXPECT_EQ(k->input_views[3].read_dims, (std::vector<std::pair<int64_t, int64_t>>{{3, 8}}));
  // The builder's fallback puts the body back: each view chain as its own
  // nodes, computing what the fused node does.
  auto back = CloneModel(*f);
  ASSERT_TRUE(UnfusePointwise(*back->graph, back->graph->nodes()[0]).ok());
  back->graph->RemoveUnusedValues();
  EXPECT_TRUE(VerifyModel(*back).ok());
  EXPECT_EQ(CountOps(*back, "Transpose"), 3);
  EXPECT_EQ(CountOps(*back, "Concat"), 1);
  auto feed = testing_build::RandomFeed(*f, 3);
  auto want = ReferenceExecutor(*f).Run(feed);
  auto got = ReferenceExecutor(*back).Run(feed);
  ASSERT_TRUE(want.ok() && got.ok());
  EXPECT_EQ(std::memcmp((*want)[0].tensor.raw(), (*got)[0].tensor.raw(), (*want)[0].tensor.nbytes()), 0);
}

TEST(FusePointwise, SliceReadElsewhereStays) {
  // x1 is also a graph output: its Slice runs, and the kernel reads its output.
  Builder b;
  Value* q = b.Input("q", Shape({Dim::Symbol("batch"), 4, Dim::Symbol("seq"), 16}));
  b.Output(RotaryChain(b, q, ""));
  auto m = b.Done();
  m->graph->outputs.push_back(m->graph->FindValue("x1"));
  auto f = Fuse(*m);
  EXPECT_EQ(CountOps(*f, "Slice"), 1);
  EXPECT_EQ(CountOps(*f, "Concat"), 0);
  EXPECT_EQ(CountOps(*f, "Pointwise"), 1);
}

TEST(FusePointwise, ConcatAlongAnUnknownExtentStays) {
  // The extents along the axis are symbolic: the kernel could not place the
  // branches, so the Concat runs as it is.
  Builder b;
  Value* a = b.Op("Relu", "a", {b.Input("x", kSeq)});
  Value* c = b.Op("Concat", "c", {a, b.Input("y", kSeq)}, {{"axis", Attribute::FromInt(0)}});
  b.Output(b.Op("Tanh", "t", {c}));
  auto f = Fuse(*b.Done());
  EXPECT_EQ(CountOps(*f, "Concat"), 1);
}

TEST(FusePointwise, ConcatBeforeANormStaysOutOfItsRowKernel) {
  // A cat feeding a decomposed LayerNorm: row kernels take no Concat, so the
  // cat (with the Relu before it) is one kernel and the norm another, whole.
  Builder b;
  Value* c = b.Op("Concat", "c",
                  {b.Op("Relu", "r", {b.Input("x", Shape({Dim::Symbol("batch"), 8, 10}))}),
                   b.Input("z", Shape({Dim::Symbol("batch"), 8, 6}))},
                  {{"axis", Attribute::FromInt(-1)}});
  b.Output(LayerNormChain(b, c));
  auto f = Fuse(*b.Done());
  ASSERT_EQ(CountOps(*f, "Pointwise"), 2) << PrintGraph(*f);
  EXPECT_EQ(Body(*f, 0).num_nodes(), 2u);  // Relu, Concat
  EXPECT_EQ(Body(*f, 1).num_nodes(), 9u);  // the norm
}

TEST(FusePointwise, UnfuseRestoresTheOps) {
  Builder b;
  Value* x = b.Input("x", kSeq);
  Value* s = b.Op("Sigmoid", "s", {x});
  b.Output(b.Op("Mul", "swish", {x, s}));
  b.Output(s);
  auto m = b.Done();
  auto f = Fuse(*m);
  ASSERT_EQ(CountOps(*f, "Pointwise"), 1);
  ASSERT_TRUE(UnfusePointwise(*f->graph, f->graph->nodes()[0]).ok());
  f->graph->RemoveUnusedValues();
  EXPECT_TRUE(VerifyModel(*f).ok());
  EXPECT_EQ(CountOps(*f, "Pointwise"), 0);
  EXPECT_EQ(f->graph->outputs[0]->producer()->op_type, "Mul");
  EXPECT_EQ(f->graph->outputs[1]->producer()->op_type, "Sigmoid");
  auto feed = testing_build::RandomFeed(*m, 3);
  auto want = ReferenceExecutor(*m).Run(feed);
  auto got = ReferenceExecutor(*f).Run(feed);
  ASSERT_TRUE(want.ok() && got.ok());
  for (size_t i = 0; i < 2; ++i)
    EXPECT_EQ(std::memcmp((*want)[i].tensor.raw(), (*got)[i].tensor.raw(), (*want)[i].tensor.nbytes()), 0);
}

#ifdef KILN_HAS_CUDA
TEST(FusePointwise, AKernelThatCannotBeMadeRunsUnfused) {
  // A body op the generator has no row for (planted: the pass never groups
  // one): the builder falls back to the ops, with a note, instead of failing.
  Builder b;
  Value* x = b.Input("x", kSeq);
  b.Output(b.Op("Tanh", "t", {b.Op("Relu", "r", {x})}));
  auto f = Fuse(*b.Done());
  ASSERT_EQ(CountOps(*f, "Pointwise"), 1);
  Graph& body = *f->graph->nodes()[0]->attrs["body"].g;
  body.nodes()[1]->op_type = "Shrink";
  cuda::KernelCache cache;
  std::vector<std::string> notes;
  Status s = cuda::CompilePointwiseKernels(*f, 90, cache, &notes);
  ASSERT_TRUE(s.ok()) << s.ToString();
  f->graph->RemoveUnusedValues();
  EXPECT_TRUE(VerifyModel(*f).ok());
  EXPECT_EQ(CountOps(*f, "Pointwise"), 0);
  EXPECT_EQ(CountOps(*f, "Shrink"), 1);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("run unfused"), std::string::npos) << notes[0];
}
#endif

TEST(FusePointwise, PlanCarriesBodyAndKernel) {
  // The plan's IR codec keeps the body and the builder's binary attributes
  // (a cubin holds NULs and high bytes), and the decoded node still runs.
  Builder b;
  Value* x = b.Input("x", kSeq);
  b.Output(b.Op("Tanh", "t", {b.Op("Add", "a", {x, b.Const("bias", {16})})}));
  auto f = Fuse(*b.Done());
  ASSERT_EQ(CountOps(*f, "Pointwise"), 1);
  Node* n = f->graph->nodes()[0];
  std::string cubin("\x7f" "ELF\0\x01\xff", 7);
  n->attrs["cubin"] = Attribute::FromString(cubin);
  n->attrs["kernel"] = Attribute::FromString("kiln_pw");
  EncodedModel e = EncodeModel(*f);
  auto back = DecodeModel(e.graph, e.weights);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_TRUE(InferShapes(**back).ok());
  const Node* m = (*back)->graph->nodes()[0];
  EXPECT_EQ(m->attr("cubin")->s, cubin);
  ASSERT_TRUE(m->attr("body") && m->attr("body")->g);
  EXPECT_EQ(m->attr("body")->g->num_nodes(), 2u);
  auto feed = testing_build::RandomFeed(*f, 3);
  auto want = ReferenceExecutor(*f).Run(feed);
  auto got = ReferenceExecutor(**back).Run(feed);
  ASSERT_TRUE(want.ok() && got.ok());
  EXPECT_EQ(std::memcmp((*want)[0].tensor.raw(), (*got)[0].tensor.raw(), (*want)[0].tensor.nbytes()), 0);
}

// The whole GPU build pipeline on exported models, FP32 and FP16, with and
// without pointwise fusion: the fused model must compute bit for bit what the
// unfused one does on the CPU reference (the bodies run the same references),
// and, with CUDA, every generated kernel must compile for sm_90. Models whose
// LayerNormalization ops are lowered (lower_layernorm) compute the norm in
// other steps: there `max_rel_l2` > 0 bounds the difference instead.
void CheckZooModel(const std::string& name, bool fp16, int min_groups, double max_rel_l2 = 0) {
  SCOPED_TRACE(name + (fp16 ? " fp16" : " fp32"));
  auto loaded = LoadModel(fixtures::ZooModel(name));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_TRUE(InferShapes(**loaded).ok());
  std::unique_ptr<Model> plain = CloneModel(**loaded), fused = CloneModel(**loaded);
  BuildOptions opts;
  opts.fp16 = fp16;
  std::vector<std::string> notes;
  opts.fuse_pointwise = false;
  ASSERT_TRUE(RunBuildPasses(*plain, opts, &notes).ok());
  opts.fuse_pointwise = true;
  Status s = RunBuildPasses(*fused, opts, &notes);
  ASSERT_TRUE(s.ok()) << s.ToString();
  const int groups = CountOps(*fused, "Pointwise");
  const int norms = CountOps(*plain, "LayerNormalization");
  std::printf("%s: %d of %d LayerNormalizations lowered\n", fp16 ? "fp16" : "fp32",
              norms - CountOps(*fused, "LayerNormalization"), norms);
  if (min_groups > 0) {
    EXPECT_EQ(CountOps(*fused, "ReduceMean"), 0) << "a decomposed norm was left unfused";
  }
  EXPECT_GE(groups, min_groups);
  if (min_groups > 0) {
    EXPECT_LT(fused->graph->num_nodes(), plain->graph->num_nodes());
  }
  auto feed = testing_build::RandomFeed(**loaded, 2);
  auto want = ReferenceExecutor(*plain).Run(feed);
  auto got = ReferenceExecutor(*fused).Run(feed);
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(want->size(), got->size());
  for (size_t i = 0; i < want->size(); ++i) {
    const Tensor& w = (*want)[i].tensor;
    const Tensor& o = (*got)[i].tensor;
    ASSERT_EQ(w.dims(), o.dims());
    ASSERT_EQ(w.nbytes(), o.nbytes());
    if (max_rel_l2 > 0)
      EXPECT_LE(CompareTensors(w, o, Tolerance::RelL2(max_rel_l2)).rel_l2, max_rel_l2) << "output " << i;
    else
      EXPECT_EQ(std::memcmp(w.raw(), o.raw(), w.nbytes()), 0) << "output " << i << " differs";
  }
#ifdef KILN_HAS_CUDA
  cuda::KernelCache cache;
  Status compiled = cuda::CompilePointwiseKernels(*fused, 90, cache);
  EXPECT_TRUE(compiled.ok()) << compiled.ToString();
  EXPECT_EQ(cache.compiled() + cache.hits(), static_cast<size_t>(groups));
#endif
}

TEST(FusePointwiseZoo, BertEncoderOpset13) {
  // LayerNorm decomposed (opset 13): each norm (two ReduceMeans and eight
  // elementwise nodes) becomes one row kernel.
  CheckZooModel("bert_encoder_opset13", false, 5);
  CheckZooModel("bert_encoder_opset13", true, 5);
}

TEST(FusePointwiseZoo, BertEncoder) {
  // Opset 17: attention and the GELU/bias/residual epilogues are fused by
  // hand-written patterns; the LayerNormalizations after a residual Add are
  // lowered and fuse with it. Float32 reassociation only: FP32 within 1e-6,
  // FP16 (whose unfused norm rounds its input to FP16 first) within 2e-3.
  CheckZooModel("bert_encoder", false, 1, 1e-6);
  CheckZooModel("bert_encoder", true, 1, 2e-3);
}

TEST(FusePointwiseZoo, SsdliteBoxDecoding) {
  // The box decoding reads the regression output through strided Slices
  // (steps of 4), absorbed as views; ReduceMean stays in the SE blocks.
  CheckZooModel("ssdlite320_mobilenet_v3_large", false, 0);
}

TEST(FusePointwiseZoo, EfficientNetB0) {
  // Its SiLU and SE Sigmoid are conv epilogues (fuse_gpu): nothing is left to
  // group, and the build must still be exact.
  CheckZooModel("efficientnet_b0", true, 0);
}

}  // namespace
}  // namespace kiln
