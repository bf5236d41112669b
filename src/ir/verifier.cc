// The IR verifier: structure (names, scopes, cycles, order), versions,
// attributes, op support, and declared-vs-inferred shapes.
#include "ir/verifier.h"

#include <algorithm>
#include <functional>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "ir/verifier_attrs.h"
#include "onnx/versions.h"
#include "ops/op_table.h"
#include "passes/shape_inference.h"

namespace kiln {
namespace {

using Severity = Issue::Severity;

std::string GraphWhere(const Graph& g, bool is_main) { return is_main ? "" : " in graph '" + g.name + "'"; }

class Checker {
 public:
  Checker(const Model& m, const VerifyOptions& o, std::vector<Issue>* out) : model_(m), options_(o), out_(out) {}

  void Run() {
    CheckVersions();
    if (!model_.graph) {
      Error("", "the model has no graph");
      return;
    }
    if (model_.graph->parent) Error("", "the main graph has a parent graph");
    CheckGraph(*model_.graph, true);
  }

 private:
  void Error(const std::string& node, std::string msg) { out_->push_back({Severity::kError, node, std::move(msg)}); }

  void CheckVersions() {
    if (model_.ir_version < kMinIrVersion || model_.ir_version > kMaxIrVersion)
      Error("", "IR version " + std::to_string(model_.ir_version) + " is not supported (kiln reads " +
                    std::to_string(kMinIrVersion) + ".." + std::to_string(kMaxIrVersion) + ")");
    for (const auto& [domain, version] : model_.opsets) {
      bool dflt = domain.empty() || domain == "ai.onnx";
      if (dflt && (version < kMinOpset || version > kMaxOpset))
        Error("", "default-domain opset " + std::to_string(version) + " is not supported (kiln reads " +
                      std::to_string(kMinOpset) + ".." + std::to_string(kMaxOpset) + ")");
      else if (version < 1)
        Error("", "opset of domain '" + domain + "' has invalid version " + std::to_string(version));
    }
  }

  const std::unordered_set<const Value*>& InputsOf(const Graph& g) {
    auto it = inputs_.find(&g);
    if (it != inputs_.end()) return it->second;
    return inputs_[&g] = std::unordered_set<const Value*>(g.inputs.begin(), g.inputs.end());
  }

  static bool InScope(const Graph& g, const Value* v) {
    for (const Graph* s = &g; s; s = s->parent)
      if (v->graph() == s) return true;
    return false;
  }

  bool IsDefined(const Value* v) {
    if (v->producer()) return true;
    if (v->data) return true;
    return v->graph() && InputsOf(*v->graph()).count(v) > 0;
  }

  // Values of graph `g` used by nodes inside the subgraphs of `n` (implicit inputs).
  static void ImplicitInputs(const Node& n, const Graph& g, std::vector<const Value*>* out) {
    for (const auto& [name, a] : n.attrs) {
      std::vector<const Graph*> subs;
      if (a.g) subs.push_back(a.g.get());
      for (const auto& sg : a.graphs)
        if (sg) subs.push_back(sg.get());
      for (const Graph* sub : subs) {
        for (const Node* sn : sub->nodes()) {
          for (const Value* v : sn->inputs())
            if (v && v->graph() == &g) out->push_back(v);
          ImplicitInputs(*sn, g, out);
        }
        for (const Value* v : sub->outputs)
          if (v && v->graph() == &g) out->push_back(v);
      }
    }
  }

  void CheckNames(const Graph& g, const std::string& where) {
    std::unordered_set<const Value*> inits(g.initializers.begin(), g.initializers.end());
    const auto& inputs = InputsOf(g);
    std::map<std::string, std::vector<const Value*>> defs;
    for (const Value* v : g.values()) {
      bool defined = v->producer() || inputs.count(v) || inits.count(v) || (v->data && !v->uses().empty());
      if (defined && !v->name().empty()) defs[v->name()].push_back(v);
      if (v->producer() && inputs.count(v))
        Error(v->producer()->name, "graph input '" + v->name() + "'" + where + " is also produced by " +
                                       v->producer()->Label());
      else if (v->producer() && inits.count(v))
        Error(v->producer()->name, "initializer '" + v->name() + "'" + where + " is also produced by " +
                                       v->producer()->Label());
    }
    for (const auto& [name, vs] : defs) {
      if (vs.size() < 2) continue;
      std::string by;
      for (const Value* v : vs) {
        if (!by.empty()) by += ", ";
        by += v->producer() ? v->producer()->Label() : inputs.count(v) ? "a graph input" : "an initializer";
      }
      Error(vs[1]->producer() ? vs[1]->producer()->name : "",
            "value '" + name + "'" + where + " is defined " + std::to_string(vs.size()) + " times (by " + by + ")");
    }
    std::set<std::string> seen;
    for (const Value* v : g.inputs) {
      if (!v) {
        Error("", "a graph input" + where + " is null");
        continue;
      }
      if (!seen.insert(v->name()).second) Error("", "graph input '" + v->name() + "'" + where + " is listed twice");
    }
    for (const Value* v : g.initializers) {
      if (!v->data) {
        Error("", "initializer '" + v->name() + "'" + where + " has no data");
        continue;
      }
      const TypeInfo& t = v->type;
      const Tensor& d = *v->data;
      bool mismatch = t.known() && t.dtype != d.dtype();
      if (t.shape.rank_known()) {
        if (t.shape.rank() != d.rank()) mismatch = true;
        else
          for (int i = 0; i < d.rank(); ++i)
            if (t.shape[static_cast<size_t>(i)].known() && t.shape[static_cast<size_t>(i)].value() != d.dim(i))
              mismatch = true;
      }
      if (mismatch)
        Error("", "initializer '" + v->name() + "'" + where + " is declared " + t.ToString() + " but holds " +
                      d.Describe());
    }
    seen.clear();
    for (const Value* v : g.outputs) {
      if (!v) {
        Error("", "a graph output" + where + " is null");
        continue;
      }
      if (!seen.insert(v->name()).second) Error("", "graph output '" + v->name() + "'" + where + " is listed twice");
      if (!InScope(g, v))
        Error("", "graph output '" + v->name() + "'" + where + " belongs to a graph out of scope");
      else if (!IsDefined(v))
        Error("", "graph output '" + v->name() + "'" + where +
                      " is not produced by any node and is not a graph input or initializer");
    }
  }

