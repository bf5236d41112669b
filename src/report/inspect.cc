// `kiln inspect`'s content as data (see inspect.h).
#include "report/inspect.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <set>

#include "backend/gpu_caps.h"
#include "ir/clone.h"
#include "ir/printer.h"
#include "onnx/import.h"
#include "passes/shape_inference.h"

namespace kiln {
namespace {

using nlohmann::json;


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

json IoJson(const InspectReport::Io& v) {
  json j;
  j["name"] = v.name;
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
  if (v.producer()) j["op"] = v.producer()->QualifiedOp();
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
// kiln's fused convolutions and products (a built graph: `kiln check --backend cuda --save-built`) count as
// the ONNX op they contain: kiln.FusedConv's W is Conv's, kiln.FusedConvNhwc's [K, R, S, C/group] has the
// same product of its trailing dims, kiln.FusedMatMul is MatMul's, kiln.GateMulNhwc counts its gate's
// convolution. Other kiln ops (attention among them) are not counted.
std::optional<double> NodeMacs(const Node& n, bool* counted) {
  *counted = true;
  std::string op = n.op_type;
  if (n.domain == "kiln" && op == "GateMulNhwc") {  // its gate's 1x1 convolution: N·C outputs of R MACs each
    auto h = Dims(n.input(1));
    auto w = Dims(n.input(2));
    if (!h || !w || h->size() != 4 || w->size() != 4) return std::nullopt;
    return static_cast<double>((*h)[0]) * static_cast<double>((*w)[0]) * static_cast<double>((*w)[3]);
  }
  if (n.domain == "kiln") {
    if (op == "FusedConv" || op == "FusedConvNhwc")
      op = "Conv";
    else if (op == "FusedMatMul")
      op = "MatMul";
    else
      op.clear();
  } else if (!n.domain.empty() && n.domain != "ai.onnx") {
    op.clear();
  }
  if (op.empty()) {
    *counted = false;
    return std::nullopt;
  }
  if (op == "Conv" || op == "ConvTranspose") {
    // Conv: each output element does C/group * prod(kernel) MACs.
    // ConvTranspose: each input element does M/group * prod(kernel) MACs.
    auto w = Dims(n.input(1));
    auto count = Numel(op == "Conv" ? n.output(0) : n.input(0));
    if (!w || !count || w->size() < 2) return std::nullopt;
    double per = 1;
    for (size_t i = 1; i < w->size(); ++i) per *= static_cast<double>((*w)[i]);
    return *count * per;
  }
  if (op == "Gemm") {
    auto a = Dims(n.input(0));
    auto y = Numel(n.output(0));
    if (!a || !y || a->size() != 2) return std::nullopt;
    const Attribute* ta = n.attr("transA");
    int64_t k = ta && ta->i ? (*a)[0] : (*a)[1];
    return *y * static_cast<double>(k);
  }
  if (op == "MatMul") {
    auto a = Dims(n.input(0));
    auto y = Numel(n.output(0));
    if (!a || !y || a->empty()) return std::nullopt;
    return *y * static_cast<double>(a->back());
  }
  *counted = false;
  return std::nullopt;
}

// Shape inference at the given (or default) input shapes, then the MACs.
Status ComputeMacs(Model& model, const std::map<std::string, std::vector<int64_t>>& overrides, InspectReport* r) {
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
      r->input_shapes[v->name()] = *dims;
      opts.input_shapes[v->name()] = Shape::Of(*dims);
    }
  }
  Status st = InferShapes(model, opts);
  if (!st.ok()) r->inference_error = st.message();
  for (const Node* n : FindSyncPoints(g)) r->sync_points.push_back(n->Label());
  ForEachNodeDeep(g, [&](const Node& n) {
    bool counted = false;
    auto macs = NodeMacs(n, &counted);
    if (!counted) return;
    if (!macs) {
      r->uncounted.push_back(n.name.empty() ? n.op_type : n.name);
      return;
    }
    r->macs += *macs;
    r->macs_by_op[n.QualifiedOp()] += *macs;
  });
  return Status::Ok();
}

// Inferred types of every value: inference on a copy of the model with only
// the given shapes, so symbolic dims stay symbolic.
void ValuesReport(const Model& model, const std::map<std::string, std::vector<int64_t>>& overrides, InspectReport* r) {
  std::unique_ptr<Model> copy = CloneModel(model);
  std::vector<std::string> messages;
  ShapeInferenceOptions opts;
  opts.tolerate_errors = true;
  opts.errors = &messages;
  for (const auto& [name, dims] : overrides) opts.input_shapes[name] = Shape::Of(dims);
  Status st = InferShapes(*copy, opts);
  if (!st.ok()) messages.insert(messages.begin(), st.message());
  r->has_values = true;
  r->shape_inference_errors = messages;
  r->values = json::array();
  CollectValues(*copy->graph, "", &r->values);
}

}  // namespace

