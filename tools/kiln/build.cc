// `kiln build MODEL.onnx --saveEngine M.plan [--fp16] [--tf32] [--minShapes/--optShapes/--maxShapes ...]
//  [--memPoolSize workspace:1024M] [--timingCacheFile F]` — builds a CUDA plan and prints the build report.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "cli_util.h"
#include "commands.h"
#include "gpu_flags.h"
#include "quant_flags.h"
#include "kiln/engine.h"
#include "plan/plan_config.h"

namespace kiln::cli {
namespace {

struct BuildFlags {
  std::string model, save;
  bool fp16 = false, tf32 = false, no_fp32_islands = false, no_pointwise_fusion = false;
  std::vector<std::string> min, opt, max;
  std::string mem_pool, calib_inputs;
  bool int8 = false, fp8 = false;
  BuildOptions quant;  // calibration, the fallback thresholds and --calib-cache (quant_flags.h)
  std::string layout = "auto";
  std::string conv_tactics = "auto";
  bool stem_gemm = true;
  bool cudnn_eng4 = false;
  bool im2col_conv = false;
  std::string timing_cache;
};

int RunBuild(const BuildFlags& f) {
  const std::string cmd = "build";
#ifndef KILN_HAS_CUDA
  return Fail(cmd, "this kiln was built without the CUDA backend (nvcc was not found at configure time)");
#else
  BuildOptions opt = f.quant;
  opt.fp16 = f.fp16;
  opt.tf32 = f.tf32;
  opt.fp32_islands = !f.no_fp32_islands;
  opt.fuse_pointwise = !f.no_pointwise_fusion;
  opt.calib_inputs = f.calib_inputs;
  opt.int8 = f.int8;
  opt.fp8 = f.fp8;
  opt.timing_cache_file = f.timing_cache;
  std::error_code ec;
  if (f.int8 && opt.calib_cache.empty() && !f.save.empty() && std::filesystem::is_directory(opt.calib, ec))
    opt.calib_cache = f.save + ".calib";
  opt.layout = f.layout == "nhwc" ? BuildOptions::Layout::kNhwc
               : f.layout == "nchw" ? BuildOptions::Layout::kNchw
                                    : BuildOptions::Layout::kAuto;
  opt.stem_gemm = f.stem_gemm;
  opt.cudnn_eng4 = f.cudnn_eng4;
  opt.im2col_conv = f.im2col_conv;
  if (std::optional<BuildOptions::ConvTactics> t = ConvTacticsFromName(f.conv_tactics))  // CLI checked the name
    opt.conv_tactics = *t;
  auto profiles = ParseProfiles(f.min, f.opt, f.max);
  if (!profiles.ok()) return Fail(cmd, profiles.status().message());
  opt.profiles = *profiles;
  if (!f.mem_pool.empty()) {
    auto ws = ParseMemPoolSize(f.mem_pool);
    if (!ws.ok()) return Fail(cmd, ws.status().message());
    opt.workspace_bytes = *ws;
  }
  BuildReport rep;
  auto engine = Engine::Build(f.model, opt, &rep);
  if (!engine.ok()) return Fail(cmd, engine.status().message());
  for (const std::string& n : rep.notes) Warn(cmd, n);
  if ((f.int8 || f.fp8) && !rep.precision.empty()) {
    std::printf("precision report (%s%s):\n", f.int8 ? "INT8" : "FP8", f.fp16 ? ", layers left float run FP16" : "");
    for (const std::string& p : rep.precision) std::printf("  %s\n", p.c_str());
  } else if (f.fp16 && !rep.precision.empty()) {
    std::printf("precision report: %zu node(s) stay FP32\n", rep.precision.size());
    for (const std::string& p : rep.precision) std::printf("  %s\n", p.c_str());
  }
  if (!f.save.empty()) {
    Status s = (*engine)->Save(f.save);
    if (!s.ok()) return Fail(cmd, s.message());
  }
  std::printf("built %s in %.2f s: %s\n", f.model.c_str(), rep.build_seconds, (*engine)->Describe().c_str());
  std::printf("  nodes %zu, GPU kernels %zu\n", rep.num_nodes, rep.num_kernels);
  std::printf("  weights %s, activation arena %s (at max shapes), peak %s\n", HumanBytes(rep.weight_bytes).c_str(),
              HumanBytes(rep.activation_bytes).c_str(), HumanBytes(rep.peak_bytes).c_str());
  for (const auto& [name, r] : (*engine)->Profiles())
    std::printf("  profile %s: min %s opt %s max %s\n", name.c_str(), DimsToString(r.min).c_str(),
                DimsToString(r.opt).c_str(), DimsToString(r.max).c_str());
  if (!f.save.empty()) std::printf("  saved %s\n", f.save.c_str());
  return 0;
#endif
}

}  // namespace

Command AddBuildCommand(CLI::App& app) {
  auto f = std::make_shared<BuildFlags>();
  Command c;
  c.app = app.add_subcommand("build", "Build a CUDA plan from an ONNX model");
  c.app->add_option("model", f->model, "ONNX model")->required();
  c.app->add_option("--saveEngine", f->save, "Write the plan to this file");
  c.app->add_flag("--fp16", f->fp16, "FP16 storage and tensor cores (FP32 accumulation)");
  c.app->add_flag("--no-fp32-islands", f->no_fp32_islands,
                  "With --fp16: convert overflow-prone subgraphs (decomposed norms, exponentials) to FP16 too");
  c.app->add_option("--calib-inputs", f->calib_inputs,
                    "With --fp16: .npy inputs (NAME.npy per input, or subdirectories of them); values measured "
                    "beyond FP16's range on the CPU reference stay FP32");
  c.app->add_flag("--no-pointwise-fusion", f->no_pointwise_fusion,
                  "One kernel per elementwise op instead of generated kernels for connected groups");
  c.app->add_flag("--int8", f->int8,
                  "INT8 convolutions and matrix products (implicit quantization; QDQ models are always folded)");
  c.app->add_flag(
      "--fp8", f->fp8,
      "FP8 E4M3 matrix products (MatMul/Gemm with constant weights; cuBLASLt FP8, fast accumulation); "
      "activation scales amax/448 from --calib DIR, or from random inputs without it");
  AddQuantizationFlags(c.app, &f->quant);
  c.app->add_option("--calib-cache", f->quant.calib_cache,
                    "Write the calibration cache here (default with --saveEngine P and --calib DIR: P.calib)");
  c.app->add_flag("--tf32", f->tf32, "Allow TF32 for FP32 matrix products and convolutions");
  c.app->add_option("--minShapes", f->min, "Profile minimum: NAME:1x3x224x224,...");
  c.app->add_option("--optShapes", f->opt, "Profile optimum (kernels are chosen here)");
  c.app->add_option("--maxShapes", f->max, "Profile maximum");
  c.app->add_option("--memPoolSize", f->mem_pool, "Workspace limit, e.g. workspace:1024M");
  c.app->add_option("--layout", f->layout, "Conv/pooling activation layout: auto (NHWC with --fp16), nhwc, nchw")
      ->check(CLI::IsMember({"auto", "nhwc", "nchw"}));
  c.app
      ->add_option(
          "--conv-tactics", f->conv_tactics,
          "FP16 channels-last convolutions: auto (time cuDNN's graph API, with the bias, residual and "
          "activation fused, against the legacy API), graph, legacy, im2col (im2col + one cuBLASLt "
          "product for ungrouped ones wherever it fits)")
      ->check(CLI::IsMember({"auto", "graph", "legacy", "im2col"}));
  c.app->add_flag("--stem-gemm,!--no-stem-gemm", f->stem_gemm,
                  "Convolutions of fewer than 8 input channels (RGB stems) as im2col + one GEMM (default on; "
                  "--no-stem-gemm: cuDNN on the input padded to 8 channels)");
  c.app->add_flag(
      "--im2col-conv,!--no-im2col-conv", f->im2col_conv,
      "With --stem-gemm and --fp16: the window gather and its product as one kernel that never writes "
      "the windows (experimental, default off: slower than the windows written, then one GEMM, so far)");
  c.app->add_flag(
      "--cudnn-eng4", f->cudnn_eng4,
      "Allow cuDNN's eng4 engine in convolution graphs: the fastest INT8 convolutions on Hopper, but wrong "
      "results when several contexts run at once (FP16 and INT8 measured): one context per process only");
  c.app->add_option(
      "--timingCacheFile", f->timing_cache,
      "Timing cache: read before timing (nothing in it is timed again), written back merged after");
  c.run = [f] { return RunBuild(*f); };
  return c;
}

}  // namespace kiln::cli
