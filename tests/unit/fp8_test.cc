// FP8 E4M3 (`kiln build --fp8`, build/fp8.h, kiln.F8MatMul) on the CPU
// reference, against independent oracles:
//  - the E4M3 quantization against ml_dtypes' float8_e4m3fn (a table it
//    computed, below) and the OFP8 spec's saturation (ONNX Cast saturate=1);
//  - kiln.F8MatMul against numpy + ml_dtypes run by KILN_PYTHON;
//  - the FP8 build of the zoo's BERT encoder against onnxruntime FP32.
#include "build/fp8.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "build/int8.h"
#include "core/float8.h"
#include "core/half.h"
#include "fixtures.h"
#include "io/npy.h"
#include "passes/f8_epilogue.h"
#include "passes/fuse_gpu.h"
#include "passes/pass_util.h"
#include "passes/shape_inference.h"
#include "reference/executor.h"

namespace kiln {
namespace {

// float32 → float8_e4m3fn bits, as ml_dtypes 0.5.4 converts them
// (np.array([v], np.float32).astype(ml_dtypes.float8_e4m3fn).view(np.uint8)):
// round to nearest even, subnormals (2^-9 steps below 2^-6), signed zero.
struct E4M3Case {
  float v;
  uint8_t bits;
};
const E4M3Case kMlDtypesTable[] = {
    {0.0f, 0x00},          {-0.0f, 0x80},         {1.0f, 0x38},          {-1.0f, 0xb8},
    {1.0625f, 0x38},       // tie 1 | 1.125 → even (1)
    {1.1875f, 0x3a},       // tie 1.125 | 1.25 → even (1.25)
    {0.3f, 0x2a},          {-2.7f, 0xc3},         {240.0f, 0x77},        {416.0f, 0x7d},
    {440.0f, 0x7e},        {448.0f, 0x7e},        {-448.0f, 0xfe},       {0.015625f, 0x08},  // 2^-6, smallest normal
    {0.0078125f, 0x04},    {0.001953125f, 0x01},  // 2^-9, smallest subnormal
    {0.0009765625f, 0x00},  // 2^-10: tie 0 | 2^-9 → even (0)
    {0.0029296875f, 0x02},  // 3·2^-10: tie 2^-9 | 2^-8 → even (2^-8)
    {0.00048828125f, 0x00}, {0.00146484375f, 0x01}, {0.0005f, 0x00},     {17.0f, 0x58},
    {18.0f, 0x59},         {19.0f, 0x5a},         {100.0f, 0x6c},        {-0.0137f, 0x87},
    {3.14159f, 0x45},
};

TEST(Fp8, E4M3QuantizeMatchesMlDtypes) {
  for (const E4M3Case& c : kMlDtypesTable) {
    EXPECT_EQ(QuantizeE4M3(c.v, 1.f), c.bits) << c.v;
    // With a power-of-two scale the quantization is the same code.
    EXPECT_EQ(QuantizeE4M3(c.v * 0.25f, 0.25f), c.bits) << c.v << " at scale 1/4";
  }
}

TEST(Fp8, E4M3QuantizeSaturatesAndKeepsNaN) {
  // OFP8 / ONNX saturate: beyond ±448 (and ±inf) → ±448 (S.1111.110); NaN → S.1111.111.
  for (float v : {449.f, 463.9f, 464.f, 480.f, 1e6f, INFINITY}) {
    EXPECT_EQ(QuantizeE4M3(v, 1.f), 0x7e) << v;
    EXPECT_EQ(QuantizeE4M3(-v, 1.f), 0xfe) << -v;
  }
  EXPECT_EQ(QuantizeE4M3(NAN, 1.f) & 0x7f, 0x7f);
  EXPECT_EQ(QuantizeE4M3(900.f, 2.f), 0x7e);  // 450 after the scale
  EXPECT_TRUE(std::isnan(Float8E4M3FNToFloat(0x7f)));
  EXPECT_EQ(Float8E4M3FNToFloat(0x7e), 448.f);
}

// An opset-17 model whose one input is float32 `name`[sym, k].
std::unique_ptr<Model> ModelWithInput(const std::string& name, const std::string& sym, int64_t k) {
  auto m = std::make_unique<Model>();
  m->ir_version = 8;
  m->graph = std::make_shared<Graph>();
  m->opsets[""] = 17;
  Value* a = m->graph->AddValue(name);
  a->type = TypeInfo::Tensor(DataType::kFloat, Shape(std::vector<Dim>{Dim::Symbol(sym), Dim(k)}));
  m->graph->inputs.push_back(a);
  return m;
}

Value* AddInitializer(Graph& g, const std::string& name, Tensor t) {
  Value* v = g.AddValue(name);
  v->type = TypeInfo::Tensor(t.dtype(), t.shape());
  v->data = std::move(t);
  g.initializers.push_back(v);
  return v;
}

// y = F8MatMul(QuantizeE4M3(a, a_scale), a_scale, b_bits, b_scale): what build/fp8.cc makes of a[rows, k] · w.
std::unique_ptr<Model> F8MatMulModel(const Tensor& b_bits, float a_scale, float b_scale, int64_t k) {
  auto m = ModelWithInput("a", "rows", k);
  m->opsets["kiln"] = 1;
  Graph& g = *m->graph;
  Value* a = g.inputs[0];
  auto init = [&](const std::string& name, Tensor t) { return AddInitializer(g, name, std::move(t)); };
  Value* as = init("as", Tensor::FromVector<float>(DataType::kFloat, {}, {a_scale}));
  Node* q = g.AddNode("QuantizeE4M3", "quantize", "kiln");
  q->AddInput(a);
  q->AddInput(as);
  Value* aq = g.AddValue("a_e4m3");
  q->AddOutput(aq);
  Node* n = g.AddNode("F8MatMul", "f8", "kiln");
  n->attrs["to"] = Attribute::FromInt(static_cast<int64_t>(DataType::kFloat));
  n->AddInput(aq);
  n->AddInput(as);
  n->AddInput(init("b", b_bits));
  n->AddInput(init("bs", Tensor::FromVector<float>(DataType::kFloat, {}, {b_scale})));
  Value* y = g.AddValue("y");
  n->AddOutput(y);
  g.outputs.push_back(y);
  EXPECT_TRUE(InferShapes(*m).ok());
  return m;
}

// kiln.F8MatMul against numpy + ml_dtypes: a / a_scale clipped to ±448 and cast
// to float8_e4m3fn, b's codes viewed as float8_e4m3fn, the product in float64
// times a_scale·b_scale. a reaches ±3 at a_scale 1/224, so part of it saturates.
TEST(Fp8, F8MatMulMatchesNumpyWithMlDtypes) {
  const std::filesystem::path dir = fixtures::TestDir("kiln_fp8_op");
  const int64_t rows = 9, k = 48, n = 32;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-3.f, 3.f);
  Tensor a(DataType::kFloat, {rows, k}), b(DataType::kUInt8, {n, k});
  for (int64_t i = 0; i < a.numel(); ++i) a.mutable_data<float>()[i] = u(rng);
  for (int64_t i = 0; i < b.numel(); ++i) {
    uint8_t c = static_cast<uint8_t>(rng() % 256);
    if ((c & 0x7f) == 0x7f) c &= 0xfe;  // no NaN weights
    b.mutable_data<uint8_t>()[i] = c;
  }
  const float as = 1.f / 224, bs = 0.0123f;
  ASSERT_TRUE(WriteNpy((dir / "a.npy").string(), a).ok());
  ASSERT_TRUE(WriteNpy((dir / "b.npy").string(), b).ok());
  const std::string script = (dir / "oracle.py").string();
  std::ofstream(script) << "import sys, numpy as np, ml_dtypes\n"
                           "d = sys.argv[1]; f8 = ml_dtypes.float8_e4m3fn\n"
                           "a = np.load(d + '/a.npy'); b = np.load(d + '/b.npy').view(f8).astype(np.float64)\n"
                           "s_a, s_b = np.float32(1) / np.float32(224), np.float32(0.0123)\n"
                           "qa = np.clip(a / s_a, -448, 448).astype(f8).astype(np.float64)\n"
                           "np.save(d + '/y.npy', (qa @ b.T) * np.float64(s_a * s_b))\n";
  const std::string cmd = "'" + fixtures::Python() + "' '" + script + "' '" + dir.string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto want = ReadNpy((dir / "y.npy").string());
  ASSERT_TRUE(want.ok()) << want.status().message();
  Tensor bits(DataType::kFloat8E4M3FN, {n, k});
  std::copy(b.data<uint8_t>(), b.data<uint8_t>() + b.numel(), bits.mutable_data<uint8_t>());
  auto m = F8MatMulModel(bits, as, bs, k);
  auto got = ReferenceExecutor(*m).Run({{"a", RtValue::FromTensor(a)}});
  ASSERT_TRUE(got.ok()) << got.status().message();
  const Tensor& y = (*got)[0].tensor;
  ASSERT_EQ(y.dims(), (std::vector<int64_t>{rows, n}));
  auto max_diff = [&](const Tensor& t) {
    double worst = 0;
    for (int64_t i = 0; i < t.numel(); ++i)
      worst = std::max(worst, std::fabs(t.data<float>()[i] - want->data<double>()[i]));
    return worst;
  };
  double norm = 0;
  for (int64_t i = 0; i < y.numel(); ++i) norm = std::max(norm, std::fabs(want->data<double>()[i]));
  const double worst = max_diff(y);
  std::printf("F8MatMul vs numpy+ml_dtypes: max abs diff %.3g (max |y| %.3g)\n", worst, norm);
  EXPECT_LE(worst, 1e-5 * norm);  // FP32 summation of exact products
  // The check can fail: an activation scale 1% off (other E4M3 codes) is far beyond it.
  auto off = ReferenceExecutor(*F8MatMulModel(bits, as * 1.01f, bs, k)).Run({{"a", RtValue::FromTensor(a)}});
  ASSERT_TRUE(off.ok());
  EXPECT_GT(max_diff((*off)[0].tensor), 1e-3 * norm);
  std::filesystem::remove_all(dir);
}

// fuse_gpu folds the bias Add, the residual Add and the Relu after a
// kiln.F8MatMul into its epilogue (inputs 4 and 5, activation "Relu"); the
// fused node's CPU reference agrees bit for bit with the unfused ONNX Adds and
// Relu (the oracle for the epilogue; the product itself is checked against
// numpy above).
TEST(Fp8, FuseForGpuTakesBiasResidualAndRelu) {
  const int64_t rows = 5, k = 32, n = 16;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  auto random = [&](std::vector<int64_t> dims) {
    Tensor t(DataType::kFloat, dims);
    for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = u(rng);
    return t;
  };
  Tensor bits(DataType::kFloat8E4M3FN, {n, k});
  for (int64_t i = 0; i < bits.numel(); ++i) bits.mutable_data<uint8_t>()[i] = static_cast<uint8_t>((i * 37) % 127);
  const Tensor bias = random({n}), a = random({rows, k}), z = random({rows, n});
  auto model = [&] {
    auto m = F8MatMulModel(bits, 1.f / 128, 0.01f, k);
    Graph& g = *m->graph;
    Value* y = g.outputs[0];
    g.outputs.clear();
    Value* zin = g.AddValue("z");
    zin->type = TypeInfo::Tensor(DataType::kFloat, Shape(std::vector<Dim>{Dim::Symbol("rows"), Dim(n)}));
    g.inputs.push_back(zin);
    Value* prev = y;
    auto add = [&](const char* op, std::vector<Value*> ins) {
      Node* node = g.AddNode(op, std::string(op) + std::to_string(g.nodes().size()));
      for (Value* v : ins) node->AddInput(v);
      prev = g.AddValue(node->name + "_out");
      node->AddOutput(prev);
    };
    add("Add", {AddInitializer(g, "bias", bias), prev});  // bias first: either operand order fuses
    add("Add", {prev, zin});
    add("Relu", {prev});
    g.outputs.push_back(prev);
    EXPECT_TRUE(InferShapes(*m).ok());
    return m;
  };
  const std::map<std::string, RtValue> feed = {{"a", RtValue::FromTensor(a)}, {"z", RtValue::FromTensor(z)}};
  auto want = ReferenceExecutor(*model()).Run(feed);
  ASSERT_TRUE(want.ok()) << want.status().message();
  auto fused = model();
  PassContext ctx;
  ASSERT_TRUE(RunFuseForGpu(*fused, ctx).ok());
  ASSERT_EQ(fused->graph->nodes().size(), 2u);  // QuantizeE4M3, F8MatMul
  const Node& f = *fused->graph->nodes()[1];
  EXPECT_EQ(f.op_type, "F8MatMul");
  ASSERT_EQ(f.num_inputs(), 6u);
  EXPECT_EQ(f.input(4)->name(), "bias");
  EXPECT_EQ(f.input(5)->name(), "z");
  ASSERT_NE(f.attr("activation"), nullptr);
  EXPECT_EQ(f.attr("activation")->s, "Relu");
  auto got = ReferenceExecutor(*fused).Run(feed);
  ASSERT_TRUE(got.ok()) << got.status().message();
  const Tensor& yw = (*want)[0].tensor;
  const Tensor& yg = (*got)[0].tensor;
  ASSERT_EQ(yg.dims(), yw.dims());
  int zeros = 0;
  for (int64_t i = 0; i < yw.numel(); ++i) {
    EXPECT_EQ(yg.data<float>()[i], yw.data<float>()[i]) << i;
    zeros += yw.data<float>()[i] == 0.f;
  }
  EXPECT_GT(zeros, 0);  // the Relu clipped something
  EXPECT_LT(zeros, yw.numel());
}

// F8MatMul (float16 out, bias) → kiln.Gelu (erf) → QuantizeE4M3 → [second user of the GELU when `shared`]:
// fc1 → GELU → fc2's quantization as build/fp8.cc and fuse_gpu leave BERT's MLP after the fp16 pass.
std::unique_ptr<Model> F8GeluQuantizeModel(const Tensor& bits, int64_t k, bool shared,
                                           const char* approximate = "none") {
  auto m = F8MatMulModel(bits, 1.f / 128, 0.01f, k);
  Graph& g = *m->graph;
  Node* f = g.nodes()[1];
  f->attrs["to"] = Attribute::FromInt(static_cast<int64_t>(DataType::kFloat16));
  std::vector<double> bias;
  for (int64_t j = 0; j < bits.dim(0); ++j) bias.push_back(0.25 * static_cast<double>(j % 7) - 0.75);
  f->AddInput(AddInitializer(g, "bias", passes::FromDoubles(DataType::kFloat16, {bits.dim(0)}, bias)));
  Value* y = g.outputs[0];
  g.outputs.clear();
  Node* gelu = g.AddNode("Gelu", "gelu", "kiln");
  gelu->attrs["approximate"] = Attribute::FromString(approximate);
  gelu->AddInput(y);
  Value* act = g.AddValue("act");
  gelu->AddOutput(act);
  Node* q = g.AddNode("QuantizeE4M3", "next_quantize", "kiln");
  q->AddInput(act);
  q->AddInput(AddInitializer(g, "next_scale", Tensor::FromVector<float>(DataType::kFloat, {}, {0.02f})));
  Value* out = g.AddValue("act_e4m3");
  q->AddOutput(out);
  g.outputs.push_back(out);
  if (shared) g.outputs.push_back(act);
  EXPECT_TRUE(InferShapes(*m).ok());
  return m;
}

// f8_epilogue takes the GELU and the next product's quantization into the product: activation "GeluTanh",
// an E4M3 output, y_scale_inv = 1/scale. Its reference against the unfused ops' (erf GELU in float16, then
// x / scale to E4M3), as values: the tanh form is within 4.8e-4 of erf (10% apart only in the negative tail,
// where GELU is below 0.005), far below E4M3's rounding; with the scale 1% off or the GELU dropped, not.
TEST(Fp8, F8EpilogueTakesGeluAndTheNextQuantization) {
  const int64_t rows = 33, k = 64, n = 48;
  Tensor bits(DataType::kFloat8E4M3FN, {n, k});
  for (int64_t i = 0; i < bits.numel(); ++i)
    bits.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(((i * 37) % 127) | (i % 3 ? 0 : 0x80));
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  Tensor a(DataType::kFloat, {rows, k});
  for (int64_t i = 0; i < a.numel(); ++i) a.mutable_data<float>()[i] = u(rng);
  const std::map<std::string, RtValue> feed = {{"a", RtValue::FromTensor(a)}};
  auto want = ReferenceExecutor(*F8GeluQuantizeModel(bits, k, false)).Run(feed);
  ASSERT_TRUE(want.ok()) << want.status().message();

  auto fused = F8GeluQuantizeModel(bits, k, false);
  PassContext ctx;
  std::vector<std::string> report;
  ASSERT_TRUE(RunFuseF8Epilogue(*fused, ctx, &report).ok());
  EXPECT_TRUE(ctx.changed);
  ASSERT_EQ(fused->graph->nodes().size(), 2u);  // QuantizeE4M3 of a, F8MatMul
  const Node& f = *fused->graph->nodes()[1];
  EXPECT_EQ(passes::AttrString(f, "activation", ""), "GeluTanh");
  EXPECT_EQ(passes::AttrInt(f, "to", 0), static_cast<int64_t>(DataType::kFloat8E4M3FN));
  ASSERT_EQ(f.num_inputs(), 7u);
  EXPECT_EQ(f.input(5), nullptr);
  EXPECT_FLOAT_EQ(f.input(6)->data->data<float>()[0], 1.f / 0.02f);
  EXPECT_EQ(f.output(0)->name(), "act_e4m3");
  ASSERT_EQ(report.size(), 1u);
  EXPECT_NE(report[0].find("tanh-form GELU"), std::string::npos) << report[0];

  // Decoded E4M3 values: the next product's input up to its scale. rel L2 of `y` against `x`, and codes that
  // differ.
  auto rel_l2 = [](const Tensor& x, const Tensor& y, int* differ) {
    double d2 = 0, x2 = 0;
    *differ = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double p = Float8E4M3FNToFloat(x.data<uint8_t>()[i]),
                   q = Float8E4M3FNToFloat(y.data<uint8_t>()[i]);
      *differ += p != q;
      d2 += (p - q) * (p - q);
      x2 += p * p;
    }
    return std::sqrt(d2 / x2);
  };
  auto got = ReferenceExecutor(*fused).Run(feed);
  ASSERT_TRUE(got.ok()) << got.status().message();
  const Tensor& yw = (*want)[0].tensor;
  const Tensor& yg = (*got)[0].tensor;
  ASSERT_EQ(yg.dtype(), DataType::kFloat8E4M3FN);
  ASSERT_EQ(yg.dims(), yw.dims());
  int differ = 0, saturated = 0, negative = 0;
  const double e = rel_l2(yw, yg, &differ);
  for (int64_t i = 0; i < yw.numel(); ++i) {
    saturated += (yw.data<uint8_t>()[i] & 0x7f) == 0x7e;
    negative += Float8E4M3FNToFloat(yw.data<uint8_t>()[i]) < 0;
  }
  std::printf(
      "f8_epilogue vs unfused: rel L2 %.3g, %d of %lld E4M3 codes differ, %d saturated, %d negative\n", e,
      differ, static_cast<long long>(yw.numel()), saturated, negative);
  EXPECT_LT(e, 2e-3);
  EXPECT_GT(negative, 0);  // GELU's negative lobe is there
  EXPECT_LT(saturated, yw.numel() / 10);
  // The comparison can fail: the scale 1% off, or the GELU dropped.
  fused->graph->nodes()[1]->input(6)->data = Tensor::FromVector<float>(DataType::kFloat, {}, {1.01f / 0.02f});
  auto off = ReferenceExecutor(*fused).Run(feed);
  ASSERT_TRUE(off.ok());
  const double e_off = rel_l2(yw, (*off)[0].tensor, &differ);
  std::printf("  scale 1%% off: rel L2 %.3g\n", e_off);
  EXPECT_GT(e_off, 2e-3);
  fused->graph->nodes()[1]->input(6)->data = Tensor::FromVector<float>(DataType::kFloat, {}, {1.f / 0.02f});
  fused->graph->nodes()[1]->attrs["activation"] = Attribute::FromString("");
  auto linear = ReferenceExecutor(*fused).Run(feed);
  ASSERT_TRUE(linear.ok());
  EXPECT_GT(rel_l2(yw, (*linear)[0].tensor, &differ), 0.1);

