// The engine inspector (src/plan/plan_inspect.h, `kiln inspect PLAN`) on
// plans made without a GPU: the build passes and, with CUDA compiled in,
// CompilePointwiseKernels (NVRTC for sm_90) on the CPU, then the plan's graph
// sections, as a GPU build writes them.
#include "plan/plan_inspect.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "build/build_passes.h"
#include "fixtures.h"
#include "graph_builder.h"
#include "onnx/import.h"
#include "passes/shape_inference.h"
#include "plan/plan_config.h"
#include "plan/plan_file.h"
#include "plan/plan_graph.h"
#include "runtime/shape_program.h"
#ifdef KILN_HAS_CUDA
#include "build/cuda/nvrtc_compile.h"
#endif

namespace kiln {
namespace {

using testing_build::GraphBuilder;

// The build passes and the generated kernels' compilation, as the CUDA builder does them.
void BuildOnCpu(Model& m, const BuildOptions& opts) {
  std::vector<std::string> notes;
  Status s = RunBuildPasses(m, opts, &notes);
  ASSERT_TRUE(s.ok()) << s.ToString();
#ifdef KILN_HAS_CUDA
  cuda::KernelCache cache;
  Status compiled = cuda::CompilePointwiseKernels(m, 90, cache);
  ASSERT_TRUE(compiled.ok()) << compiled.ToString();
#endif
}

// The plan a GPU build would write, less what needs the GPU (header GPU name, tactics).
PlanFile PlanOf(const Model& m, const EngineConfig& cfg,
                const std::map<std::string, std::string>& tactics = {},
                const std::map<std::string, std::string>& tactic_nodes = {}) {
  PlanFile plan;
  plan.header.kiln_version = KILN_VERSION;
  WritePlanGraph(m, &plan);
  plan.sections["config"] = ConfigToJson(cfg);
  plan.sections["tactics"] = StringMapToJson(tactics);
  plan.sections["tactic_nodes"] = StringMapToJson(tactic_nodes);
  // Through the bytes, as `kiln inspect` reads a file.
  std::string bytes = SerializePlan(plan);
  auto parsed = ParsePlan(bytes.data(), bytes.size());
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  return parsed.ok() ? *parsed : plan;
}

const InspectedStep* StepWithOp(const PlanInspection& r, const std::string& op) {
  for (const InspectedStep& s : r.steps)
    if (s.op == op) return &s;
  return nullptr;
}

// x[N,3,8,8] → Conv(8 filters, 3x3, pad 1, bias) → Relu → Mul(·, 2) → Sigmoid:
// the build makes kiln.FusedConv (Conv + bias + Relu) and one kiln.Pointwise
// (Mul, Sigmoid). At the opt batch 4, each step's bytes follow from the dims.
std::unique_ptr<Model> ConvChain() {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("N"), Dim::Known(3), Dim::Known(8), Dim::Known(8)}));
  Value* c = b.Op("Conv", "conv", {x, b.Const("w", {8, 3, 3, 3}), b.Const("bias", {8})},
                  {{"pads", Attribute::FromInts({1, 1, 1, 1})}});
  Value* r = b.Op("Relu", "relu", {c});
  Value* m = b.Op("Mul", "mul", {r, b.Scalar("two", 2.0)});
  b.Output(b.Op("Sigmoid", "sig", {m}));
  return b.Done();
}

