// `kiln inspect MODEL... [--json] [--ir] [--values] [--shapes NAME:1x3x224x224,...]`:
// inputs/outputs, IR version, opsets, producer, op histogram, parameter count
// and bytes, and the MACs of Conv/ConvTranspose/Gemm/MatMul at the given input
// shapes (symbolic dims default to 1), found by running shape inference.
// --values (with --json) adds every value's inferred type (main graph and
// subgraphs) after shape inference with symbolic dims kept (only --shapes
// bind dims). Several models: one compact JSON document per line with --json.
// The report is the library's (src/report/inspect.h); this prints it.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_util.h"
#include "commands.h"
#include "inspect_plan.h"
#include "onnx/import.h"
#include "passes/shape_inference.h"
#include "plan/plan_config.h"
#include "plan/plan_file.h"
#include "plan/plan_graph.h"
#include "report/inspect.h"

namespace kiln::cli {
namespace {

using nlohmann::json;

struct InspectArgs {
  std::vector<std::string> models;
  bool json = false;
  bool ir = false;
  bool values = false;
  std::vector<std::string> shapes;
  std::string onnx;  // plan → ONNX
  std::string plan;  // ONNX → plan graph sections (no kernels: fuzz seeds, tests)
};

// Inspects one model; *error gets the message when it fails (exit code 1).
int InspectModel(const InspectArgs& o, const std::string& path,
                 const std::map<std::string, std::vector<int64_t>>& shapes, bool compact,
                 std::string* error) {
  InspectOptions options;
  options.shapes = shapes;
  options.ir = o.ir;
  options.values = o.values && o.json;
  auto report = InspectModelFile(path, options);
  if (!report.ok()) {
    *error = report.status().message();
    return 1;
  }
  if (o.json) {
    std::cout << InspectJson(*report).dump(compact ? -1 : 2, ' ', false, json::error_handler_t::replace) << "\n";
    return 0;
  }
  std::cout << InspectText(*report);
  if (o.ir) std::cout << "\n" << report->ir;
  return 0;
}

// --onnx: a plan's optimized graph written back as ONNX (for debugging and
// other tools); --plan: an ONNX model's graph, shapes inferred, in a plan
// container with no GPU parts (seeds for the plan fuzzer, format tests).
int ConvertGraph(const InspectArgs& o) {
  const std::string cmd = "inspect";
  if (o.models.size() != 1) return Fail(cmd, "--onnx and --plan take one model");
  const std::string& path = o.models[0];
  if (!o.onnx.empty()) {
    auto plan = ReadPlanFile(path);
    if (!plan.ok()) return Fail(cmd, plan.status().message());
    auto model = ParsePlanGraph(*plan);
    if (!model.ok()) return Fail(cmd, path + ": " + model.status().message());
    Status s = SaveModel(**model, o.onnx);
    if (!s.ok()) return Fail(cmd, s.message());
    std::printf("wrote the graph of %s to %s\n", path.c_str(), o.onnx.c_str());
    return 0;
  }
  auto model = LoadModel(path);
  if (!model.ok()) return Fail(cmd, model.status().message());
  Status s = InferShapes(**model);
  if (!s.ok()) return Fail(cmd, path + ": " + s.message());
  PlanFile plan;
  plan.header.kiln_version = KILN_VERSION;
  WritePlanGraph(**model, &plan);
  plan.sections["config"] = "{}";
  s = WritePlanFile(plan, o.plan);
  if (!s.ok()) return Fail(cmd, s.message());
  std::printf("wrote the graph of %s to %s\n", path.c_str(), o.plan.c_str());
  return 0;
}

int RunInspect(const InspectArgs& o) {
  const std::string cmd = "inspect";
  if (!o.onnx.empty() || !o.plan.empty()) return ConvertGraph(o);
  if (o.models.size() == 1 && LooksLikePlan(o.models[0])) return InspectPlanFile(o.models[0], o.json);
  auto shapes = ParseShapes(o.shapes);
  if (!shapes.ok()) return Fail(cmd, shapes.status().message());
  if (o.values && !o.json) return Fail(cmd, "--values needs --json");
  const bool several = o.models.size() > 1;
  int rc = 0;
  for (size_t i = 0; i < o.models.size(); ++i) {
    const std::string& path = o.models[i];
    if (several && !o.json && i > 0) std::cout << "\n";
    std::string error;
    if (InspectModel(o, path, *shapes, several, &error) == 0) continue;
    rc = 1;
    Fail(cmd, several && error.find(path) == std::string::npos ? path + ": " + error : error);
    if (several && o.json)
      std::cout << json{{"model", path}, {"error", error}}.dump(-1, ' ', false, json::error_handler_t::replace)
                << "\n";
  }
  std::cout.flush();
  return rc;
}

}  // namespace

Command AddInspectCommand(CLI::App& app) {
  auto o = std::make_shared<InspectArgs>();
  Command c;
  c.app = app.add_subcommand("inspect", "Show a model's inputs, outputs, ops, parameters and MACs");
  c.app
      ->add_option("model", o->models,
                   "ONNX model file(s), or a plan (its kernel steps; --onnx writes its graph)")
      ->required();
  c.app->add_option("--onnx", o->onnx, "With a plan: write its optimized graph as ONNX to this file");
  c.app->add_option("--plan", o->plan, "Write the model's graph (shapes inferred) as a plan without kernels");
  c.app->add_flag("--json", o->json, "Print the report as JSON");
  c.app->add_flag("--ir", o->ir, "Also print the text IR");
  c.app->add_flag("--values", o->values, "With --json: add every value's inferred type (symbolic dims kept)");
  c.app->add_option("--shapes", o->shapes, "Input shapes for the MAC count, e.g. input:1x3x224x224,mask:1x128 "
                                            "(symbolic dims default to 1)")
      ->allow_extra_args(false);
  c.run = [o] { return RunInspect(*o); };
  return c;
}

}  // namespace kiln::cli