  // A tanh GELU (GPT-2's, after fuse_gpu) is cuBLASLt's own: no approximation to report, and only the
  // quantization's v · (1/scale) for v / scale tells the two apart.
  auto want_tanh = ReferenceExecutor(*F8GeluQuantizeModel(bits, k, false, "tanh")).Run(feed);
  ASSERT_TRUE(want_tanh.ok());
  auto tanh_form = F8GeluQuantizeModel(bits, k, false, "tanh");
  report.clear();
  PassContext ctx_tanh;
  ASSERT_TRUE(RunFuseF8Epilogue(*tanh_form, ctx_tanh, &report).ok());
  ASSERT_EQ(report.size(), 1u);
  EXPECT_EQ(report[0].find("tanh-form"), std::string::npos) << report[0];
  auto got_tanh = ReferenceExecutor(*tanh_form).Run(feed);
  ASSERT_TRUE(got_tanh.ok());
  EXPECT_LT(rel_l2((*want_tanh)[0].tensor, (*got_tanh)[0].tensor, &differ), 1e-4);

  // Left alone: the GELU's output read by another node too; a float32 product (no E4M3 epilogue there).
  auto shared = F8GeluQuantizeModel(bits, k, true);
  PassContext ctx2;
  ASSERT_TRUE(RunFuseF8Epilogue(*shared, ctx2, nullptr).ok());
  EXPECT_FALSE(ctx2.changed);
  auto wide = F8GeluQuantizeModel(bits, k, false);
  wide->graph->nodes()[1]->attrs["to"] = Attribute::FromInt(static_cast<int64_t>(DataType::kFloat));
  PassContext ctx3;
  ASSERT_TRUE(RunFuseF8Epilogue(*wide, ctx3, nullptr).ok());
  EXPECT_FALSE(ctx3.changed);
}

