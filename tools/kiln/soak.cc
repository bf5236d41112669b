// `kiln soak M.plan|MODEL.onnx [--backend cuda|cpu] [--shapes ...] [--threads 8] [--iterations 10000]
//  [--long 1000000] [--report-every 100000] [--fp16]`: the runtime's reliability checks, on a built
// engine, in one command (tools/soak.sh runs it on the zoo on the GPU machine):
//   1. references: one context runs one random input per thread (seeds 0..T-1);
//   2. threads: T threads, each with its own context (and stream) on the one engine, run their input
//      N times; every output must be bit-identical to the single-thread reference;
//   3. bad shapes: an input shape outside the profile (and of the wrong rank) must fail with an error
//      naming the input, an Enqueue after it must not crash, and the same context must then run the
//      valid input again, bit-identical;
//   4. long run: L runs on one context, host RSS and device memory printed every K runs; they must
//      stay flat (growth after the first report within 16 MiB host, 4 MiB device), and the output is
//      checked against the reference at every report.
// Exit code 0 when every check holds.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "cli_util.h"
#include "commands.h"
#include "core/shape.h"
#include "engine_inputs.h"
#include "reference/compare.h"
#include "soak_io.h"

namespace kiln::cli {
namespace {

struct SoakFlags {
  std::string model;
  std::string backend = "cuda";
  std::vector<std::string> shapes;
  int threads = 8;
  int iterations = 10000;
  int64_t long_runs = 0;
  int64_t report_every = 100000;
  bool fp16 = false;
  bool prepare_first =
      false;  // every thread's context ready before any runs (tells apart races with Prepare)
};

using Outputs = std::map<std::string, Tensor>;

// "" when `got` is bit-identical to `want`, else the first difference.
std::string FirstDifference(const Outputs& want, const Outputs& got) {
  for (const auto& [name, w] : want) {
    auto it = got.find(name);
    if (it == got.end()) return "output '" + name + "' missing";
    const Tensor& g = it->second;
    if (g.dims() != w.dims()) return "output '" + name + "' has another shape";
    if (w.nbytes() && std::memcmp(g.raw(), w.raw(), w.nbytes()) != 0) {
      const auto* a = static_cast<const unsigned char*>(w.raw());
      const auto* b = static_cast<const unsigned char*>(g.raw());
      size_t i = 0;
      while (a[i] == b[i]) ++i;
      std::string size;  // how far apart, for floating outputs (reduction order or a race)
      if (IsFloatingPoint(w.dtype())) {
        const Comparison c = CompareTensors(w, g, Tolerance{});
        size = fmt::format(" ({} elements beyond 1e-4, max |diff| {:.3g}, rel L2 {:.3g})", c.bad, c.max_abs,
                           c.rel_l2);
      }
      return fmt::format("output '{}' differs from byte {}{} on", name, i, size);
    }
  }
  return "";
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

double MiB(size_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

struct Runner {
  std::unique_ptr<Context> ctx;
  std::unique_ptr<SoakIo> io;
};

Expected<Runner> MakeRunner(const Engine& engine, bool cuda, const Outputs& inputs) {
  Runner r;
  KILN_ASSIGN_OR_RETURN(r.ctx, engine.CreateContext());
  KILN_ASSIGN_OR_RETURN(r.io, SoakIo::Create(cuda));
  KILN_RETURN_IF_ERROR(r.io->Bind(*r.ctx, inputs, engine.Outputs()));
  return r;
}

Status RunOnce(Runner& r, Outputs* out) {
  KILN_RETURN_IF_ERROR(r.io->Run(*r.ctx));
  return r.io->Fetch(out);
}

// Phase 2: T threads with a context each; returns the mismatches and errors seen.
Status ThreadPhase(const Engine& engine, bool cuda, const std::vector<Outputs>& inputs,
                   const std::vector<Outputs>& refs, int iterations, bool prepare_first) {
  const int threads = static_cast<int>(inputs.size());
  std::vector<int64_t> mismatches(inputs.size(), 0);
  std::vector<Status> errors(inputs.size());
  std::vector<std::string> first_diff(inputs.size());
  std::atomic<int> ready{0};
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      auto r = MakeRunner(engine, cuda, inputs[t]);
      ++ready;  // counted whether or not it worked, so no thread waits forever
      if (!r.ok()) {
        errors[t] = r.status();
        return;
      }
      while (prepare_first && ready.load() < threads) std::this_thread::yield();
      Outputs out;
      for (int i = 0; i < iterations; ++i) {
        Status s = RunOnce(*r, &out);
        if (!s.ok()) {
          errors[t] = s.WithPrefix(fmt::format("thread {} run {}", t, i));
          return;
        }
        std::string diff = FirstDifference(refs[t], out);
        if (diff.empty()) continue;
        ++mismatches[t];
        if (first_diff[t].empty()) first_diff[t] = fmt::format("run {}: {}", i, diff);
      }
    });
  }
  for (auto& th : pool) th.join();
  int64_t total = 0;
  std::string per_thread;
  for (int64_t m : mismatches) {
    total += m;
    per_thread += (per_thread.empty() ? "" : " ") + std::to_string(m);
  }
  std::printf("threads: %d x %d runs in %.2f s%s, %lld not bit-identical to the single-thread run\n", threads,
              iterations, Seconds(t0), prepare_first ? " (contexts prepared first)" : "",
              static_cast<long long>(total));
  if (total) std::printf("  by thread: %s\n", per_thread.c_str());
  for (int t = 0; t < threads; ++t) {
    if (!errors[t].ok()) return errors[t].WithPrefix(fmt::format("thread {}", t));
    if (!first_diff[t].empty()) return Internal(fmt::format("thread {}, {}", t, first_diff[t]));
  }
  return Status::Ok();
}

// Phase 3: shapes outside the profile fail cleanly and leave the context usable.
Status BadShapePhase(const Engine& engine, Runner& r, const Outputs& input, const Outputs& ref) {
  const TensorInfo in = engine.Inputs().front();
  std::vector<int64_t> dims = input.at(in.name).dims();
  std::vector<std::vector<int64_t>> bad;
  std::vector<int64_t> wrong_rank = dims;
  wrong_rank.push_back(2);
  bad.push_back(wrong_rank);
  if (!dims.empty()) {
    std::vector<int64_t> too_big = dims;
    const auto profiles = engine.Profiles();
    auto prof = profiles.find(in.name);
    too_big[0] = (prof != profiles.end() && !prof->second.max.empty() ? prof->second.max[0] : dims[0]) + 1;
    bad.push_back(too_big);
  }
  for (const auto& d : bad) {
    Status s = r.ctx->SetInputShape(in.name, d);
    if (s.ok()) return Internal("SetInputShape accepted " + DimsToString(d) + " for '" + in.name + "'");
    if (s.message().find(in.name) == std::string::npos)
      return Internal("the error for a bad shape does not name input '" + in.name + "': " + s.message());
    std::printf("bad shape %s: refused (%s)\n", DimsToString(d).c_str(), s.message().c_str());
    Status after = r.io->Run(*r.ctx);  // must not crash; an error or a run at the last valid shapes
    std::printf("  enqueue after it: %s\n", after.ok() ? "ran" : after.message().c_str());
  }
  KILN_RETURN_IF_ERROR(r.io->Bind(*r.ctx, input, engine.Outputs()).WithPrefix("binding again after bad shapes"));
  Outputs out;
  KILN_RETURN_IF_ERROR(RunOnce(r, &out).WithPrefix("running again after bad shapes"));
  std::string diff = FirstDifference(ref, out);
  if (!diff.empty()) return Internal("after bad shapes, " + diff);
  std::printf("bad shapes: context usable afterwards, output bit-identical\n");
  return Status::Ok();
}

// Phase 4: many runs on one context with flat memory.
Status LongPhase(Runner& r, bool cuda, const Outputs& ref, int64_t runs, int64_t every) {
  every = std::max<int64_t>(1, every);
  MemoryUse first{};
  bool have_first = false;
  Outputs out;
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 1; i <= runs; ++i) {
    KILN_RETURN_IF_ERROR(r.io->Run(*r.ctx).WithPrefix(fmt::format("long run {}", i)));
    if (i % every != 0 && i != runs) continue;
    KILN_RETURN_IF_ERROR(r.io->Fetch(&out));
    std::string diff = FirstDifference(ref, out);
    if (!diff.empty()) return Internal(fmt::format("long run {}: {}", i, diff));
    MemoryUse m = MeasureMemory(cuda);
    std::printf("long run %lld: host RSS %.1f MiB, device used %.1f MiB, %.1f runs/s\n", static_cast<long long>(i),
                MiB(m.host_rss), MiB(m.device_used), static_cast<double>(i) / Seconds(t0));
    std::fflush(stdout);
    if (!have_first) {
      first = m;
      have_first = true;
      continue;
    }
    if (m.host_rss > first.host_rss + (size_t{16} << 20))
      return Internal(fmt::format("host RSS grew from {:.1f} to {:.1f} MiB", MiB(first.host_rss), MiB(m.host_rss)));
    if (m.device_used > first.device_used + (size_t{4} << 20))
      return Internal(fmt::format("device memory grew from {:.1f} to {:.1f} MiB", MiB(first.device_used),
                                  MiB(m.device_used)));
  }
  return Status::Ok();
}

