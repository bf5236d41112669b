// `kiln inspect MODEL... [--json] [--ir] [--values] [--shapes NAME:1x3x224x224,...]`:
// inputs/outputs, IR version, opsets, producer, op histogram, parameter count
// and bytes, and the MACs of Conv/ConvTranspose/Gemm/MatMul at the given input
// shapes (symbolic dims default to 1), found by running shape inference.
// --values (with --json) adds every value's inferred type (main graph and
// subgraphs) after shape inference with symbolic dims kept (only --shapes
// bind dims). Several models: one compact JSON document per line with --json.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "backend/gpu_caps.h"
#include "cli_util.h"
#include "commands.h"
#include "inspect_plan.h"
#include "ir/clone.h"
#include "ir/printer.h"
#include "onnx/import.h"
#include "passes/shape_inference.h"
#include "plan/plan_config.h"
#include "plan/plan_file.h"
#include "plan/plan_graph.h"

namespace kiln::cli {
namespace {

using nlohmann::json;

struct InspectOptions {
  std::vector<std::string> models;
  bool json = false;
  bool ir = false;
  bool values = false;
  std::vector<std::string> shapes;
  std::string onnx;  // plan → ONNX
  std::string plan;  // ONNX → plan graph sections (no kernels: fuzz seeds, tests)
};

struct MacReport {
  double total = 0;
  std::map<std::string, double> by_op;
  std::vector<std::string> uncounted;  // nodes whose shapes stayed unknown
  std::map<std::string, std::vector<int64_t>> input_shapes;
  std::string inference_error;  // non-empty when shape inference failed
  std::vector<std::string> sync_points;  // nodes whose output shapes depend on values
};

std::string OpKey(const Node& n) { return n.domain.empty() || n.domain == "ai.onnx" ? n.op_type : n.domain + "." + n.op_type; }

template <class F>
void ForEachNode(const Graph& g, F&& f) {
  for (const Node* n : g.nodes()) {
    f(*n);
    for (const auto& [name, attr] : n->attrs) {
      if (attr.g) ForEachNode(*attr.g, f);
      for (const auto& sg : attr.graphs)
        if (sg) ForEachNode(*sg, f);
    }
  }
}

template <class F>
void ForEachGraph(const Graph& g, F&& f) {
  f(g);
  for (const Node* n : g.nodes())
    for (const auto& [name, attr] : n->attrs) {
      if (attr.g) ForEachGraph(*attr.g, f);
      for (const auto& sg : attr.graphs)
        if (sg) ForEachGraph(*sg, f);
    }
}

json DimsJson(const Shape& s) {
  if (!s.rank_known()) return nullptr;
  json dims = json::array();
  for (const Dim& d : s.dims()) {
    if (d.known())
      dims.push_back(d.value());
    else if (d.symbolic())
      dims.push_back(d.symbol());
    else
      dims.push_back(nullptr);
  }
  return dims;
}

json ValueJson(const Value& v) {
  json j;
  j["name"] = v.name();
  j["type"] = v.type.ToString();
  j["dtype"] = std::string(DataTypeName(v.type.dtype));
  j["shape"] = DimsJson(v.type.shape);
  if (v.type.kind != ValueKind::kTensor) j["kind"] = v.type.ToString();
  return j;
}

const char* KindName(ValueKind k) {
  switch (k) {
    case ValueKind::kTensor: return "tensor";
    case ValueKind::kSequence: return "sequence";
    case ValueKind::kOptional: return "optional";
    case ValueKind::kMap: return "map";
    case ValueKind::kSparseTensor: return "sparse_tensor";
  }
  return "tensor";
}

// One value's inferred type for --values: kind, dtype (name and ONNX number;
// null when unknown) and dims (numbers, symbol names, "?" for unknown; null
// for an unknown rank).
json InferredValueJson(const Value& v, const std::string& graph_path, const std::set<const Value*>& inputs) {
  json j;
  j["name"] = v.name();
  j["graph"] = graph_path;
  const char* source = v.producer() ? "node" : inputs.count(&v) ? "input" : v.data ? "initializer" : "other";
  j["source"] = source;
  if (v.producer()) j["op"] = OpKey(*v.producer());
  j["kind"] = KindName(v.type.kind);
  if (v.type.kind == ValueKind::kOptional) j["elem_kind"] = KindName(v.type.elem_kind);
  if (v.type.known()) {
    j["dtype"] = std::string(DataTypeName(v.type.dtype));
    j["elem_type"] = static_cast<int>(v.type.dtype);
  } else {
    j["dtype"] = nullptr;
    j["elem_type"] = nullptr;
  }
  if (v.type.shape.rank_known()) {
    json dims = json::array();
    for (const Dim& d : v.type.shape.dims()) {
      if (d.known())
        dims.push_back(d.value());
      else if (d.symbolic())
        dims.push_back(d.symbol());
      else
        dims.push_back("?");
    }
    j["dims"] = dims;
  } else {
    j["dims"] = nullptr;
  }
  j["type"] = v.type.ToString();
  return j;
}

// Values of g and its subgraphs; a subgraph's path is its parent's path, "/",
// the node's name and "." the attribute's name ("[i]" for graph lists).
void CollectValues(const Graph& g, const std::string& path, json* out) {
  std::set<const Value*> inputs(g.inputs.begin(), g.inputs.end());
  for (const Value* v : g.values())
    if (!v->name().empty()) out->push_back(InferredValueJson(*v, path, inputs));
  for (const Node* n : g.nodes())
    for (const auto& [name, attr] : n->attrs) {
      const std::string base = path + "/" + n->name + "." + name;
      if (attr.g) CollectValues(*attr.g, base, out);
      for (size_t i = 0; i < attr.graphs.size(); ++i)
        if (attr.graphs[i]) CollectValues(*attr.graphs[i], base + "[" + std::to_string(i) + "]", out);
    }
}

std::optional<double> Numel(const Value* v) {
  if (!v) return std::nullopt;
  auto c = v->shape().concrete();
  if (!c) return std::nullopt;
  double n = 1;
  for (int64_t d : *c) n *= static_cast<double>(d);
  return n;
}

std::optional<std::vector<int64_t>> Dims(const Value* v) {
  if (!v) return std::nullopt;
  return v->shape().concrete();
}

// Multiply-accumulates of one node, nullopt when shapes are unknown or the op
// is not counted. *counted says whether the op is one that is counted.
std::optional<double> NodeMacs(const Node& n, bool* counted) {
  *counted = true;
  if (!n.domain.empty() && n.domain != "ai.onnx") {
    *counted = false;
    return std::nullopt;
  }
  if (n.op_type == "Conv" || n.op_type == "ConvTranspose") {
    // Conv: each output element does C/group * prod(kernel) MACs.
    // ConvTranspose: each input element does M/group * prod(kernel) MACs.
    auto w = Dims(n.input(1));
    auto count = Numel(n.op_type == "Conv" ? n.output(0) : n.input(0));
    if (!w || !count || w->size() < 2) return std::nullopt;
    double per = 1;
    for (size_t i = 1; i < w->size(); ++i) per *= static_cast<double>((*w)[i]);
    return *count * per;
  }
  if (n.op_type == "Gemm") {
    auto a = Dims(n.input(0));
    auto y = Numel(n.output(0));
    if (!a || !y || a->size() != 2) return std::nullopt;
    const Attribute* ta = n.attr("transA");
    int64_t k = ta && ta->i ? (*a)[0] : (*a)[1];
    return *y * static_cast<double>(k);
  }
  if (n.op_type == "MatMul") {
    auto a = Dims(n.input(0));
    auto y = Numel(n.output(0));
    if (!a || !y || a->empty()) return std::nullopt;
    return *y * static_cast<double>(a->back());
  }
  *counted = false;
  return std::nullopt;
}

Expected<MacReport> ComputeMacs(Model& model, const std::map<std::string, std::vector<int64_t>>& overrides) {
  MacReport r;
  const Graph& g = *model.graph;
  std::vector<const Value*> inputs = RuntimeInputs(g);
  for (const auto& [name, dims] : overrides) {
    bool found = false;
    for (const Value* v : inputs) found |= v->name() == name;
    if (!found) {
      std::string names;
      for (const Value* v : inputs) names += (names.empty() ? "" : ", ") + v->name();
      return InvalidArgument("--shapes names '" + name + "', which is not a model input (inputs: " + names + ")");
    }
  }
  ShapeInferenceOptions opts;
  opts.tolerate_errors = true;
  std::map<std::string, int64_t> symbols;
  // Overridden inputs first so their symbols bind before the defaults apply.
  for (int pass = 0; pass < 2; ++pass) {
    for (const Value* v : inputs) {
      auto it = overrides.find(v->name());
      if ((it != overrides.end()) != (pass == 0)) continue;
      if (v->type.kind != ValueKind::kTensor) continue;
      auto dims = ConcreteDims(*v, it != overrides.end() ? &it->second : nullptr, &symbols);
      if (!dims.ok()) {
        if (it != overrides.end()) return dims.status();
        continue;  // unknown rank: left unknown
      }
      r.input_shapes[v->name()] = *dims;
      opts.input_shapes[v->name()] = Shape::Of(*dims);
    }
  }
  Status st = InferShapes(model, opts);
  if (!st.ok()) r.inference_error = st.message();
  for (const Node* n : FindSyncPoints(g)) r.sync_points.push_back(n->Label());
  ForEachNode(g, [&](const Node& n) {
    bool counted = false;
    auto macs = NodeMacs(n, &counted);
    if (!counted) return;
    if (!macs) {
      r.uncounted.push_back(n.name.empty() ? n.op_type : n.name);
      return;
    }
    r.total += *macs;
    r.by_op[n.op_type] += *macs;
  });
  return r;
}

// Inferred types of every value (--values): inference on a copy of the model
// with only the --shapes overrides, so symbolic dims stay symbolic.
json ValuesReport(const Model& model, const std::map<std::string, std::vector<int64_t>>& overrides,
                  json* errors) {
  std::unique_ptr<Model> copy = CloneModel(model);
  std::vector<std::string> messages;
  ShapeInferenceOptions opts;
  opts.tolerate_errors = true;
  opts.errors = &messages;
  for (const auto& [name, dims] : overrides) opts.input_shapes[name] = Shape::Of(dims);
  Status st = InferShapes(*copy, opts);
  if (!st.ok()) messages.insert(messages.begin(), st.message());
  *errors = messages;
  json values = json::array();
  CollectValues(*copy->graph, "", &values);
  return values;
}

// Inspects one model; *error gets the message when it fails (exit code 1).
int InspectModel(const InspectOptions& o, const std::string& path,
                 const std::map<std::string, std::vector<int64_t>>& shapes, bool compact,
                 std::string* error) {
  auto loaded = LoadModel(path);
  if (!loaded.ok()) {
    *error = loaded.status().message();
    return 1;
  }
  Model& model = **loaded;
  if (!model.graph) {
    *error = path + ": model has no graph";
    return 1;
  }
  const Graph& g = *model.graph;
  std::unique_ptr<Model> pristine = o.values && o.json ? CloneModel(model) : nullptr;

  std::string ir_text = o.ir ? PrintGraph(model) : "";

  // Everything that describes the model as declared, before inference.
  json inputs = json::array(), outputs = json::array();
  std::string io_text = "inputs:\n";
  for (const Value* v : RuntimeInputs(g)) {
    inputs.push_back(ValueJson(*v));
    io_text += "  " + v->name() + ": " + v->type.ToString() + "\n";
  }
  io_text += "outputs:\n";
  for (const Value* v : g.outputs) {
    outputs.push_back(ValueJson(*v));
    io_text += "  " + v->name() + ": " + v->type.ToString() + "\n";
  }
  std::map<std::string, int64_t> hist;
  int64_t num_nodes = 0;
  ForEachNode(g, [&](const Node& n) {
    ++hist[OpKey(n)];
    ++num_nodes;
  });
  double params = 0, param_bytes = 0;
  int64_t num_inits = 0;
  ForEachGraph(g, [&](const Graph& sg) {
    for (const Value* v : sg.initializers) {
      ++num_inits;
      double n = 0;
      if (v->data) {
        n = static_cast<double>(v->data->numel());
        if (v->data->dtype() == DataType::kString) {
          for (const std::string& s : v->data->strings()) param_bytes += static_cast<double>(s.size());
        } else {
          param_bytes += n * ElementBits(v->data->dtype()) / 8.0;
        }
      } else if (auto c = Numel(v)) {
        n = *c;
        param_bytes += n * ElementBits(v->dtype()) / 8.0;
      }
      params += n;
    }
  });

  auto macs = ComputeMacs(model, shapes);
  if (!macs.ok()) {
    *error = macs.status().message();
    return 1;
  }

  std::vector<std::pair<std::string, int64_t>> ops(hist.begin(), hist.end());
  std::stable_sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.second > b.second; });