// f8_epilogue turns a LayerNorm whose Y is quantized for the next product (and read by another node, the
// residual) into kiln.LayerNormE4M3 writing Y and the E4M3 copy: both bit-identical to the unfused
// LayerNormalization + QuantizeE4M3 (one reference each, the same float16 Y quantized by the same function).
TEST(Fp8, F8EpilogueTakesTheQuantizationIntoTheLayerNorm) {
  const int64_t rows = 6, len = 96;
  auto model = [&](int64_t axis) {
    auto m = ModelWithInput("x", "rows", len);
    m->opsets["kiln"] = 1;
    Graph& g = *m->graph;
    g.inputs[0]->type = TypeInfo::Tensor(DataType::kFloat16, Shape(std::vector<Dim>{Dim(rows), Dim(len)}));
    std::vector<double> sc, bi;
    for (int64_t i = 0; i < len; ++i) {
      sc.push_back(0.5 + 0.01 * static_cast<double>(i));
      bi.push_back(0.1 * static_cast<double>(i % 5) - 0.2);
    }
    Node* ln = g.AddNode("LayerNormalization", "ln");
    ln->attrs["axis"] = Attribute::FromInt(axis);
    ln->AddInput(g.inputs[0]);
    ln->AddInput(AddInitializer(g, "s", passes::FromDoubles(DataType::kFloat16, {len}, sc)));
    ln->AddInput(AddInitializer(g, "b", passes::FromDoubles(DataType::kFloat16, {len}, bi)));
    Value* y = g.AddValue("y");
    ln->AddOutput(y);
    Node* q = g.AddNode("QuantizeE4M3", "q", "kiln");
    q->AddInput(y);
    q->AddInput(AddInitializer(g, "qs", Tensor::FromVector<float>(DataType::kFloat, {}, {1.f / 96})));
    Value* yq = g.AddValue("y_e4m3");
    q->AddOutput(yq);
    Node* relu = g.AddNode("Relu", "residual_user");
    relu->AddInput(y);
    Value* r = g.AddValue("r");
    relu->AddOutput(r);
    g.outputs = {yq, r};
    EXPECT_TRUE(InferShapes(*m).ok());
    return m;
  };
  Tensor x(DataType::kFloat16, {rows, len});
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.5f, 2.f);
  for (int64_t i = 0; i < x.numel(); ++i) x.mutable_data<Half>()[i] = Half(nd(rng));
  const std::map<std::string, RtValue> feed = {{"x", RtValue::FromTensor(x)}};
  auto want = ReferenceExecutor(*model(-1)).Run(feed);
  ASSERT_TRUE(want.ok()) << want.status().message();
  auto fused = model(-1);
  PassContext ctx;
  std::vector<std::string> report;
  ASSERT_TRUE(RunFuseF8Epilogue(*fused, ctx, &report).ok());
  ASSERT_TRUE(ctx.changed);
  ASSERT_EQ(fused->graph->nodes().size(), 2u);  // LayerNormE4M3, Relu
  const Node& f = *fused->graph->nodes()[0];
  EXPECT_EQ(f.op_type, "LayerNormE4M3");
  ASSERT_EQ(f.num_outputs(), 2u);
  EXPECT_EQ(f.output(0)->name(), "y");
  EXPECT_EQ(f.output(1)->name(), "y_e4m3");
  ASSERT_EQ(report.size(), 1u);
  auto got = ReferenceExecutor(*fused).Run(feed);
  ASSERT_TRUE(got.ok()) << got.status().message();
  for (size_t o = 0; o < 2; ++o) {
    const Tensor& w = (*want)[o].tensor;
    const Tensor& g = (*got)[o].tensor;
    ASSERT_EQ(g.dtype(), w.dtype());
    ASSERT_EQ(g.nbytes(), w.nbytes());
    EXPECT_EQ(std::memcmp(g.raw(), w.raw(), w.nbytes()), 0) << "output " << o;
  }
  // A LayerNorm over another axis stays as it is.
  auto other = model(0);
  PassContext ctx2;
  ASSERT_TRUE(RunFuseF8Epilogue(*other, ctx2, nullptr).ok());
  EXPECT_FALSE(ctx2.changed);
}

