// `kiln run MODEL [--backend cpu|cuda] [--input NAME=FILE.npy]... [--random --seed N]
//  [--shapes NAME:1x3x224x224,...] [--output-dir DIR]`: runs a model on the
// CPU reference executor (or on the GPU, see run_cuda.h) with inputs from .npy
// files or random values, writes each output to DIR/<name>.npy and prints its
// shape, dtype and min/max/mean.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "cli_util.h"
#include "commands.h"
#include "feeds.h"
#include "io/npy.h"
#include "onnx/import.h"
#include "reference/executor.h"
#include "run_cuda.h"

namespace kiln::cli {
namespace {

struct RunOptions {
  std::string model;
  std::string backend = "cpu";
  FeedOptions feeds;
  std::string output_dir;
  bool fp16 = false;
};

int RunRun(const RunOptions& o) {
  const std::string cmd = "run";
  if (o.backend != "cpu" && o.backend != "cuda")
    return Fail(cmd, "unknown backend '" + o.backend + "' (available: cpu, cuda)");
  const bool cuda = o.backend == "cuda";

  // A plan file (cuda only) carries its IR; an ONNX model is loaded here.
  std::unique_ptr<Model> owned;
  CudaModel plan;
  const bool is_plan = cuda && IsPlanFile(o.model);
  if (is_plan) {
    auto p = LoadPlan(o.model);
    if (!p.ok()) return Fail(cmd, p.status().message());
    plan = *p;
  } else {
    auto loaded = LoadModel(o.model);
    if (!loaded.ok()) return Fail(cmd, loaded.status().message());
    owned = std::move(*loaded);
  }
  const Model& model = is_plan ? *plan.model : *owned;
  if (!model.graph) return Fail(cmd, o.model + ": model has no graph");
  const Graph& g = *model.graph;

  auto feeds = MakeFeeds(g, o.feeds);
  if (!feeds.ok()) return Fail(cmd, feeds.status().message());

  auto results = cuda ? RunOnCuda(is_plan ? &plan : nullptr, owned.get(), o.fp16, *feeds)
                      : ReferenceExecutor(model).Run(*feeds);
  if (!results.ok()) return Fail(cmd, results.status().message());

  if (!o.output_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.output_dir, ec);
    if (ec) return Fail(cmd, "cannot create output directory " + o.output_dir + ": " + ec.message());
  }
  for (size_t i = 0; i < results->size() && i < g.outputs.size(); ++i) {
    const std::string& name = g.outputs[i]->name();
    const RtValue& r = (*results)[i];
    std::vector<std::pair<std::string, const Tensor*>> tensors;  // (file stem, tensor)
    std::string head;
    if (r.kind == ValueKind::kTensor) {
      tensors.push_back({name, &r.tensor});
    } else if (r.kind == ValueKind::kSequence ||
               (r.kind == ValueKind::kOptional && r.elem_kind == ValueKind::kSequence)) {
      if (r.kind == ValueKind::kOptional && !r.present) {
        std::cout << name << ": empty optional\n";
        continue;
      }
      std::cout << name << ": sequence of " << r.sequence.size() << " tensors\n";
      for (size_t k = 0; k < r.sequence.size(); ++k)
        tensors.push_back({name + "_" + std::to_string(k), &r.sequence[k]});
    } else if (r.kind == ValueKind::kOptional) {
      if (!r.present) {
        std::cout << name << ": empty optional\n";
        continue;
      }
      tensors.push_back({name, &r.tensor});
    } else {
      std::cout << name << ": " << r.Describe() << " (not written)\n";
      continue;
    }
    for (const auto& [stem, t] : tensors) {
      std::string line =
          fmt::format("{}: {} {}", stem, std::string(DataTypeName(t->dtype())), t->shape().ToString());
      std::string stats = FormatStats(ComputeStats(*t));
      if (!stats.empty()) line += "  " + stats;
      if (!o.output_dir.empty()) {
        std::string note;
        Status st = WriteOutputNpy(o.output_dir, stem, *t, &note);
        if (!st.ok()) return Fail(cmd, "output '" + stem + "': " + st.message());
        if (!note.empty()) line += "  (" + note + ")";
      }
      std::cout << line << "\n";
    }
  }
  return 0;
}

}  // namespace

Command AddRunCommand(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  Command c;
  c.app = app.add_subcommand("run", "Run a model (CPU reference or CUDA) and write its outputs as .npy");
  c.app->add_option("model", o->model, "ONNX model file, or a plan file with --backend cuda")->required();
  c.app
      ->add_option("--backend", o->backend,
                   "cpu (the reference executor) or cuda (plan or ONNX built on the fly)")
      ->capture_default_str();
  c.app->add_flag("--fp16", o->fp16, "With --backend cuda and an ONNX model: build in FP16");
  AddFeedFlags(c.app, &o->feeds);
  c.app->add_option("--output-dir", o->output_dir,
                    "Write each output to DIR/<name>.npy ('/' and ':' become '_')");
  c.run = [o] { return RunRun(*o); };
  return c;
}

}  // namespace kiln::cli
