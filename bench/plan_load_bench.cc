// Plan load time (issue #12: <= 50 ms for ResNet-50, CUDA context excluded),
// the host part, on this machine (no GPU needed):
//  - BM_GpuPlanHostLoad: what Engine::Load does with a GPU plan before the
//    weight upload: map the file, checksum, decode the graph and its folded
//    values, decode the shape program. The plan is written as the GPU builder
//    writes it (build passes for FP16, channels-last), without timing tactics.
//  - BM_CpuPlanLoad: a CPU-backend plan's whole load (the same, plus shape
//    inference, which the CPU engine runs).
// The GPU plan adds the weight upload to the device. Not a test.
//   cmake --build build --target kiln_plan_load_bench
//   build/kiln_plan_load_bench --model build/zoo/resnet50.onnx
#include <benchmark/benchmark.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "build/build_passes.h"
#include "kiln/engine.h"
#include "onnx/import.h"
#include "passes/shape_inference.h"
#include "plan/plan_file.h"
#include "plan/plan_graph.h"
#include "runtime/shape_program.h"

namespace kiln {
namespace {

std::string g_model = "build/zoo/resnet50.onnx";

void BM_GpuPlanHostLoad(benchmark::State& state) {
  auto model = LoadModel(g_model);
  if (!model.ok() || !InferShapes(**model).ok()) return state.SkipWithError("cannot load the model");
  BuildOptions o;
  o.fp16 = true;
  std::vector<std::string> notes;
  if (!RunBuildPasses(**model, o, &notes).ok() || !InferShapes(**model).ok())
    return state.SkipWithError("the build passes failed");
  PlanFile plan;
  plan.header.kiln_version = KILN_VERSION;
  plan.header.gpu_name = "NVIDIA H100 80GB HBM3";
  plan.header.compute_capability = 90;
  WritePlanGraph(**model, &plan);
  plan.sections["shapes"] = ShapeProgram::Compile(**model).Encode();
  const std::string path = "/tmp/kiln_gpu_plan_load_bench.plan";
  if (!WritePlanFile(plan, path).ok()) return state.SkipWithError("cannot write the plan");
  for (auto _ : state) {
    auto read = ReadPlanFile(path);
    if (!read.ok()) return state.SkipWithError(read.status().ToString().c_str());
    auto graph = ParsePlanGraph(*read);
    auto program = ShapeProgram::Decode(read->sections.at("shapes"));
    if (!graph.ok() || !program.ok()) return state.SkipWithError("the plan did not decode");
    benchmark::DoNotOptimize(graph);
    benchmark::DoNotOptimize(program);
  }
  std::remove(path.c_str());
}
BENCHMARK(BM_GpuPlanHostLoad)->Unit(benchmark::kMillisecond);

void BM_CpuPlanLoad(benchmark::State& state) {
  BuildOptions o;
  o.backend = BuildOptions::Backend::kCpu;
  auto engine = Engine::Build(g_model, o);
  if (!engine.ok()) {
    state.SkipWithError(engine.status().ToString().c_str());
    return;
  }
  const std::string path = "/tmp/kiln_plan_load_bench.plan";
  if (!(*engine)->Save(path).ok()) {
    state.SkipWithError("cannot save the plan");
    return;
  }
  for (auto _ : state) {
    auto loaded = Engine::Load(path, BuilderLoadOptions());
    if (!loaded.ok()) state.SkipWithError(loaded.status().ToString().c_str());
    benchmark::DoNotOptimize(loaded);
  }
  std::remove(path.c_str());
}
BENCHMARK(BM_CpuPlanLoad)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--model") kiln::g_model = argv[i + 1];
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
