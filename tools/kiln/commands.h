// The kiln CLI's subcommands. Each lives in its own file (tools/kiln/<name>.cc)
// and has one entry point here: Add<Name>Command registers the subcommand and
// its flags on the top-level app and returns a Command whose `run` main.cc
// calls when that subcommand was given on the command line.
//
// Conventions every subcommand follows (see cli_util.h for helpers):
//   - errors: one line "kiln <cmd>: error: <message>" on stderr, exit code 1;
//   - never crash or throw on bad input (missing files, bad flags, bad models).
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace kiln::cli {

struct Command {
  CLI::App* app = nullptr;    // the CLI11 subcommand (options bound to it)
  std::function<int()> run;   // runs the parsed command; returns the exit code
};

// kiln inspect MODEL... [--json] [--ir] [--values] [--shapes NAME:1x3x224x224,...]
Command AddInspectCommand(CLI::App& app);
// kiln run MODEL --backend cpu [--input NAME=FILE.npy]... [--random --seed N] [--shapes ...] --output-dir DIR
Command AddRunCommand(CLI::App& app);
// kiln conformance DIR [--filter SUBSTR] [--json FILE] [--markdown FILE] [--jobs N] [--min-pass-rate X]
Command AddConformanceCommand(CLI::App& app);
// kiln compare MODEL [--backend cuda|cpu] [--reference onnxruntime|cpu] [--fp16] [--input NAME=FILE.npy]...
//   [--random --seed N] [--atol A --rtol R] [--bisect] [--json] (tools/kiln/compare.cc)
Command AddCompareCommand(CLI::App& app);

}  // namespace kiln::cli

// ---- kiln check (tools/kiln/check.cc, owned by the importer) ----
#include <string>

#include "kiln/engine.h"  // BuildOptions

namespace kiln::cli {

// kiln check MODEL [--no-shapes]
// Loads the model leniently, prints every finding of the verifier one per line
// ("error: ...", "unsupported: ...", "warning: ...") on stdout and a summary
// line. Exit code 0 when the model is valid and every op is supported, else 1.
// A model that cannot be loaded at all gives one error line on stderr, exit 1.
struct CheckArgs {
  std::string model;
  bool shapes = true;  // also compare declared shapes with shape inference
  std::string backend = "cpu";  // cuda: also list the nodes the GPU build cannot run
  bool fp16 = false;            // with --backend cuda: as `kiln build --fp16` would
  bool no_fp32_islands = false;  // with --fp16: as `kiln build --no-fp32-islands` would
  bool no_pointwise_fusion = false;  // as `kiln build --no-pointwise-fusion` would
  bool stem_gemm = true;             // as `kiln build --stem-gemm` (default) / --no-stem-gemm
  bool im2col_conv = false;          // as `kiln build --im2col-conv` / --no-im2col-conv (default)
  std::string calib_inputs;      // with --fp16: as `kiln build --calib-inputs DIR` would
  bool int8 = false;             // as `kiln build --int8 --calib DIR|CACHE` would
  bool fp8 = false;              // as `kiln build --fp8 [--calib DIR]` would
  BuildOptions quant;            // --calib and the other quantization flags (quant_flags.h)
  std::string save_built;        // with --backend cuda: the built graph as ONNX
};
int CheckCommand(const CheckArgs& args);
Command AddCheckCommand(CLI::App& app);

}  // namespace kiln::cli

// ---- GPU commands (tools/kiln/build.cc, bench.cc) ----
namespace kiln::cli {

// kiln build MODEL.onnx --saveEngine M.plan [--fp16] [--tf32] [--minShapes/--optShapes/--maxShapes ...]
//   [--memPoolSize workspace:1024M]
Command AddBuildCommand(CLI::App& app);
// kiln bench M.plan|MODEL.onnx [--shapes ...] [--iterations N] [--duration S] [--warmup N] [--json FILE]
Command AddBenchCommand(CLI::App& app);
// kiln refit M.plan NEW.onnx --saveEngine OUT.plan (no GPU needed)
Command AddRefitCommand(CLI::App& app);
// kiln soak M.plan|MODEL.onnx [--backend cuda|cpu] [--threads N] [--iterations N] [--long N] (soak.cc)
Command AddSoakCommand(CLI::App& app);

}  // namespace kiln::cli

// ---- kiln simplify (tools/kiln/simplify.cc) ----
namespace kiln::cli {

// kiln simplify IN.onnx OUT.onnx [--input-shape NAME:1x3x224x224]... [--no-check] [--max-fold-bytes N]
//   [--skip PASS]...
Command AddSimplifyCommand(CLI::App& app);

}  // namespace kiln::cli