  if (o.json) {
    json j;
    j["model"] = path;
    j["ir_version"] = model.ir_version;
    json opsets = json::object();
    for (const auto& [d, v] : model.opsets) opsets[d.empty() ? "ai.onnx" : d] = v;
    j["opsets"] = opsets;
    j["producer"] = {{"name", model.producer_name}, {"version", model.producer_version}};
    j["inputs"] = inputs;
    j["outputs"] = outputs;
    j["nodes"] = num_nodes;
    json hj = json::array();
    for (const auto& [op, n] : ops) hj.push_back({{"op", op}, {"count", n}});
    j["ops"] = hj;
    j["parameters"] = {{"count", params}, {"bytes", param_bytes}, {"initializers", num_inits}};
    json mj;
    mj["total"] = macs->total;
    mj["by_op"] = macs->by_op;
    json shapes_j = json::object();
    for (const auto& [name, dims] : macs->input_shapes) shapes_j[name] = dims;
    mj["input_shapes"] = shapes_j;
    mj["uncounted_nodes"] = macs->uncounted;
    if (!macs->inference_error.empty()) mj["shape_inference_error"] = macs->inference_error;
    j["macs"] = mj;
    j["sync_points"] = macs->sync_points;
    if (o.ir) j["ir"] = ir_text;
    if (pristine) {
      json errors;
      j["values"] = ValuesReport(*pristine, shapes, &errors);
      j["shape_inference_errors"] = errors;
    }
    std::cout << j.dump(compact ? -1 : 2, ' ', false, json::error_handler_t::replace) << "\n";
    return 0;
  }