  // Cycles and schedule order (implicit subgraph inputs included).
  void CheckOrder(const Graph& g, const std::string& where) {
    std::vector<Node*> nodes = g.nodes();
    std::unordered_map<const Node*, size_t> index;
    for (size_t i = 0; i < nodes.size(); ++i) index[nodes[i]] = i;
    std::vector<std::vector<size_t>> deps(nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) {
      std::vector<const Value*> ins(nodes[i]->inputs().begin(), nodes[i]->inputs().end());
      ImplicitInputs(*nodes[i], g, &ins);
      for (const Value* v : ins) {
        if (!v || !v->producer()) continue;
        auto it = index.find(v->producer());
        if (it != index.end()) deps[i].push_back(it->second);
      }
    }
    // Kahn's algorithm to find nodes on (or behind) a cycle.
    std::vector<size_t> pending(nodes.size());
    std::vector<std::vector<size_t>> users(nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) {
      std::sort(deps[i].begin(), deps[i].end());
      deps[i].erase(std::unique(deps[i].begin(), deps[i].end()), deps[i].end());
      pending[i] = deps[i].size();
      for (size_t d : deps[i]) users[d].push_back(i);
    }
    std::vector<size_t> ready;
    for (size_t i = 0; i < nodes.size(); ++i)
      if (pending[i] == 0) ready.push_back(i);
    size_t done = 0;
    while (!ready.empty()) {
      size_t i = ready.back();
      ready.pop_back();
      ++done;
      for (size_t u : users[i])
        if (--pending[u] == 0) ready.push_back(u);
    }
    if (done != nodes.size()) {
      std::string names;
      int listed = 0;
      const Node* first = nullptr;
      for (size_t i = 0; i < nodes.size() && listed < 4; ++i)
        if (pending[i] != 0) {
          if (!first) first = nodes[i];
          names += (listed++ ? ", " : "") + nodes[i]->Label();
        }
      Error(first ? first->name : "", "graph '" + g.name + "' has a cycle through " + names);
      return;
    }
    for (size_t i = 0; i < nodes.size(); ++i)
      for (size_t d : deps[i])
        if (d > i) {
          Error(nodes[i]->name, nodes[i]->Label() + where + " runs before " + nodes[d]->Label() +
                                    ", which produces one of its inputs (nodes are not in topological order)");
          break;
        }
  }

  void CheckNode(const Node& n, const Graph& g, const std::string& where) {
    if (n.op_type.empty()) Error(n.name, n.Label() + where + ": node has no op_type");
    if (n.graph() != &g) Error(n.name, n.Label() + where + ": node's graph pointer is wrong");
    for (size_t i = 0; i < n.num_inputs(); ++i) {
      const Value* v = n.input(i);
      if (!v) continue;
      if (!InScope(g, v))
        Error(n.name, n.Label() + where + ": input '" + v->name() + "' belongs to a graph out of scope");
      else if (!IsDefined(v))
        Error(n.name, n.Label() + where + ": input '" + v->name() +
                          "' is not produced by any node and is not a graph input or initializer");
      if (v && std::find(v->uses().begin(), v->uses().end(), &n) == v->uses().end())
        Error(n.name, n.Label() + where + ": value '" + v->name() + "' does not list the node as a user");
    }
    for (const Value* v : n.outputs())
      if (v && v->producer() != &n && v->producer())
        Error(n.name, n.Label() + where + ": output '" + v->name() + "' is produced by " + v->producer()->Label());
    std::string domain = n.domain == "ai.onnx" ? "" : n.domain;
    int64_t opset = model_.OpsetOf(domain);
    if (opset == 0 && reported_domains_.insert(domain).second)
      Error(n.name, n.Label() + where + ": the model imports no opset for domain '" +
                        (domain.empty() ? std::string("ai.onnx") : domain) + "'");
    verifier_internal::CheckAttributes(n, opset, where, out_);
    if (options_.check_op_support && !FindOp(domain, n.op_type))
      out_->push_back({Severity::kUnsupported, n.name,
                       n.Label() + where + ": kiln has no implementation of op '" +
                           (domain.empty() ? n.op_type : domain + "." + n.op_type) + "'"});
    for (const auto& [name, a] : n.attrs) {
      std::vector<const Graph*> subs;
      if (a.type == Attribute::Type::kGraph && a.g) subs.push_back(a.g.get());
      for (const auto& sg : a.graphs)
        if (sg) subs.push_back(sg.get());
      for (const Graph* sub : subs) {
        if (sub->parent != &g)
          Error(n.name, n.Label() + where + ": subgraph '" + sub->name + "' of attribute '" + name +
                            "' does not have the node's graph as parent");
        CheckGraph(*sub, false);
      }
    }
  }

