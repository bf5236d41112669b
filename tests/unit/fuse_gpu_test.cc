// Tests for the GPU fusion pass (src/passes/fuse_gpu.h) and kiln's fused ops
// (src/ops/kiln_fused.cc): golden IR after the pass, the cases it must leave
// alone, and numerics — every model runs through the ReferenceExecutor before
// and after the pass on random inputs and must give the same outputs. Also the
// exported ResNet-50 from /tmp/zoo when it is there.
#include "passes/fuse_gpu.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include "ir/clone.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "onnx/import.h"
#include "passes/pipeline.h"
#include "passes/shape_inference.h"
#include "reference/executor.h"

namespace kiln {
namespace {

Tensor RandomTensor(DataType dt, const std::vector<int64_t>& dims, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  Tensor t(dt, dims);
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (dt == DataType::kFloat)
      t.mutable_data<float>()[i] = u(rng);
    else if (dt == DataType::kFloat16)
      t.mutable_data<Half>()[i] = Half(u(rng));
    else if (dt == DataType::kDouble)
      t.mutable_data<double>()[i] = u(rng);
  }
  return t;
}

// Builds small models by hand; node outputs are named after their node.
class Builder {
 public:
  explicit Builder(DataType dt = DataType::kFloat) : dt_(dt), m_(std::make_unique<Model>()), rng_(7) {
    m_->ir_version = 8;
    m_->opsets[""] = 17;
    m_->graph = std::make_shared<Graph>();
    m_->graph->name = "main";
  }
  Value* Input(const std::string& name, Shape shape) {
    Value* v = g().AddValue(name);
    v->type = TypeInfo::Tensor(dt_, std::move(shape));
    g().inputs.push_back(v);
    return v;
  }
  Value* Const(const std::string& name, std::vector<int64_t> dims) {
    Value* v = g().AddValue(name);
    Tensor t = RandomTensor(dt_, dims, rng_);
    v->type = TypeInfo::Tensor(dt_, t.shape());
    v->data = t;
    g().initializers.push_back(v);
    return v;
  }
  Value* Op(const std::string& op, const std::string& name, std::vector<Value*> inputs,
            AttributeMap attrs = {}) {
    Node* n = g().AddNode(op, name);
    for (Value* v : inputs) n->AddInput(v);
    n->attrs = std::move(attrs);
    Value* y = g().AddValue(name);
    n->AddOutput(y);
    return y;
  }
  void Output(Value* v) { g().outputs.push_back(v); }
  // Shape inference, then hands the model over.
  std::unique_ptr<Model> Done() {
    Status s = InferShapes(*m_);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return std::move(m_);
  }