  std::string out;
  out += "model: " + path + "\n";
  out += fmt::format("ir_version: {}\n", model.ir_version);
  std::string opsets;
  for (const auto& [d, v] : model.opsets) opsets += fmt::format("{}{}={}", opsets.empty() ? "" : ", ", d.empty() ? "ai.onnx" : d, v);
  out += "opsets: " + opsets + "\n";
  std::string producer = model.producer_name + (model.producer_version.empty() ? "" : " " + model.producer_version);
  out += "producer: " + (producer.empty() ? std::string("(none)") : producer) + "\n";
  out += io_text;
  out += fmt::format("nodes: {}\n", num_nodes);
  size_t width = 0;
  for (const auto& [op, n] : ops) width = std::max(width, op.size());
  for (const auto& [op, n] : ops) out += fmt::format("  {:<{}}  {}\n", op, width, n);
  out += fmt::format("parameters: {} ({}) in {} initializers\n", HumanCount(params), HumanBytes(param_bytes),
                     num_inits);
  std::string at;
  for (const auto& [name, dims] : macs->input_shapes) at += (at.empty() ? "" : ", ") + name + ":" + DimsToString(dims);
  out += "MACs: " + HumanCount(macs->total) + (at.empty() ? "" : " at " + at) + "\n";
  for (const auto& [op, m] : macs->by_op) out += fmt::format("  {:<14} {}\n", op, HumanCount(m));
  if (!macs->uncounted.empty())
    out += fmt::format("  ({} Conv/ConvTranspose/Gemm/MatMul nodes not counted: shapes unknown)\n", macs->uncounted.size());
  if (!macs->inference_error.empty()) out += "  shape inference: " + macs->inference_error + "\n";
  out += fmt::format("sync points: {}{}\n", macs->sync_points.size(),
                     macs->sync_points.empty() ? "" : " (output shapes depend on values: the GPU runtime syncs after each)");
  for (const std::string& n : macs->sync_points) out += "  " + n + "\n";
  std::cout << out;
  if (o.ir) std::cout << "\n" << ir_text;
  return 0;
}

// --onnx: a plan's optimized graph written back as ONNX (for debugging and
// other tools); --plan: an ONNX model's graph, shapes inferred, in a plan
// container with no GPU parts (seeds for the plan fuzzer, format tests).
int ConvertGraph(const InspectOptions& o) {
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

int RunInspect(const InspectOptions& o) {
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
  auto o = std::make_shared<InspectOptions>();
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