Expected<InspectReport> InspectModelFile(const std::string& path, const InspectOptions& options) {
  auto loaded = LoadModel(path);
  if (!loaded.ok()) return loaded.status();
  Model& model = **loaded;
  if (!model.graph) return InvalidArgument(path + ": model has no graph");
  const Graph& g = *model.graph;
  InspectReport r;
  r.model = path;
  r.ir_version = model.ir_version;
  for (const auto& [d, v] : model.opsets) r.opsets.emplace_back(d.empty() ? "ai.onnx" : d, v);
  r.producer_name = model.producer_name;
  r.producer_version = model.producer_version;
  std::unique_ptr<Model> pristine = options.values ? CloneModel(model) : nullptr;
  if (options.ir) r.ir = PrintGraph(model);

  // Everything that describes the model as declared, before inference.
  for (const Value* v : RuntimeInputs(g)) r.inputs.push_back({v->name(), v->type});
  for (const Value* v : g.outputs) r.outputs.push_back({v->name(), v->type});
  std::map<std::string, int64_t> hist;
  ForEachNodeDeep(g, [&](const Node& n) {
    ++hist[n.QualifiedOp()];
    ++r.nodes;
  });
  ForEachGraphDeep(g, [&](const Graph& sg) {
    for (const Value* v : sg.initializers) {
      ++r.initializers;
      double n = 0;
      if (v->data) {
        n = static_cast<double>(v->data->numel());
        if (v->data->dtype() == DataType::kString) {
          for (const std::string& s : v->data->strings()) r.parameter_bytes += static_cast<double>(s.size());
        } else {
          r.parameter_bytes += n * ElementBits(v->data->dtype()) / 8.0;
        }
      } else if (auto c = Numel(v)) {
        n = *c;
        r.parameter_bytes += n * ElementBits(v->dtype()) / 8.0;
      }
      r.parameters += n;
    }
  });
  r.ops.assign(hist.begin(), hist.end());
  std::stable_sort(r.ops.begin(), r.ops.end(), [](const auto& a, const auto& b) { return a.second > b.second; });

  Status st = ComputeMacs(model, options.shapes, &r);
  if (!st.ok()) return st;
  if (pristine) ValuesReport(*pristine, options.shapes, &r);
  return r;
}

nlohmann::json InspectJson(const InspectReport& r) {
  json j;
  j["model"] = r.model;
  j["ir_version"] = r.ir_version;
  json opsets = json::object();
  for (const auto& [d, v] : r.opsets) opsets[d] = v;
  j["opsets"] = opsets;
  j["producer"] = {{"name", r.producer_name}, {"version", r.producer_version}};
  json inputs = json::array(), outputs = json::array();
  for (const auto& v : r.inputs) inputs.push_back(IoJson(v));
  for (const auto& v : r.outputs) outputs.push_back(IoJson(v));
  j["inputs"] = inputs;
  j["outputs"] = outputs;
  j["nodes"] = r.nodes;
  json hj = json::array();
  for (const auto& [op, n] : r.ops) hj.push_back({{"op", op}, {"count", n}});
  j["ops"] = hj;
  j["parameters"] = {{"count", r.parameters}, {"bytes", r.parameter_bytes}, {"initializers", r.initializers}};
  json mj;
  mj["total"] = r.macs;
  mj["by_op"] = r.macs_by_op;
  json shapes_j = json::object();
  for (const auto& [name, dims] : r.input_shapes) shapes_j[name] = dims;
  mj["input_shapes"] = shapes_j;
  mj["uncounted_nodes"] = r.uncounted;
  if (!r.inference_error.empty()) mj["shape_inference_error"] = r.inference_error;
  j["macs"] = mj;
  j["sync_points"] = r.sync_points;
  if (!r.ir.empty()) j["ir"] = r.ir;
  if (r.has_values) {
    j["values"] = r.values;
    j["shape_inference_errors"] = r.shape_inference_errors;
  }
  return j;
}