// y = MatMul(x, w) named `name`, w [k, n] uniform in [-1, 1) from `rng`.
Value* AddRandomMatMul(Graph& g, const std::string& name, Value* x, int64_t k, int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  Tensor w(DataType::kFloat, {k, n});
  for (int64_t i = 0; i < w.numel(); ++i) w.mutable_data<float>()[i] = u(rng);
  Node* mm = g.AddNode("MatMul", name);
  mm->AddInput(x);
  mm->AddInput(AddInitializer(g, name + "_w", std::move(w)));
  Value* y = g.AddValue(name + "_y");
  mm->AddOutput(y);
  return y;
}

TEST(Fp8, UnalignedProductsStayFloatAndRandomInputsCalibrate) {
  // x[batch, 32] · w1[32, 48] runs FP8; · w2[48, 20] stays float (N 20 is not a multiple of 16).
  auto m = ModelWithInput("x", "batch", 32);
  Graph& g = *m->graph;
  Value* x = g.inputs[0];
  std::mt19937 rng(3);
  g.outputs.push_back(AddRandomMatMul(g, "unaligned", AddRandomMatMul(g, "aligned", x, 32, 48, rng), 48, 20, rng));
  ASSERT_TRUE(InferShapes(*m).ok());
  BuildOptions o;
  o.fp8 = true;
  std::vector<std::string> report, notes;
  Status st = QuantizeFp8(*m, o, &report, &notes);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(report.size(), 2u);
  EXPECT_NE(report[0].find("node 'aligned' (MatMul) runs FP8 E4M3 as kiln.F8MatMul"), std::string::npos)
      << report[0];
  EXPECT_NE(report[1].find("node 'unaligned' (MatMul) stays FP32: K 48 and N 20 are not multiples of 16"),
            std::string::npos)
      << report[1];
  int f8 = 0, matmul = 0;
  for (const Node* n : g.nodes()) {
    f8 += n->op_type == "F8MatMul";
    matmul += n->op_type == "MatMul";
  }
  EXPECT_EQ(f8, 1);
  EXPECT_EQ(matmul, 1);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("random inputs"), std::string::npos) << notes[0];
}

