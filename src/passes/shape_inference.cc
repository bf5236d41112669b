// Shape and type inference driver: runs every op's InferFn in schedule order,
// merges the result with types declared in the model (value_info), recurses
// into subgraphs through InferContext::InferSubgraph, and computes small
// all-constant results with the CPU reference so shape arithmetic stays exact.
#include "passes/shape_inference.h"

#include "ops/op_table.h"

namespace kiln {
namespace {

bool IsNondeterministic(const Node& n) {
  static const char* kRandom[] = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
                                  "Bernoulli",    "Multinomial",      "Dropout"};
  for (const char* r : kRandom)
    if (n.op_type == r) return true;
  return false;
}

bool HasSubgraph(const Node& n) {
  for (const auto& [k, a] : n.attrs)
    if (a.g || !a.graphs.empty()) return true;
  return false;
}

// Inferred type, with declared information filling what inference left open.
TypeInfo Merge(const TypeInfo& inferred, const TypeInfo& declared) {
  if (!inferred.known()) return declared;
  TypeInfo out = inferred;
  if (declared.kind != inferred.kind || !declared.shape.rank_known()) return out;
  if (!out.shape.rank_known()) {
    out.shape = declared.shape;
    return out;
  }
  if (out.shape.rank() != declared.shape.rank()) return out;
  for (int i = 0; i < out.shape.rank(); ++i)
    if (out.shape[i].unknown()) out.shape[i] = declared.shape[i];
  return out;
}

void SetSymFromData(Value* v) {
  if (!v->data || v->data->dtype() != DataType::kInt64 || v->data->rank() > 1 || v->data->numel() > 64) return;
  std::vector<Dim> dims;
  for (int64_t i = 0; i < v->data->numel(); ++i) dims.push_back(Dim::Constant(v->data->IntAt(i)));
  v->sym_data = std::move(dims);
}

class Inferrer {
 public:
  Inferrer(Model& model, const ShapeInferenceOptions& options) : model_(model), options_(options) {}

  Status InferGraph(Graph& g) {
    KILN_RETURN_IF_ERROR(g.TopologicalSort());
    for (Value* v : g.initializers) {
      if (v->data && !v->type.known()) v->type = TypeInfo::Tensor(v->data->dtype(), v->data->shape());
      SetSymFromData(v);
    }
    for (Node* n : g.nodes()) {
      Status s = InferNode(*n);
      if (s.ok()) continue;
      if (!options_.tolerate_errors) return s;
      if (options_.errors) options_.errors->push_back(s.message());
    }
    return Status::Ok();
  }

  Expected<std::vector<TypeInfo>> InferSubgraph(const Graph& cg, const std::vector<TypeInfo>& inputs) {
    Graph& g = const_cast<Graph&>(cg);  // the model is ours to annotate
    for (size_t i = 0; i < g.inputs.size() && i < inputs.size(); ++i)
      g.inputs[i]->type = Merge(inputs[i], g.inputs[i]->type);
    KILN_RETURN_IF_ERROR(InferGraph(g));
    std::vector<TypeInfo> out;
    for (const Value* v : g.outputs) out.push_back(v->type);
    return out;
  }

 private:
  Status InferNode(Node& n) {
    const OpInfo* op = FindOp(n.domain, n.op_type);
    if (!op) return Unsupported(n.Label() + ": op is not supported by kiln");
    std::vector<TypeInfo> declared;
    for (const Value* v : n.outputs()) declared.push_back(v ? v->type : TypeInfo{});
    InferContext ctx(n, model_.OpsetOf(n.domain),
                     [this](const Graph& sg, const std::vector<TypeInfo>& in) { return InferSubgraph(sg, in); });
    Status s = op->Infer(ctx);
    if (!s.ok()) return s;
    for (size_t i = 0; i < n.num_outputs(); ++i) {
      Value* v = n.output(i);
      if (!v) continue;
      if (v->type.shape.KnownDimsOverflow()) {
        Shape bad = v->type.shape;
        v->type.shape = Shape::Unranked();
        return InvalidArgument(n.Label() + ": output '" + v->name() + "' would have shape " + bad.ToString() +
                               ", whose element count overflows int64");
      }
      v->type = Merge(v->type, declared[i]);
    }
    Fold(n, *op);
    for (Value* v : n.outputs())
      if (v) SetSymFromData(v);
    return Status::Ok();
  }

