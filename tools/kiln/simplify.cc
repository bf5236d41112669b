// `kiln simplify IN.onnx OUT.onnx [--input-shape NAME:1x3x224x224]... [--no-check]
//  [--max-fold-bytes N] [--skip PASS]...`: onnx-simplifier's job. Loads and
// checks the model (a model `kiln check` rejects fails the same way), runs the
// simplifier pipeline (src/passes/pipeline.h), prints an op-count table
// before/after, verifies the result on the CPU reference against the original
// with the same random inputs, and writes it atomically (a temporary folder
// beside OUT, then rename), so IN is only replaced when IN is OUT and the new
// file was written completely.
#include <fmt/format.h>
#include <stdlib.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "cli_util.h"
#include "commands.h"
#include "ir/clone.h"
#include "ir/verifier.h"
#include "onnx/import.h"
#include "passes/pipeline.h"
#include "passes/shape_inference.h"
#include "reference/equivalence.h"

namespace kiln::cli {
namespace {

namespace fs = std::filesystem;
const char* const kCmd = "simplify";

struct SimplifyArgs {
  std::string in;
  std::string out;
  std::vector<std::string> input_shapes;
  bool no_check = false;
  std::string max_fold_bytes = "64MiB";
  std::vector<std::string> skip;
};

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// "67108864", "64M", "64MiB", "1G", "512K" → bytes.
Expected<int64_t> ParseBytes(const std::string& text) {
  size_t end = 0;
  while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
  if (end == 0 || end > 15)
    return InvalidArgument("bad --max-fold-bytes '" + text + "' (expected e.g. 67108864, 64M)");
  int64_t n = std::stoll(text.substr(0, end));
  std::string unit = text.substr(end);
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char c) { return std::toupper(c); });
  if (unit.size() == 3 && unit[1] == 'I' && unit[2] == 'B') unit = unit.substr(0, 1);
  if (unit.size() == 2 && unit[1] == 'B') unit = unit.substr(0, 1);
  int shift = unit.empty() || unit == "B" ? 0 : unit == "K" ? 10 : unit == "M" ? 20 : unit == "G" ? 30 : -1;
  if (shift < 0)
    return InvalidArgument("bad --max-fold-bytes '" + text + "': unknown unit '" + text.substr(end) + "'");
  if (n > (INT64_MAX >> shift)) return InvalidArgument("bad --max-fold-bytes '" + text + "': too large");
  return n << shift;
}

std::map<std::string, int> OpCounts(const Graph& g) {
  std::map<std::string, int> counts;
  for (const Node* n : g.nodes()) counts[n->domain.empty() ? n->op_type : n->domain + "." + n->op_type]++;
  return counts;
}

int64_t WeightBytes(const Graph& g) {
  int64_t total = 0;
  for (const Value* v : g.initializers)
    if (v->data) total += static_cast<int64_t>(v->data->nbytes());
  return total;
}

void PrintTable(const Graph& before_g, const std::map<std::string, int>& before, int64_t before_bytes,
                const Graph& g) {
  std::map<std::string, int> after = OpCounts(g);
  std::map<std::string, std::pair<int, int>> rows;
  for (const auto& [op, n] : before) rows[op].first = n;
  for (const auto& [op, n] : after) rows[op].second = n;
  size_t width = 12;
  for (const auto& [op, n] : rows) width = std::max(width, op.size());
  auto line = [&](const std::string& a, const std::string& b, const std::string& c) {
    std::printf("  %-*s %12s %12s\n", static_cast<int>(width), a.c_str(), b.c_str(), c.c_str());
  };
  line("op", "before", "after");
  for (const auto& [op, n] : rows) line(op, std::to_string(n.first), std::to_string(n.second));
  line("total nodes", std::to_string(before_g.num_nodes()), std::to_string(g.num_nodes()));
  line("initializers", std::to_string(before_g.initializers.size()), std::to_string(g.initializers.size()));
  line("weights", HumanBytes(static_cast<double>(before_bytes)),
       HumanBytes(static_cast<double>(WeightBytes(g))));
}