// Q, K and V read one value: one kiln.QuantizeE4M3 feeds their three F8MatMuls
// (one E4M3 copy of the activation, not three), and the model still computes
// what the CPU reference's float products do within FP8's error.
TEST(Fp8, ProductsOfOneValueShareItsQuantization) {
  auto m = ModelWithInput("x", "batch", 32);
  Graph& g = *m->graph;
  Value* x = g.inputs[0];
  std::mt19937 rng(8);
  for (const char* name : {"q", "k", "v"}) g.outputs.push_back(AddRandomMatMul(g, name, x, 32, 16, rng));
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  ASSERT_TRUE(InferShapes(*m).ok());
  Tensor xin(DataType::kFloat, {4, 32});
  for (int64_t i = 0; i < xin.numel(); ++i) xin.mutable_data<float>()[i] = u(rng);
  auto want = ReferenceExecutor(*m).Run({{"x", RtValue::FromTensor(xin)}});
  ASSERT_TRUE(want.ok());
  BuildOptions o;
  o.fp8 = true;
  std::vector<std::string> report, notes;
  Status st = QuantizeFp8(*m, o, &report, &notes);
  ASSERT_TRUE(st.ok()) << st.ToString();
  int quantize = 0, f8 = 0;
  for (const Node* n : g.nodes()) {
    quantize += n->op_type == "QuantizeE4M3";
    if (n->op_type == "F8MatMul") {
      ++f8;
      EXPECT_EQ(n->input(0)->producer()->op_type, "QuantizeE4M3");
    }
  }
  EXPECT_EQ(quantize, 1);
  EXPECT_EQ(f8, 3);
  auto got = ReferenceExecutor(*m).Run({{"x", RtValue::FromTensor(xin)}});
  ASSERT_TRUE(got.ok()) << got.status().message();
  for (size_t i = 0; i < 3; ++i) {
    const Tensor& a = (*want)[i].tensor;
    const Tensor& b = (*got)[i].tensor;
    double err = 0, norm = 0;
    for (int64_t j = 0; j < a.numel(); ++j) {
      const double d = a.data<float>()[j] - b.data<float>()[j];
      err += d * d;
      norm += static_cast<double>(a.data<float>()[j]) * a.data<float>()[j];
    }
    EXPECT_LT(std::sqrt(err / norm), 0.1) << "output " << i;  // E4M3 keeps 3 mantissa bits: a few % rel L2
    EXPECT_GT(std::sqrt(err / norm), 0.0) << "output " << i;  // and it is quantized
  }
}

