// CPU reference timings (google benchmark): the brief's 3x3 conv and BERT's
// FFN MatMul. Timings are not tests; these used to sit in the unit tests as
// prints and a 2000 ms bound. Build: cmake --build build --target kiln_cpu_bench.
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "reference/executor.h"

namespace kiln {
namespace {

Tensor RandomTensor(const std::vector<int64_t>& dims, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  Tensor t(DataType::kFloat, dims);
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = u(rng);
  return t;
}

// One node `op` over float inputs `dims`; times the CPU reference.
void RunOneNode(benchmark::State& state, const std::string& op, const std::vector<std::vector<int64_t>>& dims,
                AttributeMap attrs, double flops) {
  Model m;
  m.opsets[""] = 17;
  m.graph = std::make_shared<Graph>();
  Node* n = m.graph->AddNode(op, "n");
  n->attrs = std::move(attrs);
  std::map<std::string, RtValue> feed;
  for (size_t i = 0; i < dims.size(); ++i) {
    Value* v = m.graph->AddValue("x" + std::to_string(i));
    Tensor t = RandomTensor(dims[i], static_cast<uint32_t>(i + 7));
    v->type = TypeInfo::Tensor(DataType::kFloat, t.shape());
    m.graph->inputs.push_back(v);
    n->AddInput(v);
    feed[v->name()] = RtValue::FromTensor(t);
  }
  Value* y = m.graph->AddValue("y");
  n->AddOutput(y);
  m.graph->outputs.push_back(y);
  ReferenceExecutor ex(m);
  for (auto _ : state) {
    auto r = ex.Run(feed);
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(r);
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}

void BM_Conv3x3(benchmark::State& state) {
  AttributeMap attrs{{"pads", Attribute::FromInts({1, 1, 1, 1})}};
  RunOneNode(state, "Conv", {{1, 64, 56, 56}, {64, 64, 3, 3}}, attrs, 2.0 * 64 * 64 * 9 * 56 * 56);
}
BENCHMARK(BM_Conv3x3)->Unit(benchmark::kMillisecond);

void BM_BertFfnMatMul(benchmark::State& state) {
  RunOneNode(state, "MatMul", {{128, 768}, {768, 3072}}, {}, 2.0 * 128 * 768 * 3072);
}
BENCHMARK(BM_BertFfnMatMul)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace kiln

BENCHMARK_MAIN();
