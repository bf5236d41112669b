// `kiln bench M.plan|MODEL.onnx [--shapes NAME:dims,...] [--iterations N] [--duration S] [--warmup N]
//  [--json FILE] [--fp16] [--dumpProfile]` — trtexec-like timing: throughput, latency percentiles, enqueue,
// H2D / GPU compute / D2H, and a warning when run-to-run spread is high.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>

#include "cli_util.h"
#include "commands.h"
#include "engine_inputs.h"
#include "kiln/engine.h"
#ifdef KILN_HAS_CUDA
#include "runtime/gpu/host_runner.h"
#endif

namespace kiln::cli {
namespace {

struct BenchFlags {
  std::string model;
  std::vector<std::string> shapes;
  int iterations = 200;
  double duration = 0;
  int warmup = 20;
  std::string json;
  bool fp16 = false;
  bool dump_profile = false;
};

#ifdef KILN_HAS_CUDA
double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))) ;
  return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
}

#endif  // KILN_HAS_CUDA

int RunBench(const BenchFlags& f) {
  const std::string cmd = "bench";
#ifndef KILN_HAS_CUDA
  return Fail(cmd, "this kiln was built without the CUDA backend (nvcc was not found at configure time)");
#else
  auto shapes = ParseShapes(f.shapes);
  if (!shapes.ok()) return Fail(cmd, shapes.status().message());
  auto t0 = std::chrono::steady_clock::now();
  auto engine = LoadOrBuildEngine(f.model, BuildOptions::Backend::kCuda, *shapes, f.fp16);
  if (!engine.ok()) return Fail(cmd, engine.status().message());
  double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto runner = cuda::HostRunner::Create(*engine);
  if (!runner.ok()) return Fail(cmd, runner.status().message());
  std::map<std::string, Tensor> inputs = RandomEngineInputs(**engine, *shapes, 0);
  Status s = (*runner)->SetInputs(inputs);
  if (!s.ok()) return Fail(cmd, s.message());
  for (int i = 0; i < f.warmup; ++i) {
    s = (*runner)->Run();
    if (!s.ok()) return Fail(cmd, s.message());
  }
  std::vector<double> total, compute, h2d, d2h, enqueue;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0;; ++i) {
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (f.duration > 0 ? elapsed >= f.duration : i >= f.iterations) break;
    cuda::RunTiming t;
    s = (*runner)->Run(&t);
    if (!s.ok()) return Fail(cmd, s.message());
    total.push_back(t.total_ms);
    compute.push_back(t.compute_ms);
    h2d.push_back(t.h2d_ms);
    d2h.push_back(t.d2h_ms);
    enqueue.push_back(t.enqueue_us / 1000.0);
  }
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0.0 : s / static_cast<double>(v.size());
  };
  double qps = static_cast<double>(total.size()) / wall;
  std::printf("=== kiln bench: %s (%zu runs, engine ready in %.2f s) ===\n", f.model.c_str(), total.size(), load_s);
  std::printf("Throughput: %.2f qps\n", qps);
  std::printf("Latency (host, H2D+compute+D2H): min %.4f ms, mean %.4f ms, median %.4f ms, p90 %.4f ms, p99 %.4f ms\n",
              Percentile(total, 0), mean(total), Percentile(total, 50), Percentile(total, 90), Percentile(total, 99));
  std::printf("Enqueue time: mean %.4f ms\n", mean(enqueue));
  std::vector<std::string> syncs = (*runner)->SyncPoints();
  std::printf("Sync points: %zu%s", syncs.size(), syncs.empty() ? " (shapes follow from the input shapes)\n" : " (value-dependent shapes; the stream syncs after each)\n");
  for (const std::string& s : syncs) std::printf("  after %s\n", s.c_str());
  std::printf("H2D: mean %.4f ms | GPU compute: min %.4f ms, mean %.4f ms, median %.4f ms, p99 %.4f ms | D2H: mean %.4f ms\n",
              mean(h2d), Percentile(compute, 0), mean(compute), Percentile(compute, 50), Percentile(compute, 99),
              mean(d2h));
  // Every kernel of the profile, in launch order, for --json.
  nlohmann::json kernels = nlohmann::json::array();
  if (f.dump_profile) {
    auto prof = (*runner)->ProfileLayers();
    if (!prof.ok()) return Fail(cmd, prof.status().message());
    for (const auto& [label, ms] : *prof) kernels.push_back({{"kernel", label}, {"ms", ms}});
    std::map<std::string, std::pair<double, int>> by_op;
    double sum = 0;
    for (const auto& [label, ms] : *prof) {
      auto open = label.rfind('(');
      std::string op = open == std::string::npos ? label : label.substr(open + 1, label.size() - open - 2);
      by_op[op].first += ms;
      by_op[op].second += 1;
      sum += ms;
    }
    std::vector<std::pair<double, std::string>> ops;
    for (const auto& [op, v] : by_op) ops.push_back({v.first, op});
    std::sort(ops.rbegin(), ops.rend());
    std::printf(
        "Profile (one run as a CUDA graph, an event around each kernel; %zu kernels, %.3f ms in kernels):\n",
        prof->size(), sum);
    for (const auto& [ms, op] : ops)
      std::printf("  %-24s %4d x  %8.3f ms  %5.1f%%\n", op.c_str(), by_op[op].second, ms, 100.0 * ms / sum);
    std::vector<std::pair<float, std::string>> nodes;
    for (const auto& [label, ms] : *prof) nodes.push_back({ms, label});
    std::sort(nodes.rbegin(), nodes.rend());
    for (size_t i = 0; i < nodes.size() && i < 15; ++i)
      std::printf("  %8.3f ms  %s\n", nodes[i].first, nodes[i].second.c_str());
  }
  double spread = Percentile(compute, 50) > 0 ? Percentile(compute, 99) / Percentile(compute, 50) : 1.0;
  if (spread > 1.2)
    Warn(cmd, "high run-to-run spread: GPU compute p99 is " + std::to_string(spread) +
                  "x the median; results may be unstable (other load on the GPU, clocks)");
  if (!f.json.empty()) {
    nlohmann::json j = {{"model", f.model}, {"runs", total.size()}, {"throughput_qps", qps},
                        {"latency_ms", {{"min", Percentile(total, 0)}, {"mean", mean(total)},
                                        {"median", Percentile(total, 50)}, {"p90", Percentile(total, 90)},
                                        {"p99", Percentile(total, 99)}}},
                        {"enqueue_ms", mean(enqueue)}, {"h2d_ms", mean(h2d)}, {"d2h_ms", mean(d2h)},
                        {"gpu_compute_ms", {{"min", Percentile(compute, 0)}, {"mean", mean(compute)},
                                            {"median", Percentile(compute, 50)}, {"p99", Percentile(compute, 99)}}}};
    if (f.dump_profile) j["profile"] = kernels;
    std::ofstream out(f.json);
    if (!out) return Fail(cmd, "cannot write '" + f.json + "'");
    out << j.dump(2) << "\n";
  }
  return 0;
#endif
}

}  // namespace

Command AddBenchCommand(CLI::App& app) {
  auto f = std::make_shared<BenchFlags>();
  Command c;
  c.app = app.add_subcommand("bench", "Time a plan (or an ONNX model, built first) on the GPU");
  c.app->add_option("model", f->model, "Plan file or ONNX model")->required();
  c.app->add_option("--shapes", f->shapes, "Input shapes: NAME:1x3x224x224,...");
  c.app->add_option("--iterations", f->iterations, "Timed runs (default 200)");
  c.app->add_option("--duration", f->duration, "Run for this many seconds instead of --iterations");
  c.app->add_option("--warmup", f->warmup, "Untimed runs first (default 20)");
  c.app->add_option("--json", f->json, "Write the figures as JSON");
  c.app->add_flag("--fp16", f->fp16, "When given an ONNX model: build in FP16");
  c.app->add_flag(
      "--dumpProfile", f->dump_profile,
      "Print per-kernel GPU times (one CUDA-graph run, an event around each kernel) and per-op totals; "
      "with --json, every kernel's time goes into the JSON's \"profile\"");
  c.run = [f] { return RunBench(*f); };
  return c;
}

}  // namespace kiln::cli
