// Every CUDA op against the CPU reference on random inputs: odd sizes,
// broadcasting, tile-unfriendly shapes. Single-op models are built in memory,
// run by the ReferenceExecutor (the oracle) and by a CUDA engine; outputs must
// agree within per-dtype tolerances: |gpu - cpu| <= rtol·|cpu| + atol·rms(cpu)
// (reference/compare.h); integers exactly, int8/uint8 of a case with a tolerance
// within one step (op_cases/op_case.h). Every comparison first proves it can fail: the same
// tolerance must reject zeros and a 5%-perturbed reference. Skipped (not
// failed) without a GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

#include "build/build_passes.h"
#include "ir/clone.h"
#include "op_cases/op_case.h"
#include "passes/shape_inference.h"
#include "reference/compare.h"
#include "reference/executor.h"
#include "runtime/gpu/gpu_engine.h"
#include "runtime/gpu/host_runner.h"

namespace kiln {
namespace {

using op_cases::In;
using op_cases::Random;

bool HaveGpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

Tolerance Tol(double rtol, double atol) {
  Tolerance t;
  t.rtol = rtol;
  t.atol = atol;
  return t;
}

// `opts` gives the build options besides fp16 and fuse_pointwise; `built`, when
// given, gets the engine.
void RunCase(const op_cases::OpCase& oc, BuildOptions opts = {}, std::shared_ptr<Engine>* built = nullptr) {
  const op_cases::Case& c = oc.c;
  SCOPED_TRACE(oc.Label());
  std::mt19937 rng(1234);
  op_cases::CaseModel cm = op_cases::BuildCaseModel(c, rng);
  std::unique_ptr<Model> m = std::move(cm.model);
  std::map<std::string, RtValue> cpu_inputs;
  for (const auto& [name, t] : cm.inputs) cpu_inputs[name] = RtValue::FromTensor(t);
  std::unique_ptr<Model> gm = CloneModel(*m);
  ASSERT_TRUE(InferShapes(*m).ok());
  auto want = ReferenceExecutor(*m).Run(cpu_inputs);
  ASSERT_TRUE(want.ok()) << want.status().ToString();

  opts.fp16 = c.fp16;
  opts.fuse_pointwise = false;  // each case tests its own kernel, not a generated one around it
  auto engine = cuda::BuildEngine(std::move(gm), opts, nullptr);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  if (built) *built = *engine;
  auto runner = cuda::HostRunner::Create(*engine);
  ASSERT_TRUE(runner.ok()) << runner.status().ToString();
  ASSERT_TRUE((*runner)->SetInputs(cm.inputs).ok());
  for (int rep = 0; rep < 3; ++rep) {  // eager, capture, graph replay
    Status s = (*runner)->Run();
    ASSERT_TRUE(s.ok()) << s.ToString();
    auto got = (*runner)->Outputs();
    ASSERT_TRUE(got.ok());
    for (int i = 0; i < c.outputs; ++i) {
      const Tensor& w = (*want)[static_cast<size_t>(i)].tensor;
      const Tensor& o = got->at("y" + std::to_string(i));
      ASSERT_EQ(o.dtype(), w.dtype());
      if (IsInt8Type(w.dtype()) && (oc.rtol > 0 || oc.atol > 0)) {  // one step (op_case.h)
        ASSERT_EQ(o.numel(), w.numel());
        int64_t worst = 0, off = 0;
        for (int64_t k = 0; k < w.numel(); ++k) {
          const int64_t d = std::abs(w.IntAt(k) - o.IntAt(k));
          worst = std::max(worst, d);
          off += d != 0;
        }
        ASSERT_LE(worst, 1) << "output " << i << " run " << rep << ": " << off << " of " << w.numel()
                            << " elements off, by up to " << worst << " steps";
        continue;
      }
      Status close = ExpectClose("output " + std::to_string(i) + " run " + std::to_string(rep), w, o,
                                 Tol(oc.rtol, oc.atol));
      ASSERT_TRUE(close.ok()) << close.message();
    }
  }
}

std::vector<std::string> CaseGroups() {
  std::vector<std::string> groups;
  for (const op_cases::OpCase& oc : op_cases::CudaOpCases())
    if (groups.empty() || groups.back() != oc.group) groups.push_back(oc.group);
  return groups;
}

// One test per kernel family (tests/op_cases/cuda_cases.cc); every case of it runs.
class GpuOps : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuOps, MatchesTheCpuReference) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  for (const op_cases::OpCase& oc : op_cases::CudaOpCases())
    if (oc.group == GetParam()) RunCase(oc);
}

