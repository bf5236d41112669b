// `kiln check MODEL`: validates a model and lists what kiln cannot run.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>
#include <memory>

#include "cli_util.h"
#include "commands.h"
#include "backend/gpu_caps.h"
#include "build/build_passes.h"
#include "ir/verifier.h"
#include "onnx/import.h"
#include "passes/shape_inference.h"
#ifdef KILN_HAS_CUDA
#include "backend/cuda/cuda_op_table.h"
#endif

namespace kiln::cli {
namespace {

// The nodes `kiln build` would reject, found without a GPU: the model goes
// through the builder's passes, then every node is checked against the CUDA
// op table's declared capabilities and (when kiln was built with CUDA) its
// kernel factory. Returns the number of such nodes, or -1 on an error.
int CheckGpuNodes(const CheckArgs& args) {
  auto loaded = LoadModel(args.model);
  if (!loaded.ok()) {
    Fail("check", loaded.status().message());
    return -1;
  }
  Model& model = *loaded.value();
  Status s = InferShapes(model);
  BuildOptions options;
  options.fp16 = args.fp16;
  options.fp32_islands = !args.no_fp32_islands;
  options.fuse_pointwise = !args.no_pointwise_fusion;
  options.calib_inputs = args.calib_inputs;
  options.int8 = args.int8;
  options.calib = args.calib;
  std::vector<std::string> notes, precision;
  if (s.ok()) s = RunBuildPasses(model, options, &notes, &precision);
  if (!s.ok()) {
    Fail("check", "the builder's passes failed: " + s.message());
    return -1;
  }
  GpuProbe probe;
#ifdef KILN_HAS_CUDA
  probe = cuda::FactoryProbe(args.fp16);
#endif
  std::vector<GpuGap> gaps = FindGpuGaps(model, probe);
  for (const std::string& p : precision) std::printf("precision: %s\n", p.c_str());
  for (const GpuGap& g : gaps) std::printf("cuda: %s\n", g.reason.c_str());
  for (const Node* n : FindSyncPoints(*model.graph))
    std::printf("cuda: sync point after %s: its output shape depends on input values\n", n->Label().c_str());
  std::printf("%s: %zu of %zu nodes after the builder's passes cannot run on the GPU%s%s\n", args.model.c_str(),
              gaps.size(), model.graph->num_nodes(), args.fp16 ? " (fp16)" : "",
              probe ? "" : " (declared capabilities only: this kiln has no CUDA backend)");
  return static_cast<int>(gaps.size());
}

}  // namespace

int CheckCommand(const CheckArgs& args) {
  LoadOptions load;
  load.strict = false;  // load what can be loaded so every problem gets listed
  auto loaded = LoadModel(args.model, load);
  if (!loaded.ok()) return Fail("check", loaded.status().message());
  Model& model = *loaded.value();

  std::vector<Issue> issues = CheckModel(model);
  size_t errors = 0, unsupported = 0, warnings = 0;
  for (const Issue& i : issues) {
    if (i.severity == Issue::Severity::kError) ++errors;
  }
  // Shape inference only on a structurally sound graph.
  if (args.shapes && errors == 0) {
    std::vector<Issue> shape_issues = CheckShapes(model);
    issues.insert(issues.end(), shape_issues.begin(), shape_issues.end());
  }
  errors = 0;
  for (const Issue& i : issues) {
    std::printf("%s\n", i.ToString().c_str());
    switch (i.severity) {
      case Issue::Severity::kError: ++errors; break;
      case Issue::Severity::kUnsupported: ++unsupported; break;
      case Issue::Severity::kWarning: ++warnings; break;
    }
  }
  if (args.backend == "cuda" && errors == 0) {
    int gpu = CheckGpuNodes(args);
    if (gpu != 0) return 1;
  }
  size_t nodes = model.graph ? model.graph->num_nodes() : 0;
  auto count = [](size_t n, const char* what) {
    return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
  };
  std::string versions = "IR " + std::to_string(model.ir_version) + ", opset " + std::to_string(model.OpsetOf("")) +
                         ", " + count(nodes, "node");
  if (errors == 0 && unsupported == 0) {
    std::string warn = warnings ? ", " + count(warnings, "warning") : "";
    std::printf("%s: valid (%s, all supported%s)\n", args.model.c_str(), versions.c_str(), warn.c_str());
    return 0;
  }
  std::printf("%s: %s, %s, %s (%s)\n", args.model.c_str(), count(errors, "error").c_str(),
              count(unsupported, "unsupported node").c_str(), count(warnings, "warning").c_str(), versions.c_str());
  return 1;
}

Command AddCheckCommand(CLI::App& app) {
  auto args = std::make_shared<CheckArgs>();
  auto no_shapes = std::make_shared<bool>(false);
  Command c;
  c.app = app.add_subcommand("check", "Validate a model and list the ops kiln cannot run");
  c.app->add_option("model", args->model, "ONNX model file")->required();
  c.app->add_flag("--no-shapes", *no_shapes, "Skip comparing declared shapes with shape inference");
  c.app->add_option("--backend", args->backend, "cpu, or cuda: also list every node the GPU build cannot run (no GPU needed)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  c.app->add_flag("--fp16", args->fp16, "With --backend cuda: check the FP16 build");
  c.app->add_flag("--no-fp32-islands", args->no_fp32_islands, "With --fp16: no FP32 islands (all FP16)");
  c.app->add_flag("--no-pointwise-fusion", args->no_pointwise_fusion,
                  "With --backend cuda: check the build without generated pointwise kernels");
  c.app->add_option("--calib-inputs", args->calib_inputs, "With --fp16: as kiln build --calib-inputs");
  c.app->add_flag("--int8", args->int8, "With --backend cuda: as kiln build --int8 (needs --calib)");
  c.app->add_option("--calib", args->calib, "With --int8: as kiln build --calib (DIR or a calibration cache)");
  c.run = [args, no_shapes] {
    args->shapes = !*no_shapes;
    return CheckCommand(*args);
  };
  return c;
}

}  // namespace kiln::cli
