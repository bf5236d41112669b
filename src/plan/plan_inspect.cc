#include "plan/plan_inspect.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_set>

#include "backend/gpu_caps.h"
#include "ir/clone.h"
#include "passes/shape_inference.h"
#include "plan/plan_graph.h"
#include "runtime/shape_program.h"

namespace kiln {
namespace {

std::string AttrString(const Node& n, const char* name, const std::string& def = "") {
  const Attribute* a = n.attr(name);
  return a && a->type == Attribute::Type::kString ? a->s : def;
}

bool HasInput(const Node& n, size_t i) { return n.input(i) != nullptr; }

std::string ShapeText(const Value& v) {
  if (!v.type.shape.rank_known()) return "?";
  std::string s = "[";
  for (size_t i = 0; i < v.type.shape.dims().size(); ++i) {
    const Dim& d = v.type.shape.dims()[i];
    s += (i ? "," : "") + (d.known() ? std::to_string(d.value()) : d.symbolic() ? d.symbol() : "?");
  }
  return s + "]";
}

InspectedTensor TensorOf(const Value& v) {
  InspectedTensor t;
  t.name = v.name();
  if (v.type.known()) t.dtype = std::string(DataTypeName(v.type.dtype));
  t.shape = ShapeText(v);
  if (auto dims = v.shape().concrete(); dims && v.type.known() && v.type.kind == ValueKind::kTensor) {
    int64_t n = 1;
    for (int64_t d : *dims) n *= d;
    t.bytes = (n * ElementBits(v.type.dtype) + 7) / 8;
  }
  return t;
}

// The activation epilogue of kiln.FusedConv / FusedMatMul as ONNX ops.
void AddActivation(const Node& n, InspectedStep* s) {
  const std::string act = AttrString(n, "activation");
  if (act == "Swish") {
    s->fused_ops.push_back("Sigmoid");
    s->fused_ops.push_back("Mul");
  } else if (!act.empty()) {
    s->fused_ops.push_back(act);
  }
  if (!act.empty()) s->detail += (s->detail.empty() ? "" : ", ") + std::string("activation ") + act;
}

// What a fused node absorbed, as far as its op and attributes tell.
void DescribeFusion(const Node& n, InspectedStep* s) {
  const std::string op = n.QualifiedOp();
  if (op == "kiln.Pointwise") {
    bool reduces = false;  // the builder makes a row kernel exactly when the body reduces rows
    if (const Attribute* body = n.attr("body"); body && body->g)
      for (const Node* b : body->g->nodes()) {
        s->fused_ops.push_back(b->QualifiedOp());
        s->fused_nodes.push_back(b->name);
        reduces = reduces || b->op_type.rfind("Reduce", 0) == 0;
      }
    const Attribute* row = n.attr("row_kernel");
    s->detail = (row ? row->i != 0 : reduces) ? "row kernel (one block per row)" : "elementwise kernel";
    if (const Attribute* cubin = n.attr("cubin"))
      s->detail += fmt::format(", cubin {} bytes", cubin->s.size());
    else
      s->detail += ", not compiled";
  } else if (op == "kiln.FusedConv" || op == "kiln.FusedConvNhwc") {
    s->fused_ops.push_back("Conv");
    if (HasInput(n, 2)) s->fused_ops.push_back("Add (bias)");
    if (HasInput(n, 3)) s->fused_ops.push_back("Add (residual)");
    if (op == "kiln.FusedConvNhwc") s->detail = "channels-last";
    AddActivation(n, s);
  } else if (op == "kiln.FusedMatMul") {
    s->fused_ops.push_back("MatMul");
    if (HasInput(n, 2)) s->fused_ops.push_back("Add (bias)");
    if (HasInput(n, 3)) s->fused_ops.push_back("Add (residual)");
    AddActivation(n, s);
  } else if (op == "kiln.Attention") {
    s->fused_ops = {"MatMul (Q, K^T)", "Mul (scale)"};
    if (HasInput(n, 3)) s->fused_ops.push_back("Add (bias)");
    s->fused_ops.push_back("Softmax");
    s->fused_ops.push_back("MatMul (P, V)");
    const Attribute* scale = n.attr("scale");
    const Attribute* layouts = n.attr("layouts");
    std::string layout = "layout " + AttrString(n, "layout", "bhsd");
    if (layouts && layouts->strings.size() == 4)
      layout = fmt::format("layouts Q {}, K {}, V {}, Y {}", layouts->strings[0], layouts->strings[1],
                           layouts->strings[2], layouts->strings[3]);
    s->detail = layout + (scale ? fmt::format(", scale {:g}", scale->f) : "");
    const Attribute* ranges = n.attr("head_ranges");
    if (ranges && ranges->ints.size() == 6)  // pack_qkv: Q/K/V read as heads of packed projections
      s->detail +=
          fmt::format(", heads Q [{}, {}), K [{}, {}), V [{}, {})", ranges->ints[0],
                      ranges->ints[0] + ranges->ints[1], ranges->ints[2], ranges->ints[2] + ranges->ints[3],
                      ranges->ints[4], ranges->ints[4] + ranges->ints[5]);
  } else if (op == "kiln.QConv" || op == "kiln.QConvNhwc" || op == "kiln.QMatMul") {
    s->fused_ops = {"DequantizeLinear", op == "kiln.QMatMul" ? "MatMul" : "Conv"};
    if (HasInput(n, 6)) s->fused_ops.push_back("Add (bias)");
    if (HasInput(n, 9)) s->fused_ops.push_back("Add (residual)");
    s->detail = op == "kiln.QConvNhwc" ? "int32 accumulation, channels-last" : "int32 accumulation";
    AddActivation(n, s);
    if (HasInput(n, 7)) s->fused_ops.push_back("QuantizeLinear");
  } else if (op == "kiln.F8MatMul") {
    s->fused_ops = {"MatMul"};
    if (HasInput(n, 4)) s->fused_ops.push_back("Add (bias)");
    if (HasInput(n, 5)) s->fused_ops.push_back("Add (residual)");
    s->detail = "FP8 E4M3, fast accumulation";
    AddActivation(n, s);
  } else if (op == "kiln.PoolNhwc") {
    s->fused_ops = {AttrString(n, "pool", "Pool")};
    s->detail = "channels-last";
  } else if (op == "kiln.Gelu") {
    s->fused_ops = {"Gelu"};
    s->detail = "approximate " + AttrString(n, "approximate", "none");
  } else {
    s->fused_ops = {op};
  }
}

// "float16", or "int8, float32 -> float32" when the types differ.
std::string Precision(const std::vector<InspectedTensor>& in, const std::vector<InspectedTensor>& out) {
  auto types = [](const std::vector<InspectedTensor>& ts) {
    std::vector<std::string> seen;
    for (const InspectedTensor& t : ts)
      if (!t.dtype.empty() && std::find(seen.begin(), seen.end(), t.dtype) == seen.end())
        seen.push_back(t.dtype);
    return seen;
  };
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  std::vector<std::string> a = types(in), b = types(out);
  if (a == b || a.empty()) return join(b);
  return join(a) + " -> " + join(b);
}

const char* ConvAlgoName(int algo) {
  static const char* kNames[] = {
      "IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT", "FFT", "FFT_TILING",
      "WINOGRAD",      "WINOGRAD_NONFUSED"};
  return algo >= 0 && algo < 8 ? kNames[algo] : nullptr;
}

}  // namespace

std::string DescribeTactic(const std::string& key, const std::string& choice) {
  if (key.rfind("lt:", 0) == 0) {  // "ALGO_HEX MS" (src/backend/cuda/lt_algo.cc)
    float ms = 0;
    const size_t space = choice.find(' ');
    if (space == std::string::npos || std::sscanf(choice.c_str() + space + 1, "%f", &ms) != 1) return choice;
    return fmt::format("cuBLASLt, {:.4f} ms (the fastest of the heuristic's first candidates)", ms);
  }
  // Verdicts between two ways to run a 1x1 convolution (src/backend/cuda/conv.cc).
  if (key.rfind("conv1x1_small:", 0) == 0)
    return choice == "small"
               ? "kiln's small 1x1 kernel, few channels or few pixels (timed faster than cuBLASLt + its "
                 "activation pass)"
               : "cuBLASLt (timed faster than kiln's small 1x1 kernel)";
  if (key.size() > 4 && key.compare(key.size() - 4, 4, ":1x1") == 0 && key.rfind("conv_graph:", 0) == 0)
    return choice == "graph" ? "cuDNN graph (timed faster than cuBLASLt + its activation pass)"
                             : "cuBLASLt + an activation pass (timed faster than the cuDNN graph)";
  if (key.rfind("conv_graph:", 0) == 0) {  // "PLAN MS [NAME]" (src/backend/cuda/conv_graph.cc)
    long long plan = 0;
    float ms = 0;
    int used = 0;
    if (choice == "none") return "no cuDNN graph engine for this geometry (legacy cuDNN)";
    if (std::sscanf(choice.c_str(), "%lld %f%n", &plan, &ms, &used) != 2) return choice;
    std::string name = choice.substr(static_cast<size_t>(used));
    name.erase(0, name.find_first_not_of(' '));
    return fmt::format("cuDNN graph engine {}(plan {}), {:.4f} ms (the fastest timed)",
                       name.empty() ? "" : name + " ", plan, ms);
  }
  if (key.rfind("conv ", 0) != 0) return choice;
  size_t count = 0;
  for (char c : choice) count += c == ';';
  int algo = 0, math = 0;
  float ms = 0;
  unsigned long long ws = 0;
  if (count == 0 || std::sscanf(choice.c_str(), "%d:%f:%llu:%d", &algo, &ms, &ws, &math) != 4) return choice;
  const char* name = ConvAlgoName(algo);
  return fmt::format("cuDNN {} ({}), {:.4f} ms, workspace {} bytes, math type {} (fastest of {} timed)",
                     name ? name : "algo", algo, ms, ws, math, count);
}

Expected<PlanInspection> InspectPlanModel(const Model& model, const EngineConfig& config,
                                          const PlanTactics& tactics) {
  if (!model.graph) return InvalidArgument("the plan's model has no graph");
  PlanInspection r;
  r.config = config;
  r.tactics = tactics.entries.size();
  // What runs where, decided on the plan's graph as the builder did (symbolic shapes).
  std::vector<std::pair<std::string, std::string>> kernels;
  std::vector<GpuGap> gaps = FindGpuGaps(model, nullptr, &kernels);
  std::map<const Node*, std::string> gap_of;
  for (const GpuGap& g : gaps) gap_of[g.node] = g.reason;

  // Shapes at the opt dims, on a copy (the node order and names are the same).
  std::unique_ptr<Model> copy = CloneModel(model);
  ShapeInferenceOptions opts;
  opts.tolerate_errors = true;
  std::vector<std::string> errors;
  opts.errors = &errors;
  for (const Value* v : copy->graph->inputs) {
    if (v->data || v->type.kind != ValueKind::kTensor || !v->type.shape.rank_known()) continue;
    auto profile = config.profiles.find(v->name());
    std::vector<int64_t> dims;
    if (profile != config.profiles.end() && !profile->second.opt.empty()) {
      dims = profile->second.opt;
    } else if (auto c = v->shape().concrete()) {
      dims = *c;
    } else {
      for (const Dim& d : v->type.shape.dims()) dims.push_back(d.known() ? d.value() : 1);
      r.notes.push_back("input '" + v->name() + "' has no profile: its dynamic dims are taken as 1");
    }
    r.opt_shapes[v->name()] = dims;
    opts.input_shapes[v->name()] = Shape::Of(dims);
  }
  Status st = InferShapes(*copy, opts);
  if (!st.ok())
    r.shape_error = st.message();
  else if (!errors.empty())
    r.shape_error = errors.front();

  // FindGpuGaps lists the main graph's nodes that are not gaps, in order.
  size_t next_kernel = 0;
  const std::vector<Node*> nodes = model.graph->nodes();
  const std::vector<Node*> copied = copy->graph->nodes();
  if (nodes.size() != copied.size()) return Internal("the copied plan graph has another node count");
  r.num_nodes = nodes.size();
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = *nodes[i];
    const Node& c = *copied[i];
    std::string kernel;
    if (auto gap = gap_of.find(&n); gap != gap_of.end()) {
      kernel = "no CUDA kernel: " + gap->second;
    } else if (next_kernel < kernels.size() && kernels[next_kernel].first == n.name) {
      kernel = kernels[next_kernel++].second;
    } else {
      return Internal("the GPU capability check skipped node " + n.Label());
    }
    if (kernel == "host shape arithmetic") {
      ++r.host_nodes;
      continue;
    }
    if (kernel == "alias (no kernel)") {
      ++r.alias_nodes;
      continue;
    }
    InspectedStep s;
    s.index = i;
    s.node = n.name;
    s.op = n.QualifiedOp();
    s.kernel = kernel;
    if (s.op == "kiln.Pointwise") {
      const std::string entry = AttrString(n, "kernel");
      s.kernel = entry.empty() ? "generated (not compiled)" : "generated: " + entry;
    }
    DescribeFusion(n, &s);
    if (auto use = tactics.nodes.find(n.name); use != tactics.nodes.end()) {
      s.tactic_key = use->second;
      auto entry = tactics.entries.find(use->second);
      s.tactic = entry == tactics.entries.end() ? "(recorded key missing from the tactic cache)"
                                                : DescribeTactic(entry->first, entry->second);
    }
    // Values the op reads on the host (Slice starts, Reshape's shape) are not device traffic.
    const GpuOpCaps* caps = FindGpuCaps(n.domain, n.op_type);
    std::unordered_set<const Value*> counted;
    bool known = true;
    int64_t read = 0, written = 0;
    for (size_t k = 0; k < c.num_inputs(); ++k) {
      const Value* v = c.input(k);
      if (!v || (caps && k < 32 && (caps->host_inputs >> k & 1u))) continue;
      InspectedTensor t = TensorOf(*v);
      if (counted.insert(v).second) {
        if (t.bytes)
          read += *t.bytes;
        else
          known = false;
      }
      s.inputs.push_back(std::move(t));
    }
    if (known) s.bytes_read = read;
    known = true;
    for (const Value* v : c.outputs()) {
      if (!v) continue;
      InspectedTensor t = TensorOf(*v);
      if (t.bytes)
        written += *t.bytes;
      else
        known = false;
      s.outputs.push_back(std::move(t));
    }
    if (known) s.bytes_written = written;
    s.precision = Precision(s.inputs, s.outputs);
    if (s.bytes_read) r.bytes_read += *s.bytes_read;
    if (s.bytes_written) r.bytes_written += *s.bytes_written;
    r.steps.push_back(std::move(s));
  }
  return r;
}