std::string InspectText(const InspectReport& r) {
  std::string out;
  out += "model: " + r.model + "\n";
  out += fmt::format("ir_version: {}\n", r.ir_version);
  std::string opsets;
  for (const auto& [d, v] : r.opsets) opsets += fmt::format("{}{}={}", opsets.empty() ? "" : ", ", d, v);
  out += "opsets: " + opsets + "\n";
  std::string producer = r.producer_name + (r.producer_version.empty() ? "" : " " + r.producer_version);
  out += "producer: " + (producer.empty() ? std::string("(none)") : producer) + "\n";
  out += "inputs:\n";
  for (const auto& v : r.inputs) out += "  " + v.name + ": " + v.type.ToString() + "\n";
  out += "outputs:\n";
  for (const auto& v : r.outputs) out += "  " + v.name + ": " + v.type.ToString() + "\n";
  out += fmt::format("nodes: {}\n", r.nodes);
  size_t width = 0;
  for (const auto& [op, n] : r.ops) width = std::max(width, op.size());
  for (const auto& [op, n] : r.ops) out += fmt::format("  {:<{}}  {}\n", op, width, n);
  out += fmt::format("parameters: {} ({}) in {} initializers\n", HumanCount(r.parameters), HumanBytes(r.parameter_bytes),
                     r.initializers);
  std::string at;
  for (const auto& [name, dims] : r.input_shapes) at += (at.empty() ? "" : ", ") + name + ":" + DimsToString(dims);
  out += "MACs: " + HumanCount(r.macs) + (at.empty() ? "" : " at " + at) + "\n";
  size_t mac_width = 14;
  for (const auto& [op, m] : r.macs_by_op) mac_width = std::max(mac_width, op.size());
  for (const auto& [op, m] : r.macs_by_op) out += fmt::format("  {:<{}} {}\n", op, mac_width, HumanCount(m));
  if (!r.uncounted.empty())
    out += fmt::format("  ({} Conv/ConvTranspose/Gemm/MatMul nodes not counted: shapes unknown)\n", r.uncounted.size());
  if (!r.inference_error.empty()) out += "  shape inference: " + r.inference_error + "\n";
  out += fmt::format("sync points: {}{}\n", r.sync_points.size(),
                     r.sync_points.empty() ? "" : " (output shapes depend on values: the GPU runtime syncs after each)");
  for (const std::string& n : r.sync_points) out += "  " + n + "\n";
  return out;
}

std::vector<const Value*> RuntimeInputs(const Graph& g) {
  std::set<const Value*> inits(g.initializers.begin(), g.initializers.end());
  std::vector<const Value*> out;
  for (const Value* v : g.inputs)
    if (!inits.count(v) && !v->data) out.push_back(v);
  return out;
}

Expected<std::vector<int64_t>> ConcreteDims(const Value& input, const std::vector<int64_t>* override_dims,
                                            std::map<std::string, int64_t>* symbols) {
  const Shape& s = input.type.shape;
  if (override_dims) {
    if (s.rank_known() && static_cast<int>(override_dims->size()) != s.rank())
      return InvalidArgument("--shapes gives input '" + input.name() + "' rank " +
                             std::to_string(override_dims->size()) + " (" + DimsToString(*override_dims) +
                             ") but the model declares " + input.type.ToString());
    for (int i = 0; s.rank_known() && i < s.rank(); ++i) {
      int64_t v = (*override_dims)[static_cast<size_t>(i)];
      if (s[i].known() && s[i].value() != v)
        return InvalidArgument("--shapes gives input '" + input.name() + "' dim " + std::to_string(i) +
                               " = " + std::to_string(v) + " but the model fixes it to " +
                               std::to_string(s[i].value()) + " (" + input.type.ToString() + ")");
      if (s[i].symbolic()) {
        auto it = symbols->find(s[i].symbol());
        if (it == symbols->end()) {
          (*symbols)[s[i].symbol()] = v;
        } else if (it->second != v) {
          return InvalidArgument("--shapes gives input '" + input.name() + "' dim " + std::to_string(i) +
                                 " ('" + s[i].symbol() + "') = " + std::to_string(v) +
                                 " but another input sets '" + s[i].symbol() + "' to " +
                                 std::to_string(it->second));
        }
      }
    }
    return *override_dims;
  }
  if (!s.rank_known())
    return InvalidArgument("input '" + input.name() + "' has unknown rank; give its shape with --shapes " +
                           input.name() + ":DxDx...");
  std::vector<int64_t> dims;
  for (const Dim& d : s.dims()) {
    if (d.known()) {
      dims.push_back(d.value());
    } else if (d.symbolic()) {
      auto it = symbols->find(d.symbol());
      if (it == symbols->end()) it = symbols->emplace(d.symbol(), 1).first;
      dims.push_back(it->second);
    } else {
      dims.push_back(1);
    }
  }
  return dims;
}

std::string HumanCount(double v) {
  const char* units[] = {"", "K", "M", "G", "T", "P"};
  int u = 0;
  while (std::fabs(v) >= 1000.0 && u < 5) {
    v /= 1000.0;
    ++u;
  }
  if (u == 0) return fmt::format("{:.0f}", v);
  return fmt::format("{:.3g}{}", v, units[u]);
}

std::string HumanBytes(double v) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  if (u == 0) return fmt::format("{:.0f} B", v);
  return fmt::format("{:.3g} {}", v, units[u]);
}

}  // namespace kiln
