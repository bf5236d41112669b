#include "build/refit.h"

#include <utility>
#include <vector>

#include "build/build_passes.h"
#include "ir/printer.h"
#include "kiln/refit.h"
#include "onnx/import.h"
#include "passes/shape_inference.h"
#include "plan/plan_config.h"
#include "plan/plan_graph.h"

namespace kiln {
namespace {

bool IsWeight(const Value* v) { return v && v->data && !v->producer(); }

std::string TypeOf(const Tensor& t) { return std::string(DataTypeName(t.dtype())) + t.shape().ToString(); }

std::string Names(const std::vector<Value*>& values) {
  std::string s;
  for (const Value* v : values) s += (s.empty() ? "" : ", ") + (v ? v->name() : std::string("<omitted>"));
  return "(" + s + ")";
}

// Walks the built graph and the fresh one side by side, collecting the weight
// swaps; the first difference is the error.
class Matcher {
 public:
  explicit Matcher(std::string fresh) : fresh_(std::move(fresh)) {}
  std::vector<std::pair<Value*, Tensor>> swaps;

  Status Graphs(Graph& b, const Graph& f, const std::string& where) {
    KILN_RETURN_IF_ERROR(Io("input", b.inputs, f.inputs, where));
    KILN_RETURN_IF_ERROR(Io("output", b.outputs, f.outputs, where));
    std::vector<Node*> bn = b.nodes(), fn = f.nodes();
    for (size_t i = 0; i < bn.size() && i < fn.size(); ++i)
      KILN_RETURN_IF_ERROR(Nodes(*bn[i], *fn[i], where));
    if (bn.size() != fn.size())
      return Differs(where + "the plan has " + std::to_string(bn.size()) + " nodes, " + fresh_ + " " +
                     std::to_string(fn.size()) + " after the build passes");
    for (Value* v : b.values()) {
      if (!IsWeight(v)) continue;
      const Value* w = f.FindValue(v->name());
      if (!IsWeight(w))
        return InvalidArgument("refit: " + where + "weight '" + v->name() + "' of the plan is not in " +
                               fresh_ + " after the build passes");
      if (v->data->dtype() != w->data->dtype() || v->data->dims() != w->data->dims())
        return InvalidArgument("refit: " + where + "weight '" + v->name() + "' is " + TypeOf(*v->data) +
                               " in the plan, " + TypeOf(*w->data) + " in " + fresh_ +
                               " after the build passes");
      swaps.emplace_back(v, *w->data);
    }
    for (const Value* w : f.values())
      if (IsWeight(w) && !IsWeight(b.FindValue(w->name())))
        return InvalidArgument("refit: " + where + fresh_ + " has weight '" + w->name() +
                               "' after the build passes, which the plan has not");
    return Status::Ok();
  }

 private:
  Status Differs(const std::string& what) const {
    return InvalidArgument("refit: graph structure differs: " + what +
                           " (refit needs the same architecture)");
  }

  Status Io(const char* kind, const std::vector<Value*>& b, const std::vector<Value*>& f,
            const std::string& where) {
    for (size_t i = 0; i < b.size() || i < f.size(); ++i) {
      std::string bs = i < b.size() ? b[i]->name() + " " + b[i]->type.ToString() : "none";
      std::string fs = i < f.size() ? f[i]->name() + " " + f[i]->type.ToString() : "none";
      if (bs != fs)
        return Differs(where + std::string(kind) + " " + std::to_string(i) + " is " + bs + " in the plan, " +
                       fs + " in " + fresh_);
    }
    return Status::Ok();
  }