INSTANTIATE_TEST_SUITE_P(Cases, GpuOps, ::testing::ValuesIn(CaseGroups()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// Channels-last float16 convolutions on cuDNN's graph API (--conv-tactics graph,
// src/backend/cuda/conv_graph.h): every activation with bias and residual,
// strides, dilation, a 7x7 stem, 1x1s with Swish and Clip. Each must have run a graph engine (the
// engine's tactic cache holds the geometry's entry with a chosen plan), but the 1x1 Clip, which cuDNN
// may refuse.
TEST(GpuConvGraph, EveryEpilogueMatchesTheCpuReference) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  auto act = [](const char* name) {
    return AttributeMap{{"activation", Attribute::FromString(name)}, {"pads", Attribute::FromInts({1, 1, 1, 1})}};
  };
  auto half = [](const char* name, std::vector<int64_t> dims, bool constant = false) {
    return In{name, std::move(dims), DataType::kFloat16, constant};
  };
  const In x = half("x", {2, 9, 11, 8}), w = half("w", {16, 3, 3, 8}, true), b = half("b", {16}, true);
  const In z = half("z", {2, 9, 11, 16}), none{""};
  AttributeMap clip = act("Clip");
  clip["activation_min"] = Attribute::FromFloat(0.f);
  clip["activation_max"] = Attribute::FromFloat(6.f);
  AttributeMap strided = act("Clip");
  strided["activation_min"] = Attribute::FromFloat(-1.f);
  strided["activation_max"] = Attribute::FromFloat(1.f);
  strided["strides"] = Attribute::FromInts({2, 2});
  AttributeMap dilated = act("Swish");
  dilated["dilations"] = Attribute::FromInts({2, 2});
  dilated["pads"] = Attribute::FromInts({2, 2, 2, 2});
  AttributeMap stem = act("Relu");
  stem["strides"] = Attribute::FromInts({2, 2});
  stem["pads"] = Attribute::FromInts({3, 3, 3, 3});
  const std::vector<op_cases::Case> cases = {
      {"FusedConvNhwc", {x, w, b, z}, act("Relu"), 1, 17, "kiln"},
      {"FusedConvNhwc", {x, w, b}, clip, 1, 17, "kiln"},
      {"FusedConvNhwc", {x, w, b, z}, act("Swish"), 1, 17, "kiln"},
      {"FusedConvNhwc", {x, w, b}, act("Sigmoid"), 1, 17, "kiln"},
      {"FusedConvNhwc", {x, w, none, z}, act(""), 1, 17, "kiln"},
      {"FusedConvNhwc", {x, w, b}, strided, 1, 17, "kiln"},
      {"FusedConvNhwc", {x, w, b, z}, dilated, 1, 17, "kiln"},
      {"FusedConvNhwc", {half("x", {2, 15, 15, 8}), half("w", {8, 7, 7, 8}, true), half("b", {8}, true)}, stem, 1,
       17, "kiln"},
      // 1x1 with activations cuBLASLt cannot fuse: the graph instead of the product and a pass.
      {"FusedConvNhwc", {x, half("w1", {16, 1, 1, 8}, true), b, z}, {{"activation", Attribute::FromString("Swish")}},
       1, 17, "kiln"},
      {"FusedConvNhwc", {x, half("w1", {16, 1, 1, 8}, true), b},
       {{"activation", Attribute::FromString("Clip")}, {"activation_min", Attribute::FromFloat(0.f)},
        {"activation_max", Attribute::FromFloat(6.f)}}, 1, 17, "kiln"},
  };
  BuildOptions opts;
  opts.conv_tactics = BuildOptions::ConvTactics::kGraph;
  for (size_t i = 0; i < cases.size(); ++i) {
    std::shared_ptr<Engine> engine;
    RunCase({"ConvGraph", static_cast<int>(i), cases[i], 1e-2, 2e-2}, opts, &engine);
    if (HasFatalFailure()) return;
    auto gpu = std::dynamic_pointer_cast<cuda::GpuEngine>(engine);
    ASSERT_TRUE(gpu);
    bool graph = false;
    for (const auto& [key, value] : gpu->tactics()->Entries())
      if (key.rfind("conv_graph:", 0) == 0) {
        // cuDNN 9.19 on an H100 (2026-12-06) had no engine for the 1x1 Clip (case 9) while it took the 3x3
        // Clip and the 1x1 Swish: the builder then keeps cuBLASLt and a pass (checked above all the same).
        if (i == 9 && value == "none") {
          std::printf("case 9: cuDNN's graph API refused %s (the legacy path ran it)\n", key.c_str());
        } else {
          EXPECT_NE(value, "none") << "case " << i << ": cuDNN's graph API refused " << key;
        }
        graph = true;
      }
    EXPECT_TRUE(graph) << "case " << i << ": no graph convolution was prepared";
  }
}

// Channels-last float16 convolutions as im2col and a cuBLASLt product (--conv-tactics im2col,
// src/backend/cuda/conv.cc): the epilogues (bias and ReLU in cuBLASLt's, residual through beta, the others
// as a pass), strides, dilation, padding, few input channels. Each node must have used the im2col key.
TEST(GpuConvIm2Col, EveryEpilogueMatchesTheCpuReference) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  auto act = [](const char* name) {
    return AttributeMap{{"activation", Attribute::FromString(name)}, {"pads", Attribute::FromInts({1, 1, 1, 1})}};
  };
  auto half = [](const char* name, std::vector<int64_t> dims, bool constant = false) {
    return In{name, std::move(dims), DataType::kFloat16, constant};
  };
  const In x = half("x", {2, 9, 11, 24}), w = half("w", {16, 3, 3, 24}, true), b = half("b", {16}, true);
  const In z = half("z", {2, 9, 11, 16}), none{""};
  AttributeMap strided = act("Swish");
  strided["strides"] = Attribute::FromInts({2, 2});
  AttributeMap dilated = act("Gelu");
  dilated["dilations"] = Attribute::FromInts({2, 2});
  dilated["pads"] = Attribute::FromInts({2, 2, 2, 2});
  AttributeMap wide = act("Relu");
  wide["pads"] = Attribute::FromInts({2, 2, 2, 2});
  const std::vector<op_cases::Case> cases = {
      {"FusedConvNhwc", {x, w, b, z}, act("Relu"), 1, 17, "kiln"},
      {"FusedConvNhwc", {x, w, b}, act("Swish"), 1, 17, "kiln"},
      {"FusedConvNhwc", {x, w, none, z}, act(""), 1, 17, "kiln"},
      {"FusedConvNhwc", {x, w, b, half("z2", {2, 5, 6, 16})}, strided, 1, 17, "kiln"},
      {"FusedConvNhwc", {x, w, b, z}, dilated, 1, 17, "kiln"},
      {"FusedConvNhwc", {half("x8", {3, 7, 5, 8}), half("w5", {24, 5, 5, 8}, true), half("b24", {24}, true)}, wide,
       1, 17, "kiln"},
  };
  BuildOptions opts;
  opts.conv_tactics = BuildOptions::ConvTactics::kIm2Col;
  for (size_t i = 0; i < cases.size(); ++i) {
    std::shared_ptr<Engine> engine;
    RunCase({"ConvIm2Col", static_cast<int>(i), cases[i], 1e-2, 2e-2}, opts, &engine);
    if (HasFatalFailure()) return;
    auto gpu = std::dynamic_pointer_cast<cuda::GpuEngine>(engine);
    ASSERT_TRUE(gpu);
    bool im2col = false;
    for (const auto& [node, key] : gpu->tactics()->Uses()) im2col |= key.rfind("conv_im2col:", 0) == 0;
    EXPECT_TRUE(im2col) << "case " << i << ": the convolution did not run as im2col";
  }
}

