// `kiln check MODEL`: validates a model and lists what kiln cannot run; the
// checking is the library's (src/report/check.h), this prints it.
#include "report/check.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "cli_util.h"
#include "commands.h"
#include "quant_flags.h"

namespace kiln::cli {

int CheckCommand(const CheckArgs& args) {
  CheckOptions options;
  options.shapes = args.shapes;
  options.backend = args.backend;
  options.build = args.quant;
  options.build.fp16 = args.fp16;
  options.build.fp32_islands = !args.no_fp32_islands;
  options.build.fuse_pointwise = !args.no_pointwise_fusion;
  options.build.stem_gemm = args.stem_gemm;
  options.build.im2col_conv = args.im2col_conv;
  options.build.calib_inputs = args.calib_inputs;
  options.build.int8 = args.int8;
  options.build.fp8 = args.fp8;
  options.save_built = args.save_built;
  if (!args.save_built.empty() && args.backend != "cuda")
    return Fail("check", "--save-built writes the GPU builder's graph: add --backend cuda");
  auto checked = CheckModelFile(args.model, options);
  if (!checked.ok()) return Fail("check", checked.status().message());
  const CheckReport& r = *checked;
  for (const Issue& i : r.issues) std::printf("%s\n", i.ToString().c_str());
  const size_t errors = r.Count(Issue::Severity::kError), unsupported = r.Count(Issue::Severity::kUnsupported),
               warnings = r.Count(Issue::Severity::kWarning);
  if (r.gpu.checked) {
    if (!r.gpu.error.empty()) {
      Fail("check", r.gpu.error);
      return 1;
    }
    for (const std::string& p : r.gpu.precision) std::printf("precision: %s\n", p.c_str());
    for (const auto& g : r.gpu.gaps) std::printf("cuda: %s\n", g.reason.c_str());
    for (const std::string& n : r.gpu.sync_points)
      std::printf("cuda: sync point after %s: its output shape depends on input values\n", n.c_str());
    std::vector<std::pair<size_t, std::string>> ops;
    for (const auto& [op, n] : r.gpu.op_counts) ops.push_back({n, op});
    std::sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;  // most frequent first
    });
    std::string line;
    for (const auto& [n, op] : ops) line += (line.empty() ? "" : ", ") + op + " " + std::to_string(n);
    std::printf("cuda: ops after the builder's passes: %s\n", line.c_str());
    std::printf("%s: %zu of %zu nodes after the builder's passes cannot run on the GPU%s%s\n", args.model.c_str(),
                r.gpu.gaps.size(), r.gpu.num_nodes, args.fp16 ? " (fp16)" : "",
                r.gpu.probed ? "" : " (declared capabilities only: this kiln has no CUDA backend)");
    if (!args.save_built.empty()) std::printf("built graph written to %s\n", args.save_built.c_str());
    if (!r.gpu.gaps.empty()) return 1;
  } else if (!args.save_built.empty()) {
    Fail("check", "--save-built: nothing written, the model has errors (the builder's passes did not run)");
    return 1;
  }
  auto count = [](size_t n, const char* what) {
    return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
  };
  std::string versions = "IR " + std::to_string(r.ir_version) + ", opset " + std::to_string(r.opset) + ", " +
                         count(r.num_nodes, "node");
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
  c.app->add_flag("--stem-gemm,!--no-stem-gemm", args->stem_gemm,
                  "With --backend cuda: as kiln build --stem-gemm (default) / --no-stem-gemm");
  c.app->add_flag("--im2col-conv,!--no-im2col-conv", args->im2col_conv,
                  "With --backend cuda: as kiln build --im2col-conv / --no-im2col-conv (default)");
  c.app->add_option("--calib-inputs", args->calib_inputs, "With --fp16: as kiln build --calib-inputs");
  c.app->add_flag("--int8", args->int8, "With --backend cuda: as kiln build --int8 (needs --calib)");
  c.app->add_flag("--fp8", args->fp8, "With --backend cuda: as kiln build --fp8 (--calib DIR optional)");
  // --calib, --calib-method, the fallback thresholds: as kiln build.
  AddQuantizationFlags(c.app, &args->quant);
  c.app->add_option("--save-built", args->save_built,
                    "With --backend cuda: write the graph the builder makes (fused kiln ops, generated-kernel "
                    "groups, layout and precision casts) as ONNX, for Netron or kiln run/compare --backend cpu");
  c.run = [args, no_shapes] {
    args->shapes = !*no_shapes;
    return CheckCommand(*args);
  };
  return c;
}

}  // namespace kiln::cli