 private:
  Graph& g() { return *m_->graph; }
  DataType dt_;
  std::unique_ptr<Model> m_;
  std::mt19937 rng_;
};

// Runs the pass on a copy; checks the copy verifies and computes what the
// original does (random inputs, symbolic dims set to `sym`). Returns the copy.
std::unique_ptr<Model> FuseAndCompare(const Model& before, int64_t sym = 2, double tol = 0.0) {
  std::unique_ptr<Model> after = CloneModel(before);
  PassContext ctx;
  Status s = RunFuseForGpu(*after, ctx);
  EXPECT_TRUE(s.ok()) << s.ToString();
  Status valid = VerifyModel(*after);
  EXPECT_TRUE(valid.ok()) << valid.ToString() << "\n" << PrintGraph(*after);
  std::mt19937 rng(99);
  std::map<std::string, RtValue> feed;
  for (const Value* in : before.graph->inputs) {
    if (in->data) continue;
    std::vector<int64_t> dims;
    for (const Dim& d : in->shape().dims()) dims.push_back(d.known() ? d.value() : sym);
    feed[in->name()] = RtValue::FromTensor(RandomTensor(in->dtype(), dims, rng));
  }
  auto want = ReferenceExecutor(before).Run(feed);
  auto got = ReferenceExecutor(*after).Run(feed);
  EXPECT_TRUE(want.ok()) << want.status().ToString();
  EXPECT_TRUE(got.ok()) << got.status().ToString();
  if (!want.ok() || !got.ok()) return after;
  EXPECT_EQ(want->size(), got->size());
  for (size_t i = 0; i < want->size() && i < got->size(); ++i) {
    const Tensor& w = (*want)[i].tensor;
    const Tensor& o = (*got)[i].tensor;
    EXPECT_EQ(w.dims(), o.dims());
    EXPECT_EQ(w.dtype(), o.dtype());
    if (w.dims() != o.dims()) continue;
    for (int64_t k = 0; k < w.numel(); ++k) {
      double a = w.ScalarAt(k), b = o.ScalarAt(k);
      EXPECT_LE(std::fabs(a - b), tol * (1.0 + std::fabs(a))) << "output " << i << " element " << k;
      if (std::fabs(a - b) > tol * (1.0 + std::fabs(a))) break;
    }
  }
  return after;
}

int CountOps(const Model& m, const std::string& op) {
  int n = 0;
  for (const Node* node : m.graph->nodes()) n += node->op_type == op;
  return n;
}

const Shape kImage({Dim::Symbol("batch"), 4, 6, 6});

TEST(FuseGpu, ConvRelu) {
  Builder b;
  Value* x = b.Input("x", kImage);
  Value* c = b.Op("Conv", "conv", {x, b.Const("w", {8, 4, 3, 3}), b.Const("b", {8})},
                  {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  b.Output(b.Op("Relu", "relu", {c}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m);
  EXPECT_EQ(PrintGraph(*f),
            "opset ai.onnx=17, kiln=1\n"
            "graph main {\n"
            "  input %x: float32[batch,4,6,6]\n"
            "  init %w: float32[8,4,3,3]\n"
            "  init %b: float32[8]\n"
            "  %relu = kiln.FusedConv[activation=\"Relu\", pads=[1, 1, 1, 1]](%x, %w, %b)  # conv\n"
            "  output %relu: float32[batch,8,6,6]\n"
            "}\n");
}

TEST(FuseGpu, ConvAddReluResidual) {
  // y = relu(conv2(conv1(x)) + x): conv1 feeds a Conv (not fused), conv2 takes the Add and the Relu.
  Builder b;
  Value* x = b.Input("x", kImage);
  Value* c1 = b.Op("Conv", "conv1", {x, b.Const("w1", {4, 4, 3, 3})}, {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  Value* c2 = b.Op("Conv", "conv2", {c1, b.Const("w2", {4, 4, 1, 1}), b.Const("b2", {4})});
  Value* add = b.Op("Add", "add", {c2, x});
  b.Output(b.Op("Relu", "relu", {add}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m);
  EXPECT_EQ(PrintGraph(*f),
            "opset ai.onnx=17, kiln=1\n"
            "graph main {\n"
            "  input %x: float32[batch,4,6,6]\n"
            "  init %w1: float32[4,4,3,3]\n"
            "  init %w2: float32[4,4,1,1]\n"
            "  init %b2: float32[4]\n"
            "  %conv1 = Conv[pads=[1, 1, 1, 1]](%x, %w1)  # conv1\n"
            "  %relu = kiln.FusedConv[activation=\"Relu\"](%conv1, %w2, %b2, %x)  # conv2\n"
            "  output %relu: float32[batch,4,6,6]\n"
            "}\n");
}

TEST(FuseGpu, TwoConvResidualLaterConvTakesTheAdd) {
  // ResNet's downsample block: Add(conv_a(x), conv_b(x)) → Relu, no bias on the shortcut.
  Builder b;
  Value* x = b.Input("x", kImage);
  Value* a = b.Op("Conv", "conv_a", {x, b.Const("wa", {8, 4, 1, 1})}, {{"strides", Attribute::FromInts({2, 2})}});
  Value* s = b.Op("Conv", "conv_b", {x, b.Const("wb", {8, 4, 1, 1})}, {{"strides", Attribute::FromInts({2, 2})}});
  Value* add = b.Op("Add", "add", {a, s});
  b.Output(b.Op("Relu", "relu", {add}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m);
  EXPECT_EQ(PrintGraph(*f),
            "opset ai.onnx=17, kiln=1\n"
            "graph main {\n"
            "  input %x: float32[batch,4,6,6]\n"
            "  init %wa: float32[8,4,1,1]\n"
            "  init %wb: float32[8,4,1,1]\n"
            "  %conv_a = Conv[strides=[2, 2]](%x, %wa)  # conv_a\n"
            "  %relu = kiln.FusedConv[activation=\"Relu\", strides=[2, 2]](%x, %wb, _, %conv_a)  # conv_b\n"
            "  output %relu: float32[batch,8,3,3]\n"
            "}\n");
}

TEST(FuseGpu, ConvAddWithoutRelu) {
  Builder b;
  Value* x = b.Input("x", kImage);
  Value* z = b.Input("z", Shape({Dim::Symbol("batch"), 8, 6, 6}));
  Value* c = b.Op("Conv", "conv", {x, b.Const("w", {8, 4, 3, 3})}, {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  Value* add = b.Op("Add", "add", {z, c});  // Z first
  b.Output(b.Op("Sigmoid", "sig", {add}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m);
  EXPECT_EQ(PrintGraph(*f),
            "opset ai.onnx=17, kiln=1\n"
            "graph main {\n"
            "  input %x: float32[batch,4,6,6]\n"
            "  input %z: float32[batch,8,6,6]\n"
            "  init %w: float32[8,4,3,3]\n"
            "  %add = kiln.FusedConv[activation=\"\", pads=[1, 1, 1, 1]](%x, %w, _, %z)  # conv\n"
            "  %sig = Sigmoid(%add)  # sig\n"
            "  output %sig: float32[batch,8,6,6]\n"
            "}\n");
}

TEST(FuseGpu, KeepsGraphOutputNames) {
  // The Add's output is a graph output: Conv+Add fuse (its name stays), the Relu stays apart.
  Builder b;
  Value* x = b.Input("x", kImage);
  Value* c = b.Op("Conv", "conv", {x, b.Const("w", {4, 4, 3, 3})}, {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  Value* add = b.Op("Add", "add", {c, x});
  b.Output(add);
  b.Output(b.Op("Relu", "relu", {add}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m);
  ASSERT_EQ(f->graph->outputs.size(), 2u);
  EXPECT_EQ(f->graph->outputs[0]->name(), "add");
  EXPECT_EQ(f->graph->outputs[0]->producer()->op_type, "FusedConv");
  EXPECT_EQ(f->graph->outputs[1]->name(), "relu");
  EXPECT_EQ(f->graph->outputs[1]->producer()->op_type, "Relu");
}

TEST(FuseGpu, LeavesUnsafeChainsAlone) {
  Builder b;
  Value* x = b.Input("x", kImage);
  // 1. Conv output used twice.
  Value* c1 = b.Op("Conv", "c1", {x, b.Const("w1", {4, 4, 1, 1})});
  Value* r1 = b.Op("Relu", "r1", {c1});
  Value* s1 = b.Op("Sigmoid", "s1", {c1});
  // 2. Conv output is a graph output.
  Value* c2 = b.Op("Conv", "c2", {r1, b.Const("w2", {4, 4, 1, 1})});
  b.Output(c2);
  Value* r2 = b.Op("Relu", "r2", {c2});
  // 3. Add that broadcasts Z (per-channel, not the conv output's shape).
  Value* c3 = b.Op("Conv", "c3", {r2, b.Const("w3", {4, 4, 1, 1})});
  Value* z3 = b.Input("z3", Shape({1, 4, 1, 1}));
  Value* a3 = b.Op("Add", "a3", {c3, z3});
  // 4. Z with a different symbolic batch.
  Value* c4 = b.Op("Conv", "c4", {a3, b.Const("w4", {4, 4, 1, 1})});
  Value* z4 = b.Input("z4", Shape({Dim::Symbol("other"), 4, 6, 6}));
  Value* a4 = b.Op("Add", "a4", {c4, z4});
  // 5. MatMul with non-constant B; MatMul with a bias that is not per column.
  Value* p = b.Input("p", Shape({3, 5}));
  Value* q = b.Input("q", Shape({5, 7}));
  Value* mm1 = b.Op("MatMul", "mm1", {p, q});
  Value* add1 = b.Op("Add", "add1", {mm1, b.Const("bias1", {7})});
  Value* mm2 = b.Op("MatMul", "mm2", {p, b.Const("w5", {5, 7})});
  Value* add2 = b.Op("Add", "add2", {mm2, b.Const("bias2", {3, 1})});
  for (Value* v : {s1, a4, add1, add2}) b.Output(v);
  auto m = b.Done();
  std::string printed = PrintGraph(*m);
  auto f = FuseAndCompare(*m);
  EXPECT_EQ(PrintGraph(*f), printed);
  EXPECT_EQ(f->opsets.count("kiln"), 0u);
}

TEST(FuseGpu, MatMulBiasRelu) {
  // Transformer MLP: [batch, seq, 16] x [16, 8] + bias (first Add input, as torch exports it) → Relu;
  // a second MatMul with a [1, 8] bias and no activation.
  Builder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), Dim::Symbol("seq"), 16}));
  Value* mm = b.Op("MatMul", "fc1", {x, b.Const("w1", {16, 8})});
  Value* add = b.Op("Add", "fc1_bias", {b.Const("b1", {8}), mm});
  Value* r = b.Op("Relu", "act", {add});
  Value* mm2 = b.Op("MatMul", "fc2", {r, b.Const("w2", {8, 8})});
  b.Output(b.Op("Add", "fc2_bias", {mm2, b.Const("b2", {1, 8})}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m, 3);
  EXPECT_EQ(PrintGraph(*f),
            "opset ai.onnx=17, kiln=1\n"
            "graph main {\n"
            "  input %x: float32[batch,seq,16]\n"
            "  init %w1: float32[16,8]\n"
            "  init %b1: float32[8]\n"
            "  init %w2: float32[8,8]\n"
            "  init %b2_1: float32[8]\n"
            "  %act = kiln.FusedMatMul[activation=\"Relu\"](%x, %w1, %b1)  # fc1\n"
            "  %fc2_bias = kiln.FusedMatMul[activation=\"\"](%act, %w2, %b2_1)  # fc2\n"
            "  output %fc2_bias: float32[batch,seq,8]\n"
            "}\n");
}

TEST(FuseGpu, Float16AndDoubleAreExact) {
  for (DataType dt : {DataType::kFloat16, DataType::kDouble}) {
    Builder b(dt);
    Value* x = b.Input("x", kImage);
    Value* c = b.Op("Conv", "conv", {x, b.Const("w", {4, 4, 3, 3}), b.Const("b", {4})},
                    {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
    Value* add = b.Op("Add", "add", {c, x});
    Value* r = b.Op("Relu", "relu", {add});
    Value* mm = b.Op("MatMul", "mm", {r, b.Const("wm", {6, 5})});
    b.Output(b.Op("Relu", "out", {b.Op("Add", "bias", {mm, b.Const("bm", {5})})}));
    auto m = b.Done();
    auto f = FuseAndCompare(*m);  // tolerance 0: the reference rounds per step like the unfused graph
    EXPECT_EQ(CountOps(*f, "FusedConv"), 1);
    EXPECT_EQ(CountOps(*f, "FusedMatMul"), 1);
    EXPECT_EQ(f->graph->num_nodes(), 2u);
  }
}

// The plan stores the optimized IR as ONNX bytes: fused nodes, their domain,
// attributes and the "kiln" opset must survive the round trip.
TEST(FuseGpu, SurvivesOnnxRoundTrip) {
  Builder b;
  Value* x = b.Input("x", kImage);
  Value* c = b.Op("Conv", "conv", {x, b.Const("w", {4, 4, 3, 3})}, {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  Value* r = b.Op("Relu", "relu", {b.Op("Add", "add", {c, x})});
  Value* mm = b.Op("MatMul", "mm", {r, b.Const("wm", {6, 5})});
  b.Output(b.Op("Add", "bias", {mm, b.Const("bm", {5})}));
  auto m = b.Done();
  auto f = FuseAndCompare(*m);
  auto bytes = SerializeModel(*f);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto back = ParseModel(bytes->data(), bytes->size(), "");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_TRUE(InferShapes(**back).ok());
  EXPECT_EQ(PrintGraph(**back), PrintGraph(*f));
}

// A one-node model with kiln.<op> over graph inputs x (and more) → y.
std::unique_ptr<Model> FusedNodeModel(const std::string& op, const std::vector<Shape>& inputs,
                                      const std::string& activation, AttributeMap attrs = {}) {
  auto m = std::make_unique<Model>();
  m->opsets[""] = 17;
  m->opsets["kiln"] = 1;
  m->graph = std::make_shared<Graph>();
  Graph& g = *m->graph;
  Node* n = g.AddNode(op, "fused", "kiln");
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].rank_known()) {
      n->AddInput(nullptr);
      continue;
    }
    Value* v = g.AddValue("in" + std::to_string(i));
    v->type = TypeInfo::Tensor(DataType::kFloat, inputs[i]);
    g.inputs.push_back(v);
    n->AddInput(v);
  }
  n->attrs = std::move(attrs);
  n->attrs["activation"].type = Attribute::Type::kString;
  n->attrs["activation"].s = activation;
  Value* y = g.AddValue("y");
  n->AddOutput(y);
  g.outputs.push_back(y);
  return m;
}

TEST(FusedOps, InferShapes) {
  auto conv = FusedNodeModel(
      "FusedConv",
      {kImage, Shape::Of({8, 4, 3, 3}), Shape::Unranked(), Shape({Dim::Symbol("batch"), 8, 6, 6})}, "Relu",
      {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  ASSERT_TRUE(InferShapes(*conv).ok());
  EXPECT_EQ(conv->graph->outputs[0]->type.ToString(), "float32[batch,8,6,6]");
  auto mm =
      FusedNodeModel("FusedMatMul", {Shape({Dim::Symbol("n"), 3, 5}), Shape::Of({5, 7}), Shape::Of({7})}, "");
  ASSERT_TRUE(InferShapes(*mm).ok());
  EXPECT_EQ(mm->graph->outputs[0]->type.ToString(), "float32[n,3,7]");
}

TEST(FusedOps, RejectsBadInputs) {
  auto z_shape = FusedNodeModel(
      "FusedConv",
      {kImage, Shape::Of({8, 4, 3, 3}), Shape::Unranked(), Shape({Dim::Symbol("batch"), 8, 5, 6})}, "Relu",
      {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  Status s = InferShapes(*z_shape);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("must have the conv output's shape"), std::string::npos) << s.ToString();
  auto act = FusedNodeModel("FusedConv", {kImage, Shape::Of({8, 4, 3, 3})}, "Tanh");
  EXPECT_FALSE(InferShapes(*act).ok());
  auto bias = FusedNodeModel("FusedMatMul", {Shape::Of({2, 5}), Shape::Of({5, 7}), Shape::Of({5})}, "");
  s = InferShapes(*bias);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("bias length"), std::string::npos) << s.ToString();
  // The CPU reference checks Z at run time too (symbolic dims that turn out different).
  auto run = FusedNodeModel(
      "FusedConv",
      {kImage, Shape::Of({8, 4, 3, 3}), Shape::Unranked(), Shape({Dim::Symbol("other"), 8, 6, 6})}, "",
      {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  ASSERT_TRUE(InferShapes(*run).ok());
  std::mt19937 rng(3);
  std::map<std::string, RtValue> feed;
  feed["in0"] = RtValue::FromTensor(RandomTensor(DataType::kFloat, {2, 4, 6, 6}, rng));
  feed["in1"] = RtValue::FromTensor(RandomTensor(DataType::kFloat, {8, 4, 3, 3}, rng));
  feed["in3"] = RtValue::FromTensor(RandomTensor(DataType::kFloat, {3, 8, 6, 6}, rng));
  auto r = ReferenceExecutor(*run).Run(feed);
  EXPECT_FALSE(r.ok());
}

// The exported ResNet-50 (torchvision, 64x64 input): 33 Conv→Relu and 16
// Conv→Add→Relu chains fuse; outputs agree with the unfused model.
TEST(FuseGpu, ResNet50Zoo) {
  const char* path = "/tmp/zoo/resnet50.onnx";
  if (!std::ifstream(path).good()) GTEST_SKIP() << path << " not found";
  auto loaded = LoadModel(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  std::unique_ptr<Model> m = std::move(*loaded);
  ASSERT_TRUE(InferShapes(*m).ok());
  auto f = FuseAndCompare(*m, 1, 1e-6);
  EXPECT_EQ(CountOps(*f, "FusedConv"), 49);
  EXPECT_EQ(CountOps(*f, "Conv"), 4);
  EXPECT_EQ(CountOps(*f, "Relu"), 0);
  EXPECT_EQ(CountOps(*f, "Add"), 0);
  EXPECT_EQ(f->graph->outputs[0]->name(), m->graph->outputs[0]->name());
}

// The GPU builder's order: simplifier, then fusion.
TEST(FuseGpu, ResNet50ZooAfterSimplifier) {
  const char* path = "/tmp/zoo/resnet50.onnx";
  if (!std::ifstream(path).good()) GTEST_SKIP() << path << " not found";
  auto loaded = LoadModel(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  std::unique_ptr<Model> m = std::move(*loaded);
  ASSERT_TRUE(InferShapes(*m).ok());
  std::unique_ptr<Model> simple = CloneModel(*m);
  PassContext ctx;
  Status s = RunSimplify(*simple, ctx);
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto f = FuseAndCompare(*simple, 1, 1e-6);
  EXPECT_EQ(CountOps(*f, "FusedConv"), 49);
  EXPECT_EQ(CountOps(*f, "Conv"), 4);
  // And against the original model (the simplifier may reorder float sums slightly).
  std::unique_ptr<Model> fused_copy = CloneModel(*f);
  std::mt19937 rng(5);
  std::map<std::string, RtValue> feed;
  feed[m->graph->inputs[0]->name()] =
      RtValue::FromTensor(RandomTensor(DataType::kFloat, {1, 3, 64, 64}, rng));
  auto want = ReferenceExecutor(*m).Run(feed);
  auto got = ReferenceExecutor(*fused_copy).Run(feed);
  ASSERT_TRUE(want.ok() && got.ok());
  const Tensor& w = (*want)[0].tensor;
  const Tensor& o = (*got)[0].tensor;
  ASSERT_EQ(w.dims(), o.dims());
  double worst = 0;
  for (int64_t k = 0; k < w.numel(); ++k) worst = std::max(worst, std::fabs(w.ScalarAt(k) - o.ScalarAt(k)));
  EXPECT_LE(worst, 1e-3);
}

}  // namespace
}  // namespace kiln