int RunSoak(const SoakFlags& f) {
  const std::string cmd = "soak";
  if (f.backend != "cpu" && f.backend != "cuda")
    return Fail(cmd, "unknown backend '" + f.backend + "' (available: cpu, cuda)");
  if (f.threads < 1 || f.iterations < 0 || f.long_runs < 0)
    return Fail(cmd, "--threads must be at least 1, --iterations and --long at least 0");
  const bool cuda = f.backend == "cuda";
  auto shapes = ParseShapes(f.shapes);
  if (!shapes.ok()) return Fail(cmd, shapes.status().message());
  auto engine = LoadOrBuildEngine(f.model, cuda ? BuildOptions::Backend::kCuda : BuildOptions::Backend::kCpu,
                                  *shapes, f.fp16);
  if (!engine.ok()) return Fail(cmd, engine.status().message());
  const Engine& e = **engine;
  if (e.Inputs().empty()) return Fail(cmd, f.model + ": the engine has no inputs");

  std::vector<Outputs> inputs, refs;
  for (int t = 0; t < f.threads; ++t) inputs.push_back(RandomEngineInputs(e, *shapes, static_cast<uint32_t>(t)));
  auto main = MakeRunner(e, cuda, inputs[0]);
  if (!main.ok()) return Fail(cmd, main.status().message());
  for (int t = 0; t < f.threads; ++t) {
    Status s = main->io->Bind(*main->ctx, inputs[t], e.Outputs());
    Outputs out;
    if (s.ok()) s = RunOnce(*main, &out);
    if (!s.ok()) return Fail(cmd, s.WithPrefix(fmt::format("reference run {}", t)).message());
    refs.push_back(std::move(out));
  }
  std::printf("=== kiln soak: %s (%s) ===\n", f.model.c_str(), f.backend.c_str());
  Status s = ThreadPhase(e, cuda, inputs, refs, f.iterations, f.prepare_first);
  if (s.ok()) s = BadShapePhase(e, *main, inputs[0], refs[0]);
  if (s.ok() && f.long_runs > 0) s = LongPhase(*main, cuda, refs[0], f.long_runs, f.report_every);
  if (!s.ok()) return Fail(cmd, s.message());
  std::printf("soak: all checks passed\n");
  return 0;
}

}  // namespace

Command AddSoakCommand(CLI::App& app) {
  auto f = std::make_shared<SoakFlags>();
  Command c;
  c.app = app.add_subcommand("soak", "Reliability checks: threads, bad shapes, long runs with flat memory");
  c.app->add_option("model", f->model, "Plan file or ONNX model")->required();
  c.app->add_option("--backend", f->backend, "cuda (default) or cpu");
  c.app->add_option("--shapes", f->shapes, "Input shapes: NAME:1x3x224x224,...");
  c.app->add_option("--threads", f->threads, "Threads, each with its own context (default 8)");
  c.app->add_option("--iterations", f->iterations, "Runs per thread (default 10000)");
  c.app->add_option("--long", f->long_runs, "Runs of the long phase on one context (default 0: skipped)");
  c.app->add_option("--report-every", f->report_every, "Print memory use every N long runs (default 100000)");
  c.app->add_flag("--fp16", f->fp16, "When given an ONNX model: build in FP16");
  c.app->add_flag(
      "--prepare-first", f->prepare_first,
      "Prepare every thread's context before any thread runs (a race with Prepare, or with runs?)");
  c.run = [f] { return RunSoak(*f); };
  return c;
}

}  // namespace kiln::cli
