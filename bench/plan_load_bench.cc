// Plan load time (issue #12: <= 50 ms for ResNet-50, CUDA context excluded):
// the host part of Engine::Load (map the file, checksum, decode the IR, infer
// shapes), measured on a CPU-backend plan, whose load is that host part.
// The GPU plan adds the weight upload. Not a test.
//   cmake --build build --target kiln_plan_load_bench
//   build/kiln_plan_load_bench --model build/zoo/resnet50.onnx
#include <benchmark/benchmark.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "kiln/engine.h"

namespace kiln {
namespace {

std::string g_model = "build/zoo/resnet50.onnx";

void BM_PlanLoad(benchmark::State& state) {
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
    auto loaded = Engine::Load(path);
    if (!loaded.ok()) state.SkipWithError(loaded.status().ToString().c_str());
    benchmark::DoNotOptimize(loaded);
  }
  std::remove(path.c_str());
}
BENCHMARK(BM_PlanLoad)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--model") kiln::g_model = argv[i + 1];
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