TEST(PlanInspect, ListsKernelStepsWithFusionTacticsAndBytes) {
  std::unique_ptr<Model> m = ConvChain();
  BuildOptions opts;
  BuildOnCpu(*m, opts);
  EngineConfig cfg;
  cfg.profiles["x"] = ShapeRange{{1, 3, 8, 8}, {4, 3, 8, 8}, {8, 3, 8, 8}};
  // The tactic cache's entry for the conv, as a GPU build records it.
  const std::string fused_conv = [&] {
    for (const Node* n : m->graph->nodes())
      if (n->op_type == "FusedConv") return n->name;
    return std::string();
  }();
  ASSERT_FALSE(fused_conv.empty()) << "the build passes made no kiln.FusedConv";
  const std::string key = "conv t0 d:4:3:8:8";
  auto r = InspectPlan(PlanOf(*m, cfg, {{key, "1:0.0125:2048:1;0:0.02:0:1;"}}, {{fused_conv, key}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->steps.size(), 2u) << PlanInspectionText(*r);
  EXPECT_EQ(r->opt_shapes.at("x"), (std::vector<int64_t>{4, 3, 8, 8}));
  EXPECT_TRUE(r->shape_error.empty()) << r->shape_error;
  EXPECT_EQ(r->tactics, 1u);

  const int64_t f = sizeof(float);
  const InspectedStep& conv = r->steps[0];
  EXPECT_EQ(conv.op, "kiln.FusedConv");
  EXPECT_EQ(conv.node, fused_conv);
  EXPECT_EQ(conv.fused_ops, (std::vector<std::string>{"Conv", "Add (bias)", "Relu"}));
  EXPECT_EQ(conv.precision, "float32");
  EXPECT_EQ(conv.tactic_key, key);
  EXPECT_NE(conv.tactic.find("IMPLICIT_PRECOMP_GEMM"), std::string::npos) << conv.tactic;
  EXPECT_NE(conv.tactic.find("of 2 timed"), std::string::npos) << conv.tactic;
  ASSERT_TRUE(conv.bytes_read && conv.bytes_written);
  EXPECT_EQ(*conv.bytes_read, (4 * 3 * 8 * 8 + 8 * 3 * 3 * 3 + 8) * f);
  EXPECT_EQ(*conv.bytes_written, 4 * 8 * 8 * 8 * f);

  const InspectedStep& pw = r->steps[1];
  EXPECT_EQ(pw.op, "kiln.Pointwise");
  EXPECT_EQ(pw.fused_ops, (std::vector<std::string>{"Mul", "Sigmoid"}));
  EXPECT_EQ(pw.fused_nodes, (std::vector<std::string>{"mul", "sig"}));
  EXPECT_TRUE(pw.tactic.empty());
  ASSERT_TRUE(pw.bytes_read && pw.bytes_written);
  EXPECT_EQ(*pw.bytes_read, 4 * 8 * 8 * 8 * f);  // the scalar 2 lives in the kernel
  EXPECT_EQ(*pw.bytes_written, 4 * 8 * 8 * 8 * f);
#ifdef KILN_HAS_CUDA
  EXPECT_EQ(pw.kernel.rfind("generated: ", 0), 0u) << pw.kernel;
  EXPECT_NE(pw.detail.find("cubin"), std::string::npos) << pw.detail;
#endif
  EXPECT_EQ(r->bytes_read, *conv.bytes_read + *pw.bytes_read);
  EXPECT_EQ(r->bytes_written, *conv.bytes_written + *pw.bytes_written);

  // Another opt shape changes the bytes.
  cfg.profiles["x"].opt = {2, 3, 8, 8};
  auto r2 = InspectPlan(PlanOf(*m, cfg));
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  ASSERT_EQ(r2->steps.size(), 2u);
  EXPECT_EQ(*r2->steps[1].bytes_written, 2 * 8 * 8 * 8 * f);
  EXPECT_TRUE(r2->steps[0].tactic.empty());

  // The JSON carries the same steps.
  auto j = nlohmann::json::parse(PlanInspectionJson(*r));
  ASSERT_EQ(j["steps"].size(), 2u);
  EXPECT_EQ(j["steps"][1]["fused_nodes"], nlohmann::json({"mul", "sig"}));
  EXPECT_EQ(j["steps"][0]["tactic"]["key"], key);
  EXPECT_EQ(j["steps"][0]["bytes_written"], 4 * 8 * 8 * 8 * f);
}

TEST(PlanInspect, DynamicInputWithoutAProfileIsNoted) {
  std::unique_ptr<Model> m = ConvChain();
  BuildOnCpu(*m, BuildOptions{});
  auto r = InspectPlan(PlanOf(*m, EngineConfig{}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->notes.size(), 1u);
  EXPECT_NE(r->notes[0].find("'x'"), std::string::npos) << r->notes[0];
  EXPECT_EQ(*r->steps[1].bytes_written, 8 * 8 * 8 * static_cast<int64_t>(sizeof(float)));
}

// The shape program's verdict: whether the lean runtime runs the plan alone.
TEST(PlanInspect, SaysWhetherTheLeanRuntimeRunsThePlan) {
  std::unique_ptr<Model> m = ConvChain();
  BuildOnCpu(*m, BuildOptions{});
  PlanFile plan = PlanOf(*m, EngineConfig{});
  plan.sections["shapes"] = ShapeProgram::Compile(*m).Encode();
  auto r = InspectPlan(plan);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->shape_program.rfind("complete: the lean runtime runs it", 0), 0u) << r->shape_program;
  EXPECT_NE(PlanInspectionText(*r).find("shape program: complete"), std::string::npos);

  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("N"), Dim::Known(4)}));
  b.Output(b.Op("NonZero", "nz", {x}));
  std::unique_ptr<Model> dynamic = b.Done();
  ASSERT_TRUE(InferShapes(*dynamic).ok());
  PlanFile nz = PlanOf(*dynamic, EngineConfig{});
  nz.sections["shapes"] = ShapeProgram::Compile(*dynamic).Encode();
  r = InspectPlan(nz);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->shape_program.rfind("incomplete: ", 0), 0u) << r->shape_program;
  EXPECT_NE(r->shape_program.find("kiln::BuilderLoadOptions()"), std::string::npos) << r->shape_program;
  EXPECT_NE(PlanInspectionJson(*r).find("\"shape_program\""), std::string::npos);
}