  Status Nodes(Node& b, const Node& f, const std::string& where) {
    if (b.op_type != f.op_type || b.domain != f.domain || Names(b.inputs()) != Names(f.inputs()) ||
        Names(b.outputs()) != Names(f.outputs()))
      return Differs(where + "the plan has " + b.Label() + " " + Names(b.inputs()) + " → " +
                     Names(b.outputs()) + " where " + fresh_ + " has " + f.Label() + " " + Names(f.inputs()) +
                     " → " + Names(f.outputs()));
    PrintOptions shapes_only;
    shapes_only.max_tensor_elements = -1;  // tensor attributes compared by type, weights by the walk
    for (size_t i = 0; i < 2; ++i) {       // keys of each side missing in the other
      const AttributeMap& x = i ? f.attrs : b.attrs;
      const AttributeMap& y = i ? b.attrs : f.attrs;
      for (const auto& [name, a] : x)
        if (!y.count(name))
          return Differs(where + b.Label() + ": attribute '" + name + "' only in " +
                         (i ? fresh_ : "the plan"));
    }
    for (auto& [name, a] : b.attrs) {
      const Attribute& o = f.attrs.at(name);
      std::string in = where + b.Label() + " attribute '" + name + "': ";
      if (a.type != o.type || a.graphs.size() != o.graphs.size() || !a.g != !o.g)
        return Differs(in + "of another type");
      if (a.g) KILN_RETURN_IF_ERROR(Graphs(*a.g, *o.g, in));
      for (size_t k = 0; k < a.graphs.size(); ++k)
        KILN_RETURN_IF_ERROR(Graphs(*a.graphs[k], *o.graphs[k], in));
      if (!a.g && a.graphs.empty() && PrintAttribute(a, shapes_only) != PrintAttribute(o, shapes_only))
        return Differs(in + PrintAttribute(a, shapes_only) + " in the plan, " +
                       PrintAttribute(o, shapes_only) + " in " + fresh_);
    }
    return Status::Ok();
  }

  std::string fresh_;
};

// Forgets what shape inference folded into node outputs, in every graph.
void ClearFolded(Graph& g) {
  for (Value* v : g.values())
    if (v->producer()) {
      v->data.reset();
      v->sym_data.reset();
    }
  for (Node* n : g.nodes())
    for (auto& [name, a] : n->attrs) {
      if (a.g) ClearFolded(*a.g);
      for (auto& sg : a.graphs)
        if (sg) ClearFolded(*sg);
    }
}

}  // namespace

Expected<std::unique_ptr<Model>> LoadForRefit(const std::string& onnx_path, const BuildOptions& options) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadModel(onnx_path));
  KILN_RETURN_IF_ERROR(InferShapes(*model));
  std::vector<std::string> notes;
  KILN_RETURN_IF_ERROR(RunBuildPasses(*model, options, &notes));
  return model;
}

Status RefitModel(Model& built, const Model& fresh, const std::string& fresh_label) {
  Matcher m(fresh_label);
  KILN_RETURN_IF_ERROR(m.Graphs(*built.graph, *fresh.graph, ""));
  for (auto& [value, tensor] : m.swaps) value->data = std::move(tensor);
  ClearFolded(*built.graph);
  return InferShapes(built).WithPrefix("refit: shape inference after the swap");
}

Status RefitPlan(const std::string& plan_path, const std::string& onnx_path, const std::string& out_path) {
  KILN_ASSIGN_OR_RETURN(PlanFile plan, ReadPlanFile(plan_path));
  auto config = plan.sections.find("config");
  if (config == plan.sections.end())
    return InvalidArgument(plan_path + ": corrupted plan: no 'config' section");
  KILN_ASSIGN_OR_RETURN(EngineConfig cfg, ConfigFromJson(config->second));
  auto built = ParsePlanGraph(plan);
  if (!built.ok()) return built.status().WithPrefix(plan_path);
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Model> fresh, LoadForRefit(onnx_path, BuildOptionsOf(cfg)));
  KILN_RETURN_IF_ERROR(RefitModel(**built, *fresh, onnx_path));
  // The folded node outputs are computed again from the new weights.
  for (Value* v : (*built)->graph->values())
    if (v->producer()) v->data.reset();
  KILN_RETURN_IF_ERROR(InferShapes(**built).WithPrefix(plan_path + ": the refitted graph"));
  WritePlanGraph(**built, &plan);
  return WritePlanFile(plan, out_path);
}

}  // namespace kiln
