#include "passes/fp16.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_set>
#include <utility>

#include "backend/gpu_caps.h"
#include "passes/pass_util.h"
#include "passes/shape_inference.h"

namespace kiln {
namespace {

// Finite float32 constants beyond FP16's range saturate to ±65504 instead of
// becoming infinities (as TensorRT clamps weights): exporters write
// finfo(float32).min as the "minus infinity" of attention masks, as in
// (1 - mask) * -3.4e38, and with an infinite constant the kept positions
// compute 0 * -inf = NaN. Infinities and NaNs stay what they are.
Tensor ToHalf(const Tensor& t) {
  constexpr float kHalfMax = 65504.0f;
  Tensor h(DataType::kFloat16, t.dims());
  const float* src = t.data<float>();
  Half* dst = h.mutable_data<Half>();
  const int64_t n = t.numel();  // (not in the loop condition: numel() multiplies the dims on every call)
  for (int64_t i = 0; i < n; ++i) {
    const float v = src[i];
    dst[i] = Half(std::isfinite(v) ? std::clamp(v, -kHalfMax, kHalfMax) : v);
  }
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
      if (u->domain == "kiln" && u->op_type == "F8MatMul" && (i == 1 || i == 3)) return true;  // FP8 scales
      if (u->domain == "kiln" && u->op_type == "QuantizeE4M3" && i == 1) return true;
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

Node* NodeAfter(const Graph& g, const Node* n) {
  std::vector<Node*> all = g.nodes();
  for (size_t i = 0; i + 1 < all.size(); ++i)
    if (all[i] == n) return all[i + 1];
  return nullptr;
}

Node* InsertCast(Graph& g, Node* before, Value* in, Value* out, DataType to) {
  Node* c = g.InsertNode(before, "Cast", g.UniqueName(in->name() + (to == DataType::kFloat ? "_to_fp32" : "_to_fp16")));
  c->attrs["to"] = Attribute::FromInt(static_cast<int64_t>(to));
  c->AddInput(in);
  c->AddOutput(out);
  return c;
}

// The nodes of an INT8 layer: kiln's quantized products and the ONNX
// Quantize/DequantizeLinear around them. Their scales are float32 and
// their scale epilogues compute in FP32, so they keep float32 and Casts join
// them to the FP16 graph (--int8 --fp16: the layers INT8 leaves run FP16).
// (kiln.QuantizeE4M3 and kiln.F8MatMul convert: they read and write FP16, their
// scales stay float32.)
bool IsQuantizedLayerNode(const Node& n) {
  if (n.domain == "kiln") return passes::IsInt8Layer(&n);
  return n.domain.empty() && (n.op_type == "QuantizeLinear" || n.op_type == "DequantizeLinear");
}

bool ReturnedBySubgraph(const Graph& g, const Value* v) {
  bool found = false;
  for (const Node* n : g.nodes())
    ForEachSubgraph(*n, [&](Graph& sg) {
      found = found || passes::IsGraphOutput(sg, v) || ReturnedBySubgraph(sg, v);
    });
  return found;
}

// Makes the island nodes (`*fp32` on entry) read and write float32 once the
// rest of the graph is float16: a float value they read from outside the
// island goes through a Cast to float32 (added to `*fp32`, so its `to` stays);
// a constant or a Cast from an integer only they read stays float32 (added to
// `*keep` / `*fp32`), one they share with FP16 nodes gets a float32 copy; an
// island value read outside the island (or returned by a subgraph) goes
// through a Cast to float16. The top graph's float32 inputs and outputs need
// no Cast: the caller leaves them float32.
void IsolateIslands(Graph& top, std::unordered_set<const Node*>* fp32, std::unordered_set<Value*>* keep) {
  const std::unordered_set<const Node*> island = *fp32;
  auto only_island = [&](const Value* v) {
    for (const Node* u : v->uses())
      if (!island.count(u)) return false;
    return !passes::IsAnyGraphOutput(top, v);
  };
  std::vector<Node*> nodes;  // graph order, a subgraph's after its graph's
  passes::ForEachGraph(top, [&](Graph& g) {
    for (Node* n : g.nodes())
      if (island.count(n)) nodes.push_back(n);
  });
  std::map<std::pair<const Value*, const Graph*>, Value*> widened;
  for (Node* n : nodes) {
    Graph& g = *n->graph();
    for (size_t i = 0; i < n->num_inputs(); ++i) {
      Value* v = n->input(i);
      if (!v || v->dtype() != DataType::kFloat || passes::IsGraphInput(top, v)) continue;
      Node* p = v->producer();
      if (p && island.count(p)) continue;
      // A Cast from an integer (a Range's count, positions) stays a Cast to float32: through float16 it would
      // be exact only to 2048.
      const bool from_integer = p && passes::IsOnnxOp(p, "Cast") && p->num_inputs() > 0 && p->input(0) &&
                                !IsFloatingPoint(p->input(0)->dtype());
      if (p && (passes::IsOnnxOp(p, "Constant") || from_integer) && only_island(v)) {
        fp32->insert(p);
        continue;
      }
      Value*& w = widened[{v, &g}];
      if (!w && from_integer) {
        w = g.AddValue(g.UniqueName(v->name() + "_fp32"));
        fp32->insert(InsertCast(g, n, p->input(0), w, DataType::kFloat));
      } else if (!w && v->data && !p) {
        w = only_island(v) ? v : passes::AddInitializer(*v->graph(), v->name() + "_fp32", *v->data);
        keep->insert(w);
      } else if (!w) {
        w = g.AddValue(g.UniqueName(v->name() + "_fp32"));
        fp32->insert(InsertCast(g, n, v, w, DataType::kFloat));
      }
      if (w != v) n->SetInput(i, w);
    }
  }
  for (Node* n : nodes) {
    Graph& g = *n->graph();
    for (Value* v : n->outputs()) {
      if (!v || v->dtype() != DataType::kFloat) continue;
      // In use order, once each (not a pointer-keyed set: the Casts' use lists, and so
      // the passes after, must not depend on addresses; deterministic builds).
      std::vector<Node*> users;
      for (Node* u : v->uses())
        if (!island.count(u) && std::find(users.begin(), users.end(), u) == users.end()) users.push_back(u);
      bool own_output = &g != &top && passes::IsGraphOutput(g, v);
      if (users.empty() && !own_output && !ReturnedBySubgraph(g, v)) continue;
      Value* half = g.AddValue(g.UniqueName(v->name() + "_fp16"));
      InsertCast(g, NodeAfter(g, n), v, half, DataType::kFloat16);
      for (Node* u : users)
        for (size_t i = 0; i < u->num_inputs(); ++i)
          if (u->input(i) == v) u->SetInput(i, half);
      RedirectSubgraphOutputs(g, v, half);
      if (own_output)
        for (Value*& o : g.outputs)
          if (o == v) o = half;
    }
  }
}

// Float32 weights, constants and attributes of `g` and of its subgraphs
// (If/Loop/Scan bodies) become float16, so a body that mixes a captured outer
// value with its own constants computes in one type. `keep` are the top
// graph's inputs and the FP32 islands' constants, which stay float32; the
// attributes of `fp32` nodes (islands and their boundary Casts) stay as they are.
void ConvertConstants(Graph& g, const std::unordered_set<Value*>& keep, const std::unordered_set<const Node*>& fp32) {
  for (Value* v : g.values()) {
    if (keep.count(v)) continue;
    if (v->data && v->data->dtype() == DataType::kFloat && !MustStayFloat32(v)) {
      v->data = ToHalf(*v->data);
      v->type = TypeInfo::Tensor(DataType::kFloat16, v->data->shape());
    }
  }
  for (Node* n : g.nodes()) {
    if (!fp32.count(n)) RetypeAttributeTensors(*n);
    ForEachSubgraph(*n, [&](Graph& sg) { ConvertConstants(sg, keep, fp32); });
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

Status RunConvertToFp16(Model& model, PassContext& ctx) { return RunConvertToFp16(model, ctx, Fp16Options{}); }

Status RunConvertToFp16(Model& model, PassContext& ctx, const Fp16Options& options) {
  Graph& g = *model.graph;
  // FP32 islands (passes/fp32_islands.h): their nodes keep float32.
  std::unordered_set<const Node*> fp32;
  std::unordered_set<Value*> keep(g.inputs.begin(), g.inputs.end());
  std::vector<Fp32Node> islands;
  if (options.fp32_islands) islands = FindFp32Islands(model, options.islands);
  // Nodes whose CUDA kernel takes float32 but not float16 (NonMaxSuppression)
  // keep float32 too, whatever the islands option says: the build would fail.
  std::unordered_set<const Node*> listed;
  for (const Fp32Node& i : islands) listed.insert(i.node);
  passes::ForEachGraph(g, [&](Graph& sg) {
    for (const Node* n : sg.nodes()) {
      if (listed.count(n)) continue;
      if (IsQuantizedLayerNode(*n)) {
        islands.push_back({n, kQuantizedLayerReason});
        continue;
      }
      const GpuOpCaps* caps = FindGpuCaps(n->domain, n->op_type);
      if (caps && (caps->types & TypeBit(DataType::kFloat)) && !(caps->types & TypeBit(DataType::kFloat16)) &&
          n->num_inputs() > static_cast<size_t>(caps->typed_input) && n->input(caps->typed_input) &&
          n->input(caps->typed_input)->dtype() == DataType::kFloat)
        islands.push_back({n, "its CUDA kernel takes float32 only"});
    }
  });
  for (const Fp32Node& i : islands) fp32.insert(i.node);
  if (!islands.empty()) IsolateIslands(g, &fp32, &keep);
  if (options.report) *options.report = std::move(islands);
  std::unordered_set<Value*> io(g.inputs.begin(), g.inputs.end());
  // Float32 graph inputs: the model keeps them; a Cast feeds the FP16 graph
  // (nodes inside subgraphs that capture the input included).
  for (Value* in : std::vector<Value*>(g.inputs)) {
    if (in->data || in->dtype() != DataType::kFloat) continue;
    // Island nodes read the float32 input itself.
    std::vector<Node*> users;
    for (Node* u : in->uses())
      if (!fp32.count(u)) users.push_back(u);
    if (users.empty() && !in->uses().empty() && !ReturnedBySubgraph(g, in)) continue;
    Value* half = g.AddValue(g.UniqueName(in->name() + "_fp16"));
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
  ConvertConstants(g, keep, fp32);
  // Float32 graph outputs: cast back at the end.
  for (Value*& out : g.outputs) {
    if (out->dtype() != DataType::kFloat) continue;
    Node* producer = out->producer();
    if (!producer || fp32.count(producer)) continue;  // an island's output stays float32
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