// Two products of x[batch, 32]: 'plain' reads x; 'outlier' reads x·c, where
// channel 0 of c is 1e5 and its weight row is zero (an LLM-style outlier
// feature): the per-tensor scale follows the outlier, the channels that carry
// the output fall to E4M3's subnormals, and the isolated error is large.
std::unique_ptr<Model> OutlierModel() {
  auto m = ModelWithInput("x", "batch", 32);
  Graph& g = *m->graph;
  Value* x = g.inputs[0];
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  auto weight = [&](const std::string& name, bool zero_row0) {
    Tensor t(DataType::kFloat, {32, 32});
    for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = zero_row0 && i < 32 ? 0.f : u(rng);
    return AddInitializer(g, name, std::move(t));
  };
  Tensor c(DataType::kFloat, {32});
  for (int64_t i = 0; i < 32; ++i) c.mutable_data<float>()[i] = i == 0 ? 1e5f : 1.f;
  Node* mul = g.AddNode("Mul", "scale");
  mul->AddInput(x);
  mul->AddInput(AddInitializer(g, "c", std::move(c)));
  Value* xc = g.AddValue("xc");
  mul->AddOutput(xc);
  for (const char* name : {"plain", "outlier"}) {
    Node* n = g.AddNode("MatMul", name);
    n->AddInput(std::string(name) == "plain" ? x : xc);
    n->AddInput(weight(std::string(name) + "_w", std::string(name) == "outlier"));
    Value* y = g.AddValue(std::string(name) + "_y");
    n->AddOutput(y);
    g.outputs.push_back(y);
  }
  EXPECT_TRUE(InferShapes(*m).ok());
  return m;
}