Expected<PlanInspection> InspectPlan(const PlanFile& plan) {
  EngineConfig config;
  if (auto it = plan.sections.find("config"); it != plan.sections.end()) {
    KILN_ASSIGN_OR_RETURN(config, ConfigFromJson(it->second));
  }
  KILN_ASSIGN_OR_RETURN(PlanTactics tactics, ReadPlanTactics(plan));
  if (!plan.sections.count("graph")) {  // a container with the config alone: its report, no steps
    PlanInspection r;
    r.header = plan.header;
    r.config = config;
    r.tactics = tactics.entries.size();
    r.notes.push_back("the plan has no 'graph' section: no steps to list");
    return r;
  }
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, ParsePlanGraph(plan));
  KILN_RETURN_IF_ERROR(InferShapes(*model).WithPrefix("plan graph"));
  KILN_ASSIGN_OR_RETURN(PlanInspection r, InspectPlanModel(*model, config, tactics));
  r.header = plan.header;
  if (auto shapes = plan.sections.find("shapes"); shapes != plan.sections.end()) {
    KILN_ASSIGN_OR_RETURN(ShapeProgram program, ShapeProgram::Decode(shapes->second));
    r.shape_program =
        program.complete()
            ? fmt::format(
                  "complete: the lean runtime runs it ({} values computed on the host per shape, {} "
                  "on the device)",
                  program.HostValues().size(), program.DeviceValues().size())
            : "incomplete: " + program.incomplete() +
                  " (shape inference at run time: load with kiln::BuilderLoadOptions())";
  }
  return r;
}

