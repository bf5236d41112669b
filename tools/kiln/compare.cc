// `kiln compare MODEL [--backend cuda|cpu] [--reference onnxruntime|cpu] [--reference-model FILE] [--fp16] [--int8|--fp8]
//  [--input NAME=FILE.npy ...|--random] [--seed N] [--shapes ...] [--atol A --rtol R --rel-l2 B] [--bisect]
//  [--json] [--python PY]`: Polygraphy's job, built in. Runs kiln (the CUDA engine, or the CPU reference
// executor) and a reference (onnxruntime, or kiln's CPU reference) on the same inputs and compares every
// output with the project's one criterion (reference/compare.h). --bisect also marks every intermediate
// value as an output on both sides and names the first node, in schedule order, whose outputs are beyond
// the tolerance. Exit code 1 when an output is beyond tolerance (or on an error).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "build/build_passes.h"
#include "build/int8.h"
#include "passes/shape_inference.h"
#include "cli_util.h"
#include "commands.h"
#include "compare_metrics.h"
#include "feeds.h"
#include "ir/clone.h"
#include "onnx/import.h"
#include "onnxruntime_ref.h"
#include "quant_flags.h"
#include "reference/executor.h"
#include "run_cuda.h"

namespace kiln::cli {
namespace {

using nlohmann::json;

struct CompareOptions {
  std::string model;
  std::string reference_model;  // "": the reference runs MODEL too
  std::string backend = "cuda";
  std::string reference;  // "": onnxruntime for --backend cpu, cpu for --backend cuda
  bool fp16 = false;
  bool int8 = false;
  bool as_built = false;  // --as-built: the GPU builder's graph on the CPU reference
  bool no_pointwise_fusion = false;
  bool fp8 = false;
  BuildOptions int8_options;  // --calib, --calib-method, --calib-percentile, the fallback thresholds
  FeedOptions feeds;
  double atol = -1, rtol = -1, rel_l2 = -1;  // < 0: the default
  bool bisect = false;
  bool json = false;
  std::string python;
  std::string save_outputs;  // a folder for kiln's outputs as .npy
};

struct Values {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> skipped;  // name → why it is not compared
};

// Graph outputs; with `bisect` every named tensor a node of the main graph makes first, in schedule order.
std::vector<std::string> ValuesToCompare(const Graph& g, bool bisect) {
  std::vector<std::string> names;
  std::set<std::string> seen;
  auto add = [&](const Value* v) {
    if (!v->name().empty() && seen.insert(v->name()).second) names.push_back(v->name());
  };
  if (bisect) {
    for (const Node* n : g.nodes())
      for (const Value* v : n->outputs())
        if (v->type.kind == ValueKind::kTensor) add(v);
  }
  for (const Value* v : g.outputs) add(v);
  return names;
}

// The values `names` of `model` run by kiln: a copy of the model with them as its outputs.
Expected<Values> RunKiln(const Model& model, const std::vector<std::string>& names, bool cuda, bool fp16,
                         const std::map<std::string, RtValue>& feeds, const std::string& missing_note) {
  std::unique_ptr<Model> copy = CloneModel(model);
  Values out;
  std::vector<std::string> run_names;
  copy->graph->outputs.clear();
  for (const std::string& name : names) {
    Value* v = copy->graph->FindValue(name);
    if (!v) {
      out.skipped[name] = missing_note;
      continue;
    }
    copy->graph->outputs.push_back(v);
    run_names.push_back(name);
  }
  auto results = cuda ? RunOnCuda(nullptr, copy.get(), fp16, feeds) : ReferenceExecutor(*copy).Run(feeds);
  if (!results.ok()) return results.status();
  for (size_t i = 0; i < results->size() && i < run_names.size(); ++i) {
    const RtValue& r = (*results)[i];
    if (r.kind == ValueKind::kTensor)
      out.tensors[run_names[i]] = r.tensor;
    else
      out.skipped[run_names[i]] = "not a tensor (" + r.Describe() + ")";
  }
  return out;
}

// "[1,64,56,56], [64]": the node's input shapes as they ran (or as declared).
std::string InputShapes(const Node& n, const Values& got, const std::map<std::string, RtValue>& feeds) {
  std::string s;
  for (const Value* v : n.inputs()) {
    s += s.empty() ? "" : ", ";
    auto t = got.tensors.find(v ? v->name() : "");
    auto f = feeds.find(v ? v->name() : "");
    if (!v)
      s += "(none)";
    else if (t != got.tensors.end())
      s += t->second.Describe();
    else if (f != feeds.end() && f->second.kind == ValueKind::kTensor)
      s += f->second.tensor.Describe();
    else if (v->data)
      s += v->data->Describe();
    else
      s += v->type.ToString();
  }
  return s;
}

// --int8 / --fp8: integer values (quantized activations) compared as numbers, under the rel-L2
// criterion, so that one int8 rounding step is a small error rather than a mismatch; FP16 values
// (of a quantized FP16 graph) compared as float32.
void FloatsAsFloat32(Values* v) {
  for (auto& [name, t] : v->tensors) {
    if (t.dtype() != DataType::kInt8 && t.dtype() != DataType::kUInt8 && t.dtype() != DataType::kFloat16) continue;
    Tensor f(DataType::kFloat, t.dims());
    for (int64_t i = 0; i < t.numel(); ++i) f.mutable_data<float>()[i] = static_cast<float>(t.ScalarAt(i));
    t = std::move(f);
  }
}

Tolerance ToleranceOf(const CompareOptions& o) {
  Tolerance tol;
  if (o.fp16 && !o.int8 && !o.fp8 && o.atol < 0 && o.rtol < 0)
    return Tolerance::RelL2(o.rel_l2 >= 0 ? o.rel_l2 : 1e-2);
  if ((o.int8 || o.fp8) && o.atol < 0 && o.rtol < 0) return Tolerance::RelL2(o.rel_l2 >= 0 ? o.rel_l2 : 5e-2);
  tol.rtol = o.rtol >= 0 ? o.rtol : 1e-4;
  tol.atol = o.atol >= 0 ? o.atol : 1e-3;
  tol.max_rel_l2 = o.rel_l2;
  return tol;
}

json MetricsJson(const std::string& name, const Tensor& got, const ValueMetrics& m) {
  json j = {{"name", name},         {"type", got.Describe()}, {"ok", m.cmp.ok}, {"max_abs", m.cmp.max_abs},
            {"max_rel", m.max_rel}, {"rel_l2", m.cmp.rel_l2}};
  if (m.classifier) j["top1"] = m.top1, j["top5"] = m.top5, j["rows"] = m.rows;
  if (!m.cmp.ok) j["message"] = m.cmp.message;
  if (!m.vacuous.empty()) j["vacuous"] = m.vacuous;
  return j;
}

int RunCompare(const CompareOptions& o) {
  const std::string cmd = "compare";
  if (o.backend != "cpu" && o.backend != "cuda")
    return Fail(cmd, "unknown backend '" + o.backend + "' (available: cuda, cpu)");
  const std::string reference = !o.reference.empty() ? o.reference
                                : o.backend == "cpu" ? "onnxruntime"
                                                     : "cpu";
  if (reference != "onnxruntime" && reference != "cpu")
    return Fail(cmd, "unknown reference '" + reference + "' (available: onnxruntime, cpu)");
  const bool quantized = o.int8 || o.fp8;
  if (o.as_built && o.backend != "cpu") return Fail(cmd, "--as-built runs with --backend cpu");
  if (o.fp16 && o.backend != "cuda" && !quantized && !o.as_built)
    return Fail(cmd, "--fp16 needs --backend cuda, or --backend cpu with --as-built (the GPU build's graph), "
                     "--int8 or --fp8 (the quantized FP16 graph); the CPU reference alone runs the model as given");
  if (quantized && o.backend != "cpu")
    return Fail(cmd, std::string(o.int8 ? "--int8" : "--fp8") +
                         " runs with --backend cpu only for now (its CUDA kernels are not verified on a GPU yet)");
  if (o.int8 && o.fp8) return Fail(cmd, "--int8 and --fp8 exclude each other");
  const bool cuda = o.backend == "cuda";
  if (cuda) {
    Status gpu = CudaDeviceAvailable();
    if (!gpu.ok()) return Fail(cmd, "--backend cuda: " + gpu.message() + " (use --backend cpu)");
  }
  const std::string python = !o.python.empty() ? o.python
                             : std::getenv("KILN_PYTHON") && *std::getenv("KILN_PYTHON")
                                 ? std::getenv("KILN_PYTHON")
                                 : "python3";
  const std::string ref_path = o.reference_model.empty() ? o.model : o.reference_model;
  if (!cuda && reference == "cpu" && o.reference_model.empty())
    Warn(cmd,
         "kiln cpu against kiln cpu on the same model compares the executor with itself "
         "(give --reference-model or --reference onnxruntime)");

  if (o.model.size() > 5 && o.model.compare(o.model.size() - 5, 5, ".plan") == 0)
    return Fail(cmd, o.model + ": give the ONNX model; the reference cannot run a plan file");
  auto model = LoadModel(o.model);
  if (!model.ok()) return Fail(cmd, model.status().message());
  if (!(*model)->graph) return Fail(cmd, o.model + ": model has no graph");
  const Graph& g = *(*model)->graph;
  auto feeds = MakeFeeds(g, o.feeds);
  if (!feeds.ok()) return Fail(cmd, feeds.status().message());
  const std::vector<std::string> names = ValuesToCompare(g, o.bisect);

  // --int8 / --fp8: the graph a quantized build runs (QDQ folded; a float model calibrated and
  // quantized; with --fp16 the FP16 pass too), on the CPU reference.
  std::unique_ptr<Model> int8_model;
  const std::string qflag = o.int8 ? "--int8" : "--fp8";
  // The build's options: the quantization flags (calibration, fallback thresholds; unused without
  // --int8/--fp8), the precision, the generated kernels.
  BuildOptions bo = o.int8_options;
  bo.int8 = o.int8;
  bo.fp8 = o.fp8;
  bo.fp16 = o.fp16;
  bo.fuse_pointwise = !o.no_pointwise_fusion;
  // Bisecting the INT8 graph compares every intermediate value: the layers' ReLU and requantization stay
  // separate ops (the float values they would absorb are what the reference has).
  if (o.bisect && !o.as_built) bo.int8_epilogues = false;
  if (quantized && !o.as_built) {
    int8_model = CloneModel(**model);
    std::vector<std::string> report, notes;
    Status st = PrepareQuantizedGraph(*int8_model, bo, &report, &notes);
    if (!st.ok()) return Fail(cmd, qflag + ": " + st.message());
    for (const std::string& n : notes) Warn(cmd, n);
    if (!o.json)
      for (const std::string& r : report) std::cout << "precision: " << r << "\n";
  }
  // --as-built: the graph `kiln build` makes (passes, fusion, generated-kernel
  // groups, FP16 with its FP32 islands; with --int8/--fp8 the quantized layers
  // and their fused epilogues), run on the CPU reference.
  if (o.as_built) {
    int8_model = CloneModel(**model);
    std::vector<std::string> notes, precision;
    Status st = InferShapes(*int8_model);
    if (st.ok()) st = RunBuildPasses(*int8_model, bo, &notes, &precision);
    if (!st.ok()) return Fail(cmd, "--as-built: " + st.message());
    for (const std::string& n : notes) Warn(cmd, n);
    if (!o.json && quantized)
      for (const std::string& r : precision) std::cout << "precision: " << r << "\n";
    if (!o.json)
      std::cout << "as built: " << int8_model->graph->num_nodes() << " nodes (the model has " << g.num_nodes()
                << ")" << (quantized ? "" : ", " + std::to_string(precision.size()) + " kept FP32") << "\n";
  }
  auto got = RunKiln(int8_model ? *int8_model : **model, names, cuda, o.fp16 && cuda, *feeds,
                     quantized    ? "not a value of the quantized graph (folded or simplified away)"
                     : o.as_built ? "not a value of the built graph (fused or simplified away)"
                                  : "");
  if (!got.ok()) return Fail(cmd, "kiln " + o.backend + ": " + got.status().message());
  if (quantized || o.as_built) FloatsAsFloat32(&*got);
  if (!o.save_outputs.empty()) {  // the graph outputs kiln computed, as Polygraphy's --save-outputs
    std::error_code ec;
    std::filesystem::create_directories(o.save_outputs, ec);
    if (ec) return Fail(cmd, "--save-outputs " + o.save_outputs + ": " + ec.message());
    for (const Value* v : g.outputs) {
      auto k = got->tensors.find(v->name());
      if (k == got->tensors.end()) continue;
      std::string note;
      Status st = WriteOutputNpy(o.save_outputs, v->name(), k->second, &note);
      if (!st.ok()) return Fail(cmd, "--save-outputs: output '" + v->name() + "': " + st.message());
      if (!note.empty()) std::cout << "--save-outputs: " << v->name() << ": " << note << "\n";
    }
  }
  Values ref;
  if (reference == "onnxruntime") {
    auto r = RunOnnxruntime(python, ref_path, names, *feeds);
    if (!r.ok()) return Fail(cmd, r.status().message());
    ref.tensors = std::move(r->values);
    ref.skipped = std::move(r->skipped);
    if (quantized) FloatsAsFloat32(&ref);
  } else {
    auto ref_model = LoadModel(ref_path);
    if (!ref_model.ok()) return Fail(cmd, ref_model.status().message());
    auto r = RunKiln(**ref_model, names, false, false, *feeds, "not a value of the reference model");
    if (!r.ok()) return Fail(cmd, "kiln cpu (reference): " + r.status().message());
    ref = std::move(*r);
  }

  const Tolerance tol = ToleranceOf(o);
  const std::string who = "kiln " + o.backend + (o.as_built ? " as built" : "") + (o.fp16 ? " fp16" : "") +
                          (o.int8 ? " int8" : "") + (o.fp8 ? " fp8" : "") + " vs " +
                          (reference == "cpu" ? "kiln cpu" : reference) + " (" + ref_path + ")";
  json report = {{"model", o.model},       {"kiln", o.backend},           {"fp16", o.fp16}, {"int8", o.int8}, {"fp8", o.fp8}, {"as_built", o.as_built},
                 {"reference", reference}, {"reference_model", ref_path}, {"tolerance", tol.ToString()}};
  if (!o.json) std::cout << o.model << ": " << who << ", tolerance " << tol.ToString() << "\n";

  int beyond = 0;
  const bool reduced = o.fp16 || quantized;  // a run below FP32 (RangeNote)
  json outputs = json::array();
  for (const Value* v : g.outputs) {
    const std::string& name = v->name();
    auto k = got->tensors.find(name);
    auto r = ref.tensors.find(name);
    if (k == got->tensors.end() || r == ref.tensors.end()) {
      std::string why = k == got->tensors.end() ? got->skipped[name] : ref.skipped[name];
      return Fail(cmd, "output '" + name + "' cannot be compared: " + why);
    }
    ValueMetrics m = MeasureValue(r->second, k->second, tol);
    beyond += !m.cmp.ok;
    outputs.push_back(MetricsJson(name, k->second, m));
    const std::string range = reduced ? RangeNote(m) : "";
    if (!range.empty()) outputs.back()["note"] = range;
    if (o.json) continue;
    std::cout << fmt::format("  {} {}: {}  {}", name, k->second.Describe(), FormatMetrics(m),
                             m.cmp.ok ? "ok" : "BEYOND TOLERANCE: " + m.cmp.message)
              << (m.vacuous.empty() ? "" : "  (note: this check could not fail: " + m.vacuous + ")") << "\n";
    if (!range.empty()) std::cout << "    note: " << range << "\n";
  }
  report["outputs"] = outputs;

  if (o.bisect) {
    json bisect = {{"compared", 0}, {"first", nullptr}};
    json skipped = json::array();
    int compared = 0;
    for (const Node* n : g.nodes()) {
      for (const Value* v : n->outputs()) {
        auto k = got->tensors.find(v->name());
        auto r = ref.tensors.find(v->name());
        if (k == got->tensors.end() || r == ref.tensors.end()) {
          if (!v->name().empty())
            skipped.push_back(
                {{"value", v->name()},
                 {"why", k == got->tensors.end() ? got->skipped[v->name()] : ref.skipped[v->name()]}});
          continue;
        }
        ++compared;
        ValueMetrics m = MeasureValue(r->second, k->second, tol);
        if (m.cmp.ok || !bisect["first"].is_null()) continue;
        json first = MetricsJson(v->name(), k->second, m);
        first["node"] = n->name;
        first["op"] = n->op_type;
        first["inputs"] = InputShapes(*n, *got, *feeds);
        bisect["first"] = first;
      }
      if (!bisect["first"].is_null()) break;
    }
    bisect["compared"] = compared;
    bisect["skipped"] = skipped;
    report["bisect"] = bisect;
    if (!o.json) {
      for (const auto& s : skipped)
        std::cout << "  note: skipped '" << s["value"].get<std::string>()
                  << "': " << s["why"].get<std::string>() << "\n";
      const json& f = bisect["first"];
      if (f.is_null())
        std::cout << fmt::format("bisect: all {} values compared are within tolerance\n", compared);
      else
        std::cout << fmt::format(
            "bisect: first node beyond tolerance: node '{}' ({}), inputs {}: output '{}' {}: {}\n",
            f["node"].get<std::string>(), f["op"].get<std::string>(), f["inputs"].get<std::string>(),
            f["name"].get<std::string>(), f["type"].get<std::string>(), f["message"].get<std::string>());
    }
  }
  report["ok"] = beyond == 0;
  if (o.json)
    std::cout << report.dump(2) << "\n";
  else if (beyond)
    std::cout << fmt::format("FAIL: {} of {} outputs beyond tolerance\n", beyond, g.outputs.size());
  else
    std::cout << fmt::format("PASS: {} outputs within tolerance\n", g.outputs.size());
  return beyond ? 1 : 0;
}

}  // namespace

Command AddCompareCommand(CLI::App& app) {
  auto o = std::make_shared<CompareOptions>();
  Command c;
  c.app = app.add_subcommand("compare",
                             "Compare kiln's outputs with a reference's; --bisect finds the first bad node");
  c.app->add_option("model", o->model, "ONNX model file")->required();
  c.app
      ->add_option("--backend", o->backend,
                   "kiln under test: cuda (the GPU engine) or cpu (the reference executor)")
      ->capture_default_str();
  c.app->add_option(
      "--reference", o->reference,
      "onnxruntime (default with --backend cpu) or cpu (kiln's CPU reference; default with cuda)");
  c.app->add_option(
      "--reference-model", o->reference_model,
      "Run the reference on this model instead (e.g. the original of an edited or simplified model); "
      "values are matched by name");
  c.app->add_flag("--fp16", o->fp16,
                  "With --backend cuda (or cpu --as-built): build in FP16 (default tolerance: rel L2 1e-2)");
  c.app->add_flag(
      "--as-built", o->as_built,
      "With --backend cpu: run the graph `kiln build` makes (its fusions, generated-kernel groups, "
      "with --fp16 FP16 with FP32 islands, with --int8/--fp8 the quantized layers) on the CPU "
      "reference: the builder checked without a GPU");
  c.app->add_flag("--no-pointwise-fusion", o->no_pointwise_fusion, "With --as-built: as `kiln build --no-pointwise-fusion`");
  c.app->add_flag("--int8", o->int8,
                  "With --backend cpu: run the INT8 graph (QDQ folded into kiln.QConv/QMatMul; a float model "
                  "calibrated with --calib and quantized) on the CPU reference (default tolerance: rel L2 5e-2)");
  c.app->add_flag("--fp8", o->fp8,
                  "With --backend cpu: run the FP8 graph (MatMul/Gemm with constant weights as kiln.F8MatMul, "
                  "E4M3 emulated; activation scales from --calib DIR or random inputs) on the CPU reference "
                  "(default tolerance: rel L2 5e-2). With --int8 or --fp8, --fp16 runs the FP16 form of that graph");
  AddQuantizationFlags(c.app, &o->int8_options);
  AddFeedFlags(c.app, &o->feeds);
  c.app->add_option("--atol", o->atol,
                    "Per element: |kiln - ref| <= rtol*|ref| + atol*rms(ref) (default 1e-3)");
  c.app->add_option("--rtol", o->rtol, "See --atol (default 1e-4)");
  c.app->add_option("--rel-l2", o->rel_l2, "Also bound ||kiln - ref|| / ||ref||");
  c.app->add_flag(
      "--bisect", o->bisect,
      "Mark every intermediate value as an output (both sides); name the first node beyond tolerance");
  c.app->add_flag("--json", o->json, "Print the report as JSON");
  c.app->add_option("--save-outputs", o->save_outputs, "Also write kiln's outputs to DIR as NAME.npy");
  c.app->add_option("--python", o->python, "Python with onnxruntime (default: $KILN_PYTHON, else python3)");
  c.run = [o] { return RunCompare(*o); };
  return c;
}

}  // namespace kiln::cli