// Timed choices in the tactic cache: the first one stands for every context that timed the same key
// (they then run the same kernels), unless the recorded one is stale and is replaced. Needs no device.
TEST(TacticCache, KeepsTheFirstChoiceUnlessStale) {
  cuda::TacticCache cache;
  EXPECT_EQ(cache.Keep("k", "first", false), "first");
  EXPECT_EQ(cache.Keep("k", "second", false), "first");
  EXPECT_EQ(cache.Find("k"), std::optional<std::string>("first"));
  EXPECT_EQ(cache.Keep("k", "retimed", true), "retimed");
  EXPECT_EQ(cache.Find("k"), std::optional<std::string>("retimed"));
}

// Graph outputs known before the run (Shape and Size fold on the host at the
// given shapes) are still written into the caller's buffers.
TEST(GpuEngine, OutputsKnownBeforeTheRunAreWritten) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  RunCase({"Host", 0, {"Shape", {{"x", {2, 3, 5}}}}});
  RunCase({"Host", 1, {"Size", {{"x", {4, 7}}}}});
  RunCase({"Host", 2, {"Shape", {{"x", {2, 3, 5}}}, {{"start", Attribute::FromInt(1)}}, 1, 15}});
}

// Runs both engines on `inputs`; output `name` must be bit-identical (a loaded plan computes what was built).
void ExpectSameOutput(const std::shared_ptr<Engine>& first, const std::shared_ptr<Engine>& second,
                      const std::map<std::string, Tensor>& inputs, const std::string& name) {
  std::map<std::string, Tensor> outs[2];
  int k = 0;
  for (const std::shared_ptr<Engine>* e : {&first, &second}) {
    auto runner = cuda::HostRunner::Create(*e);
    ASSERT_TRUE(runner.ok()) << runner.status().ToString();
    ASSERT_TRUE((*runner)->SetInputs(inputs).ok());
    ASSERT_TRUE((*runner)->Run().ok());
    auto got = (*runner)->Outputs();
    ASSERT_TRUE(got.ok());
    outs[k++] = *got;
  }
  const Tensor& a = outs[0].at(name);
  const Tensor& b = outs[1].at(name);
  ASSERT_EQ(a.nbytes(), b.nbytes());
  EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0) << "the loaded plan computes another result";
}