int CountOp(const Graph& g, const std::string& op) {
  int n = 0;
  for (const Node* node : g.nodes()) n += node->op_type == op;
  return n;
}

TEST(Fp8Fallback, ProductWithOutlierInputStaysFloat) {
  auto m = OutlierModel();
  BuildOptions o;
  o.fp8 = true;
  std::vector<std::string> report, notes;
  Status st = QuantizeFp8(*m, o, &report, &notes);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(report.size(), 2u);
  EXPECT_NE(report[0].find("node 'plain' (MatMul) runs FP8 E4M3"), std::string::npos) << report[0];
  EXPECT_NE(report[1].find("node 'outlier' (MatMul) stays FP32: FP8 rel L2"), std::string::npos) << report[1];
  EXPECT_EQ(CountOp(*m->graph, "F8MatMul"), 1);
  // The threshold decides: raised above the outlier's error, both run FP8.
  auto again = OutlierModel();
  o.fp8_fallback_rel_l2 = 10;
  o.fp8_model_rel_l2 = 0;
  report.clear();
  ASSERT_TRUE(QuantizeFp8(*again, o, &report, &notes).ok());
  EXPECT_EQ(CountOp(*again->graph, "F8MatMul"), 2) << report[1];
}

TEST(Fp8Fallback, WholeModelThresholdKeepsTheWorstProductsFloat) {
  // No isolated check (threshold 10); a whole-model threshold below the
  // plain product's FP8 error keeps both float, the outlier product first.
  auto m = OutlierModel();
  BuildOptions o;
  o.fp8 = true;
  o.fp8_fallback_rel_l2 = 10;
  o.fp8_model_rel_l2 = 1e-6;
  std::vector<std::string> report, notes;
  ASSERT_TRUE(QuantizeFp8(*m, o, &report, &notes).ok());
  ASSERT_EQ(report.size(), 2u);
  for (const std::string& line : report)
    EXPECT_NE(line.find("stays FP32: whole-model FP8 rel L2"), std::string::npos) << line;
  EXPECT_EQ(CountOp(*m->graph, "F8MatMul"), 0);
  bool noted = false;
  for (const std::string& n : notes) noted |= n.find("2 of 2 FP8 layers stay float") != std::string::npos;
  EXPECT_TRUE(noted);
}