// Writes the model to `out` through a temporary folder beside it, then renames
// (the external data file first, then the model).
Status WriteAtomically(const Model& model, const std::string& out, const SaveOptions& options) {
  fs::path target = fs::absolute(out);
  fs::path dir = target.parent_path();
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return IoError("cannot write '" + out + "': folder '" + dir.string() + "' does not exist");
  std::string tmpl = (dir / ".kiln-simplify-XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data()))
    return IoError("cannot write '" + out + "': cannot create a temporary folder in '" + dir.string() + "'");
  fs::path tmp(buf.data());
  fs::path tmp_model = tmp / target.filename();
  fs::path tmp_data = tmp / (target.filename().string() + ".data");
  Status st = SaveModel(model, tmp_model.string(), options);
  if (st.ok() && fs::exists(tmp_data, ec)) {
    fs::rename(tmp_data, dir / tmp_data.filename(), ec);
    if (ec) st = IoError("cannot move the external data file into place: " + ec.message());
  }
  if (st.ok()) {
    fs::rename(tmp_model, target, ec);
    if (ec) st = IoError("cannot move '" + tmp_model.string() + "' to '" + out + "': " + ec.message());
  }
  fs::remove_all(tmp, ec);
  return st;
}

// True when `a` and `b` name the same file (b may not exist yet).
bool SameFile(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (fs::exists(b, ec)) return fs::equivalent(a, b, ec);
  return false;
}

int RunSimplifyCommand(const SimplifyArgs& a) {
  auto start = std::chrono::steady_clock::now();
  auto shapes = ParseShapes(a.input_shapes);
  if (!shapes.ok()) {
    std::string m = shapes.status().message();
    for (size_t p = m.find("--shapes"); p != std::string::npos; p = m.find("--shapes", p))
      m.replace(p, 8, "--input-shape");
    return Fail(kCmd, m);
  }
  auto max_fold = ParseBytes(a.max_fold_bytes);
  if (!max_fold.ok()) return Fail(kCmd, max_fold.status().message());
  std::error_code ec;
  if (!fs::is_regular_file(a.in, ec)) return Fail(kCmd, a.in + ": no such file");
  const bool in_place = SameFile(a.in, a.out);

  // Load leniently and check like `kiln check`, so a bad model fails with its error list.
  LoadOptions load;
  load.strict = false;
  auto phase = std::chrono::steady_clock::now();
  auto loaded = LoadModel(a.in, load);
  double load_s = Seconds(phase);
  phase = std::chrono::steady_clock::now();
  if (!loaded.ok()) return Fail(kCmd, loaded.status().message());
  std::unique_ptr<Model> model = std::move(*loaded);
  std::vector<Issue> issues = CheckModel(*model);
  size_t errors = 0;
  for (const Issue& i : issues) errors += i.severity == Issue::Severity::kError;
  if (errors == 0)
    for (const Issue& i : CheckShapes(*model)) {
      issues.push_back(i);
      errors += i.severity == Issue::Severity::kError;
    }
  if (errors) {
    for (const Issue& i : issues)
      if (i.severity == Issue::Severity::kError) std::fprintf(stderr, "%s\n", i.ToString().c_str());
    return Fail(kCmd, a.in + " is not a valid model (" + std::to_string(errors) + " error" +
                          (errors == 1 ? "" : "s") + "; see 'kiln check " + a.in + "')");
  }
  for (const Issue& i : issues)
    if (i.severity == Issue::Severity::kUnsupported) Warn(kCmd, i.message + " (simplifying around it)");

  // --input-shape fixes input dims in the model (and feeds verification).
  if (!shapes->empty()) {
    ShapeInferenceOptions so;
    so.tolerate_errors = true;
    for (const auto& [name, dims] : *shapes) so.input_shapes[name] = Shape::Of(dims);
    Status st = InferShapes(*model, so);
    if (!st.ok()) return Fail(kCmd, "--input-shape: " + st.message());
  }

  double check_s = Seconds(phase);
  Graph& g = *model->graph;
  std::unique_ptr<Model> original = CloneModel(*model);
  std::map<std::string, int> before = OpCounts(g);
  int64_t before_bytes = WeightBytes(g);

  PassContext ctx;
  ctx.max_fold_bytes = *max_fold;
  ctx.skip.insert(a.skip.begin(), a.skip.end());
  auto t0 = std::chrono::steady_clock::now();
  Status st = RunSimplify(*model, ctx);
  if (!st.ok()) return Fail(kCmd, st.message());
  double simplify_s = Seconds(t0);
  for (const std::string& w : ctx.warnings) Warn(kCmd, w);

  std::printf("kiln simplify: %s -> %s\n", a.in.c_str(), a.out.c_str());
  PrintTable(*original->graph, before, before_bytes, g);
  std::printf("simplified in %.2f s\n", simplify_s);

  double verify_s = 0;
  if (!a.no_check) {
    auto t1 = std::chrono::steady_clock::now();
    EquivalenceOptions eo;
    eo.input_dims = *shapes;
    EquivalenceReport report;
    Status eq = CheckEquivalent(*original, *model, eo, &report);
    if (eq.code() == StatusCode::kUnsupported) {
      Warn(kCmd, "result not verified: " + eq.message());
    } else if (!eq.ok()) {
      return Fail(kCmd,
                  "verification failed: the simplified model differs from the original: " + eq.message() +
                      " (nothing written; rerun with --skip PASS to find the pass, or --no-check)");
    } else if (!report.vacuous.empty()) {
      for (const std::string& v : report.vacuous) Warn(kCmd, "not verified: " + v);
      Warn(kCmd, "result only partly verified: the outputs above are degenerate on random inputs");
    } else {
      verify_s = Seconds(t1);
      std::printf("verified on the CPU reference in %.2f s (same outputs within rtol 1e-4 / atol 1e-5 x RMS)\n",
                  verify_s);
    }
  }

  // External data when the input had it (its weights outweigh its file) or the model is large.
  SaveOptions save;
  uintmax_t in_size = fs::file_size(a.in, ec);
  int64_t weights = WeightBytes(g);
  save.external_data = (!ec && static_cast<int64_t>(in_size) < before_bytes) || weights > (int64_t{1} << 30);
  phase = std::chrono::steady_clock::now();
  st = WriteAtomically(*model, a.out, save);
  double write_s = Seconds(phase);
  if (!st.ok()) return Fail(kCmd, st.message() + (in_place ? " (the input was left unchanged)" : ""));
  std::printf("wrote %s (%zu nodes, was %zu)\n", a.out.c_str(), g.num_nodes(), original->graph->num_nodes());
  std::printf("time: %.2f s (load %.2f, check %.2f, simplify %.2f, verify %.2f, write %.2f)\n",
              Seconds(start), load_s, check_s, simplify_s, verify_s, write_s);
  return 0;
}

}  // namespace

Command AddSimplifyCommand(CLI::App& app) {
  auto args = std::make_shared<SimplifyArgs>();
  Command c;
  c.app = app.add_subcommand(
      "simplify", "Simplify a model (constant folding, shape folding, dead code, fusions) and verify it");
  c.app->add_option("in", args->in, "Input ONNX model")->required();
  c.app->add_option("out", args->out, "Output ONNX model (may be the input)")->required();
  c.app
      ->add_option(
          "--input-shape", args->input_shapes,
          "Fix an input's shape in the model (and use it for verification): NAME:1x3x224x224; repeatable")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  c.app->add_flag("--no-check", args->no_check,
                  "Do not verify the result against the original on the CPU reference");
  c.app->add_option("--max-fold-bytes", args->max_fold_bytes,
                    "Never fold a constant larger than this (bytes; K/M/G suffixes allowed; default 64MiB)");
  std::string names;
  for (const Pass& p : SimplifyPipeline()) names += (names.empty() ? "" : ", ") + std::string(p.name);
  c.app->add_option("--skip", args->skip, "Skip a pass; repeatable. Passes: " + names)
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  c.run = [args] { return RunSimplifyCommand(*args); };
  return c;
}

}  // namespace kiln::cli