namespace {

std::string Bytes(std::optional<int64_t> b) {
  if (!b) return "?";
  double v = static_cast<double>(*b);
  if (v < 1024) return fmt::format("{} B", *b);
  if (v < 1024 * 1024) return fmt::format("{:.1f} KiB", v / 1024);
  if (v < 1024.0 * 1024 * 1024) return fmt::format("{:.1f} MiB", v / (1024 * 1024));
  return fmt::format("{:.2f} GiB", v / (1024.0 * 1024 * 1024));
}

std::string Dims(const std::vector<int64_t>& d) {
  std::string s;
  for (size_t i = 0; i < d.size(); ++i) s += (i ? "x" : "") + std::to_string(d[i]);
  return s;
}

std::string Join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

nlohmann::json TensorJson(const InspectedTensor& t) {
  nlohmann::json j = {{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}};
  j["bytes"] = t.bytes ? nlohmann::json(*t.bytes) : nlohmann::json(nullptr);
  return j;
}

}  // namespace

std::string PlanInspectionText(const PlanInspection& r) {
  std::string out;
  if (!r.header.gpu_name.empty())
    out += fmt::format("kiln {} plan for {} (sm_{})\n", r.header.kiln_version, r.header.gpu_name,
                       r.header.compute_capability);
  else if (!r.header.kiln_version.empty())
    out += fmt::format("kiln {} plan, no GPU recorded (written without a build)\n", r.header.kiln_version);
  out += fmt::format(
      "{}{}, {} nodes: {} kernel steps, {} host shape arithmetic, {} aliases; {} tactic(s) cached\n",
      r.config.fp16 ? "FP16" : "FP32", r.config.nhwc ? ", NHWC" : "", r.num_nodes, r.steps.size(),
      r.host_nodes, r.alias_nodes, r.tactics);
  std::string at;
  for (const auto& [name, dims] : r.opt_shapes) at += (at.empty() ? "" : ", ") + name + ":" + Dims(dims);
  out += "bytes at the opt shapes" + (at.empty() ? std::string() : " (" + at + ")") + ": read " +
         Bytes(r.bytes_read) + ", written " + Bytes(r.bytes_written) + "\n";
  if (!r.shape_program.empty()) out += "shape program: " + r.shape_program + "\n";
  for (const std::string& n : r.notes) out += "note: " + n + "\n";
  if (!r.shape_error.empty()) out += "shape inference at the opt shapes: " + r.shape_error + "\n";
  for (const InspectedStep& s : r.steps) {
    out += fmt::format("\n#{} {} ({}) — {}\n", s.index, s.node, s.op, s.kernel);
    if (s.fused_ops.size() > 1 || !s.fused_nodes.empty()) out += "  fuses: " + Join(s.fused_ops, ", ") + "\n";
    if (!s.fused_nodes.empty()) out += "  nodes: " + Join(s.fused_nodes, ", ") + "\n";
    if (!s.detail.empty()) out += "  " + s.detail + "\n";
    if (!s.tactic.empty()) out += "  tactic: " + s.tactic + "\n";
    out += fmt::format("  precision {}; read {}, write {}\n", s.precision.empty() ? "?" : s.precision,
                       Bytes(s.bytes_read), Bytes(s.bytes_written));
  }
  if (!r.config.precision.empty()) {
    out += "\nprecision report:\n";
    for (const std::string& p : r.config.precision) out += "  " + p + "\n";
  }
  return out;
}