  // Runs the CPU reference on nodes whose inputs are all constant and whose
  // outputs are small, so later inference sees their values.
  void Fold(Node& n, const OpInfo& op) {
    if (IsNondeterministic(n) || HasSubgraph(n)) return;
    bool any_output = false;  // a node with no outputs has nothing to fold into
    for (const Value* v : n.outputs()) any_output |= v != nullptr;
    if (!any_output) return;
    bool all_data = true;
    for (Value* v : n.outputs())
      if (v && v->data) return;  // the op already set it
    for (const Value* v : n.inputs())
      if (v && !v->data) all_data = false;
    if (!all_data) return;
    for (const Value* v : n.outputs()) {
      if (!v) continue;
      if (v->type.kind != ValueKind::kTensor) return;
      auto c = v->type.shape.concrete();
      if (!c) return;
      int64_t numel = 1;
      for (int64_t d : *c) {
        if (d != 0 && numel > options_.max_fold_elements / d) return;  // too large (and no overflow)
        numel *= d;
      }
    }
    std::vector<RtValue> holders;
    holders.reserve(n.num_inputs());
    std::vector<const RtValue*> inputs;
    for (const Value* v : n.inputs()) {
      if (!v) {
        inputs.push_back(nullptr);
        continue;
      }
      holders.push_back(RtValue::FromTensor(*v->data));
      inputs.push_back(&holders.back());
    }
    RunContext ctx(n, model_.OpsetOf(n.domain), inputs);
    if (!op.Run(ctx).ok()) return;  // not provable here: leave it to run time
    for (size_t i = 0; i < n.num_outputs(); ++i) {
      Value* v = n.output(i);
      if (!v) continue;
      const RtValue& r = ctx.outputs()[i];
      if (r.kind != ValueKind::kTensor || !r.tensor.defined()) continue;
      v->data = r.tensor;
      v->type = TypeInfo::Tensor(r.tensor.dtype(), r.tensor.shape());
    }
  }

  Model& model_;
  const ShapeInferenceOptions& options_;
};

}  // namespace

Status InferShapes(Model& model, const ShapeInferenceOptions& options) {
  if (!model.graph) return InvalidArgument("model has no graph");
  Graph& g = *model.graph;
  for (const auto& [name, shape] : options.input_shapes) {
    Value* v = g.FindValue(name);
    bool is_input = false;
    for (const Value* in : g.inputs) is_input |= (in == v);
    if (!is_input) return InvalidArgument("shape given for '" + name + "', which is not a model input");
    if (v->type.shape.rank_known() && v->type.shape.rank() != shape.rank())
      return InvalidArgument("input '" + name + "' has rank " + std::to_string(v->type.shape.rank()) +
                             ", the given shape " + shape.ToString() + " has rank " + std::to_string(shape.rank()));
    for (int i = 0; i < shape.rank() && v->type.shape.rank_known(); ++i) {
      const Dim& declared = v->type.shape[i];
      if (declared.known() && shape[i].known() && declared.value() != shape[i].value())
        return InvalidArgument("input '" + name + "' has fixed dim " + std::to_string(i) + " = " +
                               declared.ToString() + ", the given shape " + shape.ToString() + " differs");
    }
    if (shape.KnownDimsOverflow())
      return InvalidArgument("input '" + name + "': the given shape " + shape.ToString() +
                             " has an element count that overflows int64");
    v->type.shape = shape;
  }
  Inferrer inf(model, options);
  return inf.InferGraph(g);
}

}  // namespace kiln
