// The CUDA op table's declared capabilities (see gpu_caps.h).
#include "backend/gpu_caps.h"

#include <map>

namespace kiln {

const std::vector<GpuOpRow>& GpuOpRows() {
  static const std::vector<GpuOpRow> rows = {
#define KILN_CUDA_OP(domain, name, factory, caps) {domain, #name, caps},
#include "backend/cuda/cuda_ops.def"
#undef KILN_CUDA_OP
  };
  return rows;
}

const GpuOpCaps* FindGpuCaps(std::string_view domain, std::string_view op_type) {
  std::string_view d = domain == "ai.onnx" ? std::string_view() : domain;
  for (const GpuOpRow& r : GpuOpRows())
    if (r.domain == d && r.op_type == op_type) return &r.caps;
  return nullptr;
}

std::string TypeSetToString(TypeSet types) {
  std::string s;
  for (int i = 1; i < 32; ++i)
    if (types & (TypeSet{1} << i)) s += (s.empty() ? "" : ", ") + std::string(DataTypeName(static_cast<DataType>(i)));
  return s.empty() ? "no types" : s;
}

bool IsGpuAliasOp(const Node& n) {
  if (!n.domain.empty()) return false;
  static const char* kAlias[] = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"};
  for (const char* a : kAlias) {
    if (n.op_type != a) continue;
    if (n.op_type != "Dropout") return true;
    // Dropout is the identity in inference: no mask output, training_mode absent or a constant false, or a
    // constant ratio of 0 (as passes/eliminate_identity.cc).
    if (n.num_outputs() > 1 && n.output(1)) return false;
    auto constant_is = [](const Value* v, double want) {
      return v && v->data && v->data->numel() == 1 && v->data->ScalarAt(0) == want;
    };
    const Value* training = n.num_inputs() > 2 ? n.input(2) : nullptr;
    return !training || constant_is(training, 0) || constant_is(n.input(1), 0);
  }
  return false;
}

std::unordered_set<const Value*> HostShapeValues(const Graph& g, const std::unordered_set<const Value*>& seeds) {
  std::unordered_set<const Value*> host = seeds;
  for (const Value* v : g.values())
    if (v->data) host.insert(v);
  for (const Node* n : g.nodes()) {
    bool from_shapes = n->op_type == "Shape" || n->op_type == "Size";
    bool subgraph = false;  // If/Loop/Scan bodies read values that are not inputs
    for (const auto& [name, a] : n->attrs) subgraph |= a.g || !a.graphs.empty();
    if (subgraph) continue;
    if (!from_shapes) {
      from_shapes = n->num_inputs() > 0;
      for (const Value* v : n->inputs())
        if (v && !host.count(v)) from_shapes = false;
    }
    if (from_shapes)
      for (const Value* o : n->outputs())
        if (o) host.insert(o);
  }
  return host;
}

std::unordered_set<const Value*> ShapeTensorInputs(const Graph& g) {
  std::unordered_set<const Value*> candidates;
  for (const Value* v : g.inputs)
    if (!v->data && (IsSignedInteger(v->dtype()) || IsUnsignedInteger(v->dtype()) || IsFloatingPoint(v->dtype())) && v->type.shape.rank_known() &&
        v->type.shape.rank() <= 1)
      candidates.insert(v);
  if (candidates.empty()) return {};
  const std::unordered_set<const Value*> host = HostShapeValues(g, candidates);
  std::unordered_set<const Value*> found, seen;
  std::vector<const Value*> stack;
  for (const Node* n : g.nodes()) {
    const GpuOpCaps* caps = FindGpuCaps(n->domain, n->op_type);
    if (!caps) continue;
    for (size_t i = 0; i < n->num_inputs() && i < 32; ++i)
      if ((caps->host_inputs >> i & 1u) && n->input(i) && host.count(n->input(i))) stack.push_back(n->input(i));
  }
  while (!stack.empty()) {  // back through the host arithmetic to the inputs it reads
    const Value* v = stack.back();
    stack.pop_back();
    if (!seen.insert(v).second) continue;
    if (candidates.count(v)) found.insert(v);
    if (const Node* p = v->producer())
      for (const Value* in : p->inputs())
        if (in && host.count(in)) stack.push_back(in);
  }
  return found;
}

namespace {

// Known, or an expression over the graph inputs' symbols (bound to any value
// here): not a dim that only a run can tell (an unknown dim, or a symbol that
// a declared output type introduced).
bool ShapeFollowsFromInputs(const Value* v, const std::map<std::string, int64_t>& input_symbols) {
  if (!v || v->type.kind != ValueKind::kTensor || !v->type.shape.rank_known()) return false;
  for (const Dim& d : v->type.shape.dims())
    if (!d.known() && !(d.symbolic() && d.Evaluate(input_symbols).has_value())) return false;
  return true;
}

}  // namespace

std::vector<const Node*> FindSyncPoints(const Graph& g) {
  std::map<std::string, int64_t> input_symbols;
  for (const Value* in : g.inputs)
    if (in->type.shape.rank_known())
      for (const Dim& d : in->type.shape.dims())
        if (d.symbolic()) input_symbols[d.symbol()] = 2;
  // A host value not known before the run (computed from the shape a sync
  // point read): nodes reading one are folded after that sync, not synced on.
  const std::unordered_set<const Value*> host = HostShapeValues(g, ShapeTensorInputs(g));
  std::vector<const Node*> out;
  for (const Node* n : g.nodes()) {
    bool inputs = true, outputs = true;
    for (const Value* v : n->inputs())
      if (v) inputs &= ShapeFollowsFromInputs(v, input_symbols) && !(host.count(v) && !v->data);
    for (const Value* v : n->outputs())
      if (v) outputs &= ShapeFollowsFromInputs(v, input_symbols);
    if (inputs && !outputs) out.push_back(n);
  }
  return out;
}

namespace {

std::string Describe(const Value* v) { return "'" + v->name() + "' " + v->type.ToString(); }

}  // namespace

Status CheckGpuCaps(const Node& n, int64_t opset, const std::unordered_set<const Value*>& host_values) {
  const GpuOpCaps* caps = FindGpuCaps(n.domain, n.op_type);
  if (!caps) return Unsupported(n.Label() + ": no CUDA kernel for this op");
  if (opset < caps->min_opset || opset > caps->max_opset)
    return Unsupported(n.Label() + ": opset " + std::to_string(opset) + " of this op has no CUDA kernel (supported: " +
                       std::to_string(caps->min_opset) +
                       (caps->max_opset == kAnyOpset ? " and later" : " to " + std::to_string(caps->max_opset)) + ")");
  auto typed = [&](const Value* v, TypeSet allowed, const std::string& which) -> Status {
    if (!v || v->type.kind != ValueKind::kTensor || v->dtype() == DataType::kUndefined) return Status::Ok();
    if (allowed & TypeBit(v->dtype())) return Status::Ok();
    return Unsupported(n.Label() + ": " + which + " " + Describe(v) + ": the CUDA kernel takes " +
                       TypeSetToString(allowed));
  };
  if (caps->typed_input < static_cast<int>(n.num_inputs()))
    KILN_RETURN_IF_ERROR(typed(n.input(caps->typed_input), caps->types, "input " + std::to_string(caps->typed_input)));
  if (caps->output_types && n.num_outputs() > 0) KILN_RETURN_IF_ERROR(typed(n.output(0), caps->output_types, "output 0"));
  for (size_t i = 0; i < n.num_inputs() && i < 32; ++i) {
    const Value* v = n.input(i);
    if (v && (caps->host_inputs >> i & 1u) && !host_values.count(v))
      return Unsupported(n.Label() + ": input " + std::to_string(i) + " " + Describe(v) +
                         " must be known before the run on the GPU (a constant, or computed from shapes)");
  }
  return Status::Ok();
}

namespace {

// The nodes of `g` (the main graph, or a branch whose enclosing values in
// `outer_host` are known on the host) that the GPU cannot run.
void GapsIn(const Model& m, const Graph& g, const std::unordered_set<const Value*>& outer_host, const GpuProbe& probe,
            std::vector<std::pair<std::string, std::string>>* kernels, std::vector<GpuGap>* gaps) {
  std::unordered_set<const Value*> seeds = outer_host;
  if (!g.parent)
    for (const Value* v : ShapeTensorInputs(g)) seeds.insert(v);
  std::unordered_set<const Value*> host = HostShapeValues(g, seeds);
  for (const Node* n : g.nodes()) {
    bool on_host = n->num_outputs() > 0 && n->op_type != "If";
    for (const Value* o : n->outputs())
      if (o && !host.count(o)) on_host = false;
    std::string kernel = n->op_type;
    if (on_host) {
      kernel = "host shape arithmetic";
    } else if (IsGpuAliasOp(*n)) {
      kernel = "alias (no kernel)";
    } else if (n->op_type == "If" && n->domain.empty()) {
      // Inlined at each input shape once its condition folds (passes/inline_if.h).
      const Value* cond = n->num_inputs() ? n->input(0) : nullptr;
      if (!cond || !host.count(cond)) {
        gaps->push_back({n, n->Label() + ": the condition " + (cond ? "'" + cond->name() + "' " : "") +
                                "is computed on the GPU; kiln runs an If whose condition is known before the "
                                "run (constants, shape arithmetic)"});
        continue;
      }
      kernel = "branch inlined at each shape";
      for (const char* b : {"then_branch", "else_branch"})
        if (const Attribute* a = n->attr(b); a && a->g) GapsIn(m, *a->g, host, probe, nullptr, gaps);
    } else {
      int64_t opset = m.OpsetOf(n->domain);
      Status s = CheckGpuCaps(*n, opset, host);
      if (s.ok() && probe) s = probe(*n, opset);
      if (!s.ok()) {
        gaps->push_back({n, s.message()});
        continue;
      }
    }
    if (kernels) kernels->emplace_back(n->name, kernel);
  }
}

}  // namespace

std::vector<GpuGap> FindGpuGaps(const Model& m, const GpuProbe& probe,
                                std::vector<std::pair<std::string, std::string>>* kernels) {
  std::vector<GpuGap> gaps;
  GapsIn(m, *m.graph, {}, probe, kernels, &gaps);
  return gaps;
}

}  // namespace kiln