  void CheckGraph(const Graph& g, bool is_main) {
    if (!visited_.insert(&g).second) {
      Error("", "graph '" + g.name + "' is used as a subgraph more than once");
      return;
    }
    std::string where = GraphWhere(g, is_main);
    CheckNames(g, where);
    CheckOrder(g, where);
    for (const Node* n : g.nodes()) CheckNode(*n, g, where);
  }

  const Model& model_;
  const VerifyOptions& options_;
  std::vector<Issue>* out_;
  std::unordered_map<const Graph*, std::unordered_set<const Value*>> inputs_;
  std::set<std::string> reported_domains_;
  std::unordered_set<const Graph*> visited_;
};

// Declared types of values inference will compute (node outputs), by value.
void CollectDeclared(const Graph& g, std::vector<std::pair<const Value*, TypeInfo>>* out) {
  for (const Node* n : g.nodes()) {
    for (const Value* v : n->outputs())
      if (v && !v->data && (v->type.known() || v->type.shape.rank_known())) out->push_back({v, v->type});
    for (const auto& [name, a] : n->attrs) {
      if (a.g) CollectDeclared(*a.g, out);
      for (const auto& sg : a.graphs)
        if (sg) CollectDeclared(*sg, out);
    }
  }
}

}  // namespace

const char* SeverityName(Issue::Severity s) {
  switch (s) {
    case Severity::kError: return "error";
    case Severity::kUnsupported: return "unsupported";
    case Severity::kWarning: return "warning";
  }
  return "error";
}

std::string Issue::ToString() const { return std::string(SeverityName(severity)) + ": " + message; }

std::vector<Issue> CheckModel(const Model& model, const VerifyOptions& options) {
  std::vector<Issue> issues;
  Checker(model, options, &issues).Run();
  return issues;
}

Status VerifyModel(const Model& model) {
  VerifyOptions options;
  options.check_op_support = false;
  std::vector<Issue> issues = CheckModel(model, options);
  const Issue* first = nullptr;
  size_t errors = 0;
  for (const Issue& i : issues)
    if (i.severity == Severity::kError) {
      if (!first) first = &i;
      ++errors;
    }
  if (!first) return Status::Ok();
  std::string msg = first->message;
  if (errors > 1) msg += " (and " + std::to_string(errors - 1) + " more problems)";
  return InvalidArgument(msg);
}

std::vector<Issue> CheckShapes(Model& model) {
  std::vector<Issue> issues;
  if (!model.graph) return issues;
  std::vector<std::pair<const Value*, TypeInfo>> declared;
  CollectDeclared(*model.graph, &declared);
  ShapeInferenceOptions options;
  options.tolerate_errors = true;
  Status st = InferShapes(model, options);
  if (!st.ok()) issues.push_back({Severity::kWarning, "", "shape inference failed: " + st.message()});
  for (const auto& [v, decl] : declared) {
    const TypeInfo& inf = v->type;
    std::string who = "value '" + v->name() + "'" + (v->producer() ? " (output of " + v->producer()->Label() + ")" : "");
    std::string node = v->producer() ? v->producer()->name : "";
    std::string both = ": declared " + decl.ToString() + " but inference gives " + inf.ToString();
    if (decl.kind != inf.kind && inf.known()) {
      issues.push_back({Severity::kError, node, who + both});
      continue;
    }
    if (decl.known() && inf.known() && decl.dtype != inf.dtype) {
      issues.push_back({Severity::kError, node, who + both});
      continue;
    }
    if (!decl.shape.rank_known() || !inf.shape.rank_known()) continue;
    bool bad = decl.shape.rank() != inf.shape.rank();
    for (int i = 0; !bad && i < decl.shape.rank(); ++i) {
      const Dim& a = decl.shape[static_cast<size_t>(i)];
      const Dim& b = inf.shape[static_cast<size_t>(i)];
      if (a.known() && b.known() && a.value() != b.value()) bad = true;
    }
    if (bad) issues.push_back({Severity::kError, node, who + both});
  }
  return issues;
}

}  // namespace kiln