// The convolution algorithms timed at build time travel in the plan: the loaded
// engine starts with them (and so does not time those geometries again), and
// runs the model to the same result.
TEST(GpuEngine, PlanCarriesTheTimedTactics) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  op_cases::Case c{"Conv", {{"x", {2, 3, 11, 13}}, {"w", {8, 3, 3, 3}, DataType::kFloat, true}},
                   {{"pads", Attribute::FromInts({1, 1, 1, 1})}}};
  std::mt19937 rng(7);
  op_cases::CaseModel cm = op_cases::BuildCaseModel(c, rng);
  auto built = cuda::BuildEngine(std::move(cm.model), BuildOptions{}, nullptr);
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  auto& engine = static_cast<const cuda::GpuEngine&>(**built);
  std::map<std::string, std::string> timed = engine.tactics()->Entries();
  ASSERT_FALSE(timed.empty());
  auto bytes = (*built)->Serialize();
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto loaded = Engine::Deserialize(bytes->data(), bytes->size(), BuilderLoadOptions());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(static_cast<const cuda::GpuEngine&>(**loaded).tactics()->Entries(), timed);
  ExpectSameOutput(*built, *loaded, cm.inputs, "y0");
}

// The lean runtime's load (Engine::Deserialize with no reference support):
// a plan whose shapes the shape program expresses loads and runs as built; a
// plan with value-dependent shapes (NonZero) is refused, naming the value,
// and loads with kiln::BuilderLoadOptions().
TEST(GpuEngine, LeanLoadRunsWhatTheShapeProgramExpresses) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  std::mt19937 rng(11);
  op_cases::CaseModel conv = op_cases::BuildCaseModel(
      {"Conv", {{"x", {2, 3, 9, 9}}, {"w", {4, 3, 3, 3}, DataType::kFloat, true}}, {}}, rng);
  auto built = cuda::BuildEngine(std::move(conv.model), BuildOptions{}, nullptr);
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  auto bytes = (*built)->Serialize();
  ASSERT_TRUE(bytes.ok());
  auto lean = Engine::Deserialize(bytes->data(), bytes->size());
  ASSERT_TRUE(lean.ok()) << lean.status().ToString();
  ExpectSameOutput(*built, *lean, conv.inputs, "y0");
  if (HasFatalFailure()) return;

  op_cases::CaseModel nz = op_cases::BuildCaseModel({"NonZero", {{"x", {3, 4}}}, {}}, rng);
  auto dynamic = cuda::BuildEngine(std::move(nz.model), BuildOptions{}, nullptr);
  ASSERT_TRUE(dynamic.ok()) << dynamic.status().ToString();
  auto nz_bytes = (*dynamic)->Serialize();
  ASSERT_TRUE(nz_bytes.ok());
  auto refused = Engine::Deserialize(nz_bytes->data(), nz_bytes->size());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("kiln::BuilderLoadOptions()"), std::string::npos)
      << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("'y0'"), std::string::npos) << refused.status().ToString();
  EXPECT_TRUE(Engine::Deserialize(nz_bytes->data(), nz_bytes->size(), BuilderLoadOptions()).ok());
}