// The FP8 build's graph of the zoo's BERT encoder (2 layers, hidden 256; all 9
// products FP8) on the CPU reference against onnxruntime FP32, through
// `kiln compare --fp8`, calibrated on 4 random token batches and evaluated on
// a fifth. Measured (2026-12, this data): rel L2 0.0191 last_hidden_state,
// 0.0438 pooled (tanh of one more FP8 product of the CLS row); with --fp16
// 0.0189 / 0.0454. E4M3's 3 mantissa bits give about 2-3% rms error per
// quantized operand, so these are the expected size. Bounds: 0.03 and 0.07,
// about 1.5x the measurements; the lower bounds fail if nothing ran FP8.
class KilnCompareFp8Test : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fixtures::TestDir("kiln_compare_fp8");
    std::mt19937 rng(11);
    for (int s = 0; s < 5; ++s) {
      const std::filesystem::path d = s < 4 ? dir_ / "calib" / ("s" + std::to_string(s)) : dir_ / "eval";
      std::filesystem::create_directories(d);
      Tensor ids(DataType::kInt64, {2, 32}), mask(DataType::kInt64, {2, 32});
      for (int64_t i = 0; i < ids.numel(); ++i) {
        ids.mutable_data<int64_t>()[i] = static_cast<int64_t>(rng() % 1000);  // the encoder's vocabulary: 1000
        mask.mutable_data<int64_t>()[i] = i < 32 + 24 ? 1 : 0;                 // row 1 padded after 24 tokens
      }
      ASSERT_TRUE(WriteNpy((d / "input_ids.npy").string(), ids).ok());
      ASSERT_TRUE(WriteNpy((d / "attention_mask.npy").string(), mask).ok());
    }
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  fixtures::CliResult Compare(const std::string& args) {
    const std::string eval = (dir_ / "eval").string();
    return fixtures::RunKiln("compare '" + fixtures::ZooModel("bert_encoder") + "' --backend cpu --fp8 --calib '" +
                                 (dir_ / "calib").string() + "' --input input_ids='" + eval +
                                 "/input_ids.npy' --input attention_mask='" + eval + "/attention_mask.npy' --python '" +
                                 fixtures::Python() + "' " + args,
                             dir_.string());
  }
  std::filesystem::path dir_;
};

// `--no-fp8-producer-fusion` (for A/B timing) leaves the quantizations as their own kernels.
TEST(Fp8, ProducerFusionCanBeTurnedOff) {
  const std::filesystem::path dir = fixtures::TestDir("kiln_fp8_producer_fusion");
  const std::string base = "check --backend cuda --fp8 --fp16 '" + fixtures::ZooModel("bert_encoder") + "'";
  auto on = fixtures::RunKiln(base, dir.string());
  auto off = fixtures::RunKiln(base + " --no-fp8-producer-fusion", dir.string());
  ASSERT_EQ(on.rc, 0) << on.out;
  ASSERT_EQ(off.rc, 0) << off.out;
  EXPECT_NE(on.out.find("kiln.LayerNormE4M3 3"), std::string::npos) << on.out;
  EXPECT_NE(on.out.find("kiln.QuantizeE4M3 3"), std::string::npos) << on.out;
  EXPECT_EQ(off.out.find("LayerNormE4M3"), std::string::npos) << off.out;
  EXPECT_NE(off.out.find("kiln.QuantizeE4M3 6"), std::string::npos) << off.out;
  std::filesystem::remove_all(dir);
}

// The quantized graph on the CPU reference, and (--as-built) the graph `kiln build --fp16 --fp8` makes: the
// shared E4M3 quantizations, F8MatMul with its bias/residual epilogue, fc1 with GELU and an E4M3 output, the
// LayerNorms storing their E4M3 copies.
TEST_F(KilnCompareFp8Test, BertEncoderAgainstOnnxruntimeFp32) {
  for (const std::string fp16 : {"", "--fp16", "--fp16 --as-built"}) {
    auto r = Compare(fp16);
    if (fp16.find("--as-built") != std::string::npos) {
      EXPECT_NE(r.out.find("as built: "), std::string::npos) << r.out;
      // f8_epilogue: fc1 takes GELU and fc2's quantization, the LayerNorms write their E4M3 copies.
      EXPECT_NE(
          r.out.find("node '/layers.0/fc1/MatMul' (kiln.F8MatMul) takes node '/layers.0/Div_3' (kiln.Gelu)"),
          std::string::npos)
          << r.out;
      EXPECT_NE(r.out.find("node '/layers.1/ln1/LayerNormalization' (LayerNormalization) writes"),
                std::string::npos)
          << r.out;
    }
    EXPECT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("node '/layers.0/qkv/MatMul' (MatMul) runs FP8 E4M3 as kiln.F8MatMul"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("node '/pool/Gemm' (Gemm) runs FP8 E4M3"), std::string::npos) << r.out;
    const double hidden = fixtures::CompareRelL2(r.out, "last_hidden_state"), pooled = fixtures::CompareRelL2(r.out, "pooled");
    std::printf("bert_encoder FP8%s vs onnxruntime FP32: rel L2 %.4f last_hidden_state, %.4f pooled\n",
                fp16.c_str(), hidden, pooled);
    EXPECT_GT(hidden, 1e-3) << "no error at all: nothing ran FP8";
    EXPECT_LT(hidden, 0.03) << r.out;
    EXPECT_GT(pooled, 1e-3);
    EXPECT_LT(pooled, 0.07) << r.out;
  }
}

}  // namespace
}  // namespace kiln