std::string PlanInspectionJson(const PlanInspection& r) {
  using nlohmann::json;
  json j;
  j["kiln_version"] = r.header.kiln_version;
  j["gpu"] = r.header.gpu_name;
  j["compute_capability"] = r.header.compute_capability;
  j["fp16"] = r.config.fp16;
  j["layout"] = r.config.nhwc ? "nhwc" : "nchw";
  j["opt_shapes"] = r.opt_shapes;
  j["nodes"] = r.num_nodes;
  j["host_nodes"] = r.host_nodes;
  j["alias_nodes"] = r.alias_nodes;
  j["tactics"] = r.tactics;
  j["bytes_read"] = r.bytes_read;
  j["bytes_written"] = r.bytes_written;
  j["notes"] = r.notes;
  if (!r.shape_program.empty()) j["shape_program"] = r.shape_program;
  if (!r.shape_error.empty()) j["shape_inference_error"] = r.shape_error;
  j["precision_report"] = r.config.precision;
  json steps = json::array();
  for (const InspectedStep& s : r.steps) {
    json k;
    k["index"] = s.index;
    k["node"] = s.node;
    k["op"] = s.op;
    k["kernel"] = s.kernel;
    k["fused_ops"] = s.fused_ops;
    k["fused_nodes"] = s.fused_nodes;
    k["detail"] = s.detail;
    if (!s.tactic_key.empty())
      k["tactic"] = {{"key", s.tactic_key}, {"choice", s.tactic}};
    else
      k["tactic"] = nullptr;
    k["precision"] = s.precision;
    json in = json::array(), out = json::array();
    for (const InspectedTensor& t : s.inputs) in.push_back(TensorJson(t));
    for (const InspectedTensor& t : s.outputs) out.push_back(TensorJson(t));
    k["inputs"] = in;
    k["outputs"] = out;
    k["bytes_read"] = s.bytes_read ? json(*s.bytes_read) : json(nullptr);
    k["bytes_written"] = s.bytes_written ? json(*s.bytes_written) : json(nullptr);
    steps.push_back(k);
  }
  j["steps"] = steps;
  return j.dump(2, ' ', false, json::error_handler_t::replace);
}

}  // namespace kiln