// Residual block relu(conv2(relu(conv1(x))) + x), a bias-free conv + Add, an
// MLP layer: for the build pipeline (simplifier + fuse_gpu [+ fp16]).
std::unique_ptr<Model> MakeFusionModel(std::mt19937& rng) {
  auto m = std::make_unique<Model>();
  m->ir_version = 8;
  m->opsets[""] = 17;
  m->graph = std::make_shared<Graph>();
  Graph& g = *m->graph;
  auto input = [&](const std::string& name, std::vector<int64_t> dims) {
    Value* v = g.AddValue(name);
    v->type = TypeInfo::Tensor(DataType::kFloat, Shape::Of(dims));
    g.inputs.push_back(v);
    return v;
  };
  // Weights scaled by 1/sqrt(fan_in) so activations stay O(1) (FP16 tolerances stay meaningful).
  auto constant = [&](const std::string& name, std::vector<int64_t> dims) {
    Value* v = g.AddValue(name);
    Tensor t = Random({name, dims}, rng);
    int64_t fan_in = 1;
    for (size_t i = 1; i < dims.size(); ++i) fan_in *= dims[i];
    if (name == "wm") fan_in = dims[0];
    for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] /= std::sqrt(static_cast<float>(fan_in));
    v->data = t;
    v->type = TypeInfo::Tensor(DataType::kFloat, Shape::Of(dims));
    g.initializers.push_back(v);
    return v;
  };
  auto op = [&](const std::string& type, const std::string& name, std::vector<Value*> ins, AttributeMap attrs = {}) {
    Node* n = g.AddNode(type, name);
    for (Value* v : ins) n->AddInput(v);
    n->attrs = std::move(attrs);
    Value* y = g.AddValue(name);
    n->AddOutput(y);
    return y;
  };
  // Residual block: relu(conv2(relu(conv1(x))) + x), then a bias-only conv+add, then an MLP.
  Value* x = input("x", {2, 8, 12, 12});
  Value* c1 = op("Conv", "conv1", {x, constant("w1", {8, 8, 3, 3}), constant("b1", {8})}, {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  Value* r1 = op("Relu", "relu1", {c1});
  Value* c2 = op("Conv", "conv2", {r1, constant("w2", {8, 8, 3, 3})}, {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  Value* r2 = op("Relu", "relu2", {op("Add", "add2", {c2, x})});
  Value* c3 = op("Conv", "conv3", {r2, constant("w3", {8, 8, 1, 1})});
  Value* a3 = op("Add", "add3", {x, c3});
  Value* f = op("Reshape", "flat", {a3, [&] {
                  Value* v = g.AddValue("shape");
                  v->data = Tensor::FromVector<int64_t>(DataType::kInt64, {3}, {2, 8, 144});
                  v->type = TypeInfo::Tensor(DataType::kInt64, Shape::Of({3}));
                  g.initializers.push_back(v);
                  return v;
                }()});
  Value* h = op("Relu", "mlp_relu", {op("Add", "mlp_bias", {constant("bm", {32}), op("MatMul", "mlp", {f, constant("wm", {144, 32})})})});
  g.outputs.push_back(h);
  return m;
}

// Runs without a GPU: what the builder's passes make of the model.
TEST(GpuBuildPasses, FusesTheModel) {
  std::mt19937 rng(42);
  std::unique_ptr<Model> m = MakeFusionModel(rng);
  ASSERT_TRUE(InferShapes(*m).ok());
  std::vector<std::string> notes;
  Status s = RunBuildPasses(*m, BuildOptions{}, &notes);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::vector<std::string> ops;
  for (const Node* n : m->graph->nodes()) ops.push_back(n->op_type + "/" + n->name);
  EXPECT_EQ(ops, (std::vector<std::string>{"FusedConv/conv1", "FusedConv/conv2", "FusedConv/conv3", "Reshape/flat",
                                           "FusedMatMul/mlp"}));
  EXPECT_EQ(m->graph->outputs[0]->name(), "mlp_relu");
}

// The engine must fuse (kernel count) and match the unfused reference.
void RunFusionModel(bool fp16) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  std::mt19937 rng(42);
  std::unique_ptr<Model> m = MakeFusionModel(rng);
  std::map<std::string, RtValue> cpu_inputs;
  std::map<std::string, Tensor> gpu_inputs;
  Tensor xt = Random({"x", {2, 8, 12, 12}}, rng);
  cpu_inputs["x"] = RtValue::FromTensor(xt);
  gpu_inputs["x"] = xt;
  std::unique_ptr<Model> gm = CloneModel(*m);
  ASSERT_TRUE(InferShapes(*m).ok());
  auto want = ReferenceExecutor(*m).Run(cpu_inputs);
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  BuildOptions opts;
  opts.fp16 = fp16;
  BuildReport report;
  auto engine = cuda::BuildEngine(std::move(gm), opts, &report);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  // conv1+relu1, conv2+add2+relu2, conv3+add3, mlp+bias+relu; FP16 adds the
  // input/output casts and, with the convs in NHWC, a Transpose in and one out.
  EXPECT_EQ(report.num_kernels, fp16 ? 8u : 4u);
  auto runner = cuda::HostRunner::Create(*engine);
  ASSERT_TRUE(runner.ok()) << runner.status().ToString();
  ASSERT_TRUE((*runner)->SetInputs(gpu_inputs).ok());
  const double rtol = fp16 ? 2e-2 : 1e-4, atol = fp16 ? 5e-2 : 1e-4;
  for (int rep = 0; rep < 3; ++rep) {
    Status s = (*runner)->Run();
    ASSERT_TRUE(s.ok()) << s.ToString();
    auto got = (*runner)->Outputs();
    ASSERT_TRUE(got.ok());
    Status close = ExpectClose("mlp_relu run " + std::to_string(rep), (*want)[0].tensor, got->at("mlp_relu"),
                               Tol(rtol, atol));
    ASSERT_TRUE(close.ok()) << close.message();
  }
}

TEST(GpuFusion, PipelineFp32) { RunFusionModel(false); }
TEST(GpuFusion, PipelineFp16) { RunFusionModel(true); }

}  // namespace
}  // namespace kiln