TEST(PlanInspect, DamagedTacticSectionsAreErrors) {
  std::unique_ptr<Model> m = ConvChain();
  PlanFile plan = PlanOf(*m, EngineConfig{});
  plan.sections["tactic_nodes"] = "[1]";
  auto r = InspectPlan(plan);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("tactic_nodes"), std::string::npos) << r.status().message();
  plan.sections["tactic_nodes"] = "{}";
  plan.sections["tactics"] = "{\"k\": 1}";
  r = InspectPlan(plan);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'tactics' entry 'k'"), std::string::npos) << r.status().message();
}

// The FP16 BERT build: attention is one step, each decomposed LayerNorm one
// generated row kernel whose fused nodes are the exporter's own nodes.
TEST(PlanInspect, BertFp16ShowsAttentionAndRowKernels) {
  auto loaded = LoadModel(fixtures::ZooModel("bert_encoder_opset13"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  std::set<std::string> onnx_names;
  for (const Node* n : (*loaded)->graph->nodes()) onnx_names.insert(n->name);
  ASSERT_TRUE(InferShapes(**loaded).ok());
  BuildOptions opts;
  opts.fp16 = true;
  BuildOnCpu(**loaded, opts);
  EngineConfig cfg;
  cfg.fp16 = true;
  auto r = InspectPlan(PlanOf(**loaded, cfg));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const InspectedStep* attention = StepWithOp(*r, "kiln.Attention");
  ASSERT_NE(attention, nullptr) << PlanInspectionText(*r);
  EXPECT_NE(std::find(attention->fused_ops.begin(), attention->fused_ops.end(), "Softmax"),
            attention->fused_ops.end());
  EXPECT_EQ(attention->precision, "float16");
  int row_kernels = 0;
  size_t fused_nodes = 0;
  for (const InspectedStep& s : r->steps) {
    if (s.op != "kiln.Pointwise") continue;
    EXPECT_FALSE(s.fused_nodes.empty()) << s.node;
    for (const std::string& name : s.fused_nodes) {
      // Nodes the fp16 pass added (its Casts) have new names; the rest are the model's.
      if (onnx_names.count(name)) ++fused_nodes;
    }
    if (s.detail.find("row kernel") != std::string::npos) {
      ++row_kernels;
      EXPECT_NE(std::find(s.fused_ops.begin(), s.fused_ops.end(), "ReduceMean"), s.fused_ops.end()) << s.node;
    }
  }
  EXPECT_GT(row_kernels, 0) << PlanInspectionText(*r);
  EXPECT_GT(fused_nodes, 0u);
  for (const InspectedStep& s : r->steps) EXPECT_TRUE(s.bytes_read.has_value()) << s.node << " " << s.op;
  EXPECT_LT(r->steps.size(), r->num_nodes);
}

TEST(PlanInspect, CliPrintsStepsAndJson) {
  const std::filesystem::path dir = fixtures::TestDir("kiln_inspect_steps");
  std::unique_ptr<Model> m = ConvChain();
  BuildOnCpu(*m, BuildOptions{});
  EngineConfig cfg;
  cfg.profiles["x"] = ShapeRange{{1, 3, 8, 8}, {4, 3, 8, 8}, {8, 3, 8, 8}};
  // A plan found by its magic, whatever the file's name.
  const std::string path = (dir / "model.bin").string();
  ASSERT_TRUE(WritePlanFile(PlanOf(*m, cfg), path).ok());
  auto text = fixtures::RunKiln("inspect '" + path + "'", dir.string());
  EXPECT_EQ(text.rc, 0) << text.out;
  EXPECT_NE(text.out.find("kiln.FusedConv"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("nodes: mul, sig"), std::string::npos) << text.out;
  auto json = fixtures::RunKiln("inspect '" + path + "' --json", dir.string());
  ASSERT_EQ(json.rc, 0) << json.out;
  auto j = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << json.out;
  ASSERT_EQ(j["steps"].size(), 2u);
  EXPECT_EQ(j["steps"][0]["op"], "kiln.FusedConv");
  EXPECT_EQ(j["opt_shapes"]["x"], nlohmann::json({4, 3, 8, 8}));
  auto bad = fixtures::RunKiln("inspect '" + (dir / "missing.plan").string() + "'", dir.string());
  EXPECT_EQ(bad.rc, 1) << bad.out;
  EXPECT_NE(bad.out.find("missing.plan"), std::string::npos) << bad.out;
  std::filesystem::remove_all(dir);
}

// Tactic entries as `kiln inspect PLAN` words them: a cuBLASLt product's ("ALGO_HEX MS"), a cuDNN
// convolution's ("ALGO:MS:WS:MATH;" per candidate), anything else as stored.
TEST(PlanInspect, TacticsAreDescribedByKind) {
  const std::string hex(128, '0');
  EXPECT_EQ(DescribeTactic("lt:68:0:t10:e1:b2:f0|...", hex + " 0.0081"),
            "cuBLASLt, 0.0081 ms (the fastest of the heuristic's first candidates)");
  EXPECT_EQ(DescribeTactic("lt:68:0", "not timed"), "not timed");
  EXPECT_NE(DescribeTactic("conv t0 d:4:3:8:8", "1:0.0125:2048:1;").find("IMPLICIT_PRECOMP_GEMM"),
            std::string::npos);
  EXPECT_EQ(DescribeTactic("conv_graph:float16:x1", "3 0.02"),
            "cuDNN graph engine (plan 3), 0.0200 ms (the fastest timed)");
  EXPECT_EQ(DescribeTactic("conv_graph:float16:x1", "3 0.02 eng4_k2=1"),
            "cuDNN graph engine eng4_k2=1 (plan 3), 0.0200 ms (the fastest timed)");
  EXPECT_EQ(DescribeTactic("conv_graph:float16:x1", "none").rfind("no cuDNN graph engine", 0), 0u);
  EXPECT_EQ(DescribeTactic("conv_graph:float16:x1", "garbled"), "garbled");
  EXPECT_NE(DescribeTactic("conv1x1_small:float16:1024x16x96:b1:z0:a2", "small")
                .find("small 1x1 kernel, few channels or few pixels"),
            std::string::npos);
  EXPECT_EQ(DescribeTactic("conv1x1_small:float16:1024x16x96:b1:z0:a2", "cublaslt").rfind("cuBLASLt", 0), 0u);
  EXPECT_EQ(DescribeTactic("conv_graph:float16:x2:1x1", "graph").rfind("cuDNN graph", 0), 0u);
}

}  // namespace
}  // namespace kiln
