#include "passes/fp16.h"

#include <unordered_set>

#include "passes/shape_inference.h"

namespace kiln {
namespace {

Tensor ToHalf(const Tensor& t) {
  Tensor h(DataType::kFloat16, t.dims());
  const float* src = t.data<float>();
  Half* dst = h.mutable_data<Half>();
  for (int64_t i = 0; i < t.numel(); ++i) dst[i] = Half(src[i]);
  return h;
}

void RetypeAttributeTensors(Node& n) {
  for (auto& [name, a] : n.attrs) {
    if (a.type == Attribute::Type::kTensor && a.t.dtype() == DataType::kFloat) a.t = ToHalf(a.t);
    if (a.type == Attribute::Type::kInt && (name == "to" || name == "dtype") &&
        a.i == static_cast<int64_t>(DataType::kFloat))
      a.i = static_cast<int64_t>(DataType::kFloat16);
  }
  if (n.op_type == "Constant") {
    // value_float / value_floats would make float32: turn them into a float16 tensor.
    for (const char* key : {"value_float", "value_floats"}) {
      auto it = n.attrs.find(key);
      if (it == n.attrs.end()) continue;
      std::vector<float> v = it->second.type == Attribute::Type::kFloat ? std::vector<float>{it->second.f}
                                                                        : it->second.floats;
      std::vector<int64_t> dims;
      if (it->second.type == Attribute::Type::kFloats) dims.push_back(static_cast<int64_t>(v.size()));
      Attribute t = Attribute::FromTensor(ToHalf(Tensor::FromVector<float>(DataType::kFloat, dims, v)));
      n.attrs.erase(it);
      n.attrs["value"] = t;
      break;
    }
  }
}

// Inputs whose type is always float32 in the spec, whatever the data type.
bool MustStayFloat32(const Value* v) {
  for (const Node* u : v->uses()) {
    for (size_t i = 0; i < u->num_inputs(); ++i) {
      if (u->input(i) != v) continue;
      if (u->op_type == "Resize" && (i == 1 || i == 2)) return true;
      if (u->op_type == "Upsample" && i == 1) return true;
    }
  }
  return false;
}

template <class F>
void ForEachSubgraph(const Node& n, F&& f) {
  for (const auto& [name, a] : n.attrs) {
    if (a.g) f(*a.g);
    for (const auto& sg : a.graphs) f(*sg);
  }
}

// Subgraph outputs are no node uses: a body that returns `from` (an outer
// value) directly must return `to` instead.
void RedirectSubgraphOutputs(const Graph& g, Value* from, Value* to) {
  for (const Node* n : g.nodes())
    ForEachSubgraph(*n, [&](Graph& sg) {
      for (Value*& o : sg.outputs)
        if (o == from) o = to;
      RedirectSubgraphOutputs(sg, from, to);
    });
}

// Float32 weights, constants and attributes of `g` and of its subgraphs
// (If/Loop/Scan bodies) become float16, so a body that mixes a captured outer
// value with its own constants computes in one type. `keep` are the top
// graph's inputs, which stay float32.
void ConvertConstants(Graph& g, const std::unordered_set<Value*>& keep) {
  for (Value* v : g.values()) {
    if (keep.count(v)) continue;
    if (v->data && v->data->dtype() == DataType::kFloat && !MustStayFloat32(v)) {
      v->data = ToHalf(*v->data);
      v->type = TypeInfo::Tensor(DataType::kFloat16, v->data->shape());
    }
  }
  for (Node* n : g.nodes()) {
    RetypeAttributeTensors(*n);
    ForEachSubgraph(*n, [&](Graph& sg) { ConvertConstants(sg, keep); });
  }
}

// Forgets the derived types of a subgraph (recursively) so inference
// re-derives them from the converted values. A float32 body input becomes
// float16: the outer value it is bound to (a loop-carried or scanned tensor)
// is float16 now.
void ResetSubgraphTypes(Graph& g) {
  for (Value* v : g.inputs)
    if (v->type.dtype == DataType::kFloat && !MustStayFloat32(v)) v->type.dtype = DataType::kFloat16;
  std::unordered_set<Value*> inputs(g.inputs.begin(), g.inputs.end());
  for (Value* v : g.values()) {
    if (inputs.count(v) || (v->data && !v->producer()) || MustStayFloat32(v)) continue;
    v->type = TypeInfo{};
    if (v->producer()) {
      v->data.reset();
      v->sym_data.reset();
    }
  }
  for (Node* n : g.nodes()) ForEachSubgraph(*n, [](Graph& sg) { ResetSubgraphTypes(sg); });
}

}  // namespace

Status RunConvertToFp16(Model& model, PassContext& ctx) {
  Graph& g = *model.graph;
  std::unordered_set<Value*> io(g.inputs.begin(), g.inputs.end());
  // Float32 graph inputs: the model keeps them; a Cast feeds the FP16 graph
  // (nodes inside subgraphs that capture the input included).
  for (Value* in : std::vector<Value*>(g.inputs)) {
    if (in->data || in->dtype() != DataType::kFloat) continue;
    Value* half = g.AddValue(g.UniqueName(in->name() + "_fp16"));
    std::vector<Node*> users = in->uses();
    for (Node* u : users)
      for (size_t i = 0; i < u->num_inputs(); ++i)
        if (u->input(i) == in) u->SetInput(i, half);
    RedirectSubgraphOutputs(g, in, half);
    Node* cast = g.InsertNode(g.num_nodes() ? g.nodes().front() : nullptr, "Cast", g.UniqueName(in->name() + "_to_fp16"));
    cast->attrs["to"] = Attribute::FromInt(static_cast<int64_t>(DataType::kFloat16));
    cast->AddInput(in);
    cast->AddOutput(half);
  }
  // Weights and constants, in subgraphs too.
  ConvertConstants(g, io);
  // Float32 graph outputs: cast back at the end.
  for (Value*& out : g.outputs) {
    if (out->dtype() != DataType::kFloat) continue;
    Node* producer = out->producer();
    if (!producer) continue;
    std::string name = out->name();
    Value* half = g.AddValue(g.UniqueName(name + "_fp16"));
    for (size_t i = 0; i < producer->num_outputs(); ++i)
      if (producer->output(i) == out) producer->SetOutput(i, half);
    std::vector<Node*> users = out->uses();
    for (Node* u : users)
      for (size_t i = 0; i < u->num_inputs(); ++i)
        if (u->input(i) == out) u->SetInput(i, half);
    RedirectSubgraphOutputs(g, out, half);
    Node* cast = g.AddNode("Cast", g.UniqueName(name + "_to_fp32"));
    cast->attrs["to"] = Attribute::FromInt(static_cast<int64_t>(DataType::kFloat));
    cast->AddInput(half);
    cast->AddOutput(out);
  }
  // Re-derive every intermediate type from the new weights.
  for (Value* v : g.values()) {
    bool is_output = false;
    for (Value* o : g.outputs) is_output |= o == v;
    if (io.count(v) || is_output || (v->data && !v->producer()) || MustStayFloat32(v)) continue;
    v->type = TypeInfo{};
    if (v->producer()) {
      v->data.reset();
      v->sym_data.reset();
    }
  }
  for (Node* n : g.nodes()) ForEachSubgraph(*n, [](Graph& sg) { ResetSubgraphTypes(sg); });
  ctx.changed = true;
  return InferShapes(model);
}

}  // namespace kiln
