// Build pass: the float tail of an INT8 layer into its epilogue (see qconv_epilogue.h).
#include "passes/qconv_epilogue.h"

#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include "ops/quant_slots.h"
#include "passes/dce.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::IsConstant;

using namespace quant_slots;  // NOLINT: the INT8 layers' input slots
using passes::IsInt8Layer;

Value* InputAt(const Node& n, size_t i) { return i < n.num_inputs() ? n.input(i) : nullptr; }

// Sets input i, padding the omitted inputs before it.
void SetInputAt(Node* n, size_t i, Value* v) {
  while (n->num_inputs() <= i) n->AddInput(nullptr);
  n->SetInput(i, v);
}

bool ScalarFloat(const Value* v) {
  return IsConstant(v) && v->data->dtype() == DataType::kFloat && v->data->numel() == 1;
}

// A per-tensor quantization's constant scale (positive, finite) and int8/uint8 zero point.
bool PerTensorParams(const Node& n) {
  const Value* scale = InputAt(n, 1);
  const Value* zp = InputAt(n, 2);
  if (!ScalarFloat(scale) || !IsConstant(zp) || zp->data->numel() != 1 || !IsInt8Type(zp->data->dtype()))
    return false;
  const float s = scale->data->data<float>()[0];
  return s > 0.f && std::isfinite(s) && passes::AttrInt(n, "block_size", 0) == 0 && !n.attr("output_dtype");
}

class Folder {
 public:
  explicit Folder(Graph& g) : g_(g) {}

  // Takes the tail of `layer` step by step; the count of steps taken.
  int Fold(Node* layer) {
    int steps = 0;
    while (Node* next = Step(layer)) {
      layer = next;
      ++steps;
    }
    return steps;
  }

 private:
  // One step: the rewritten layer (maybe a new node), or nullptr when none applies.
  Node* Step(Node* layer) {
    if (InputAt(*layer, kYScale) || layer->num_outputs() != 1) return nullptr;  // already requantized
    Value* y = layer->output(0);
    if (Node* mul = SwishMul(layer)) return mul == layer ? nullptr : FoldSwish(layer, mul);
    Node* user = passes::SoleUser(g_, y);
    if (!user || user->graph() != &g_ || user->num_outputs() != 1) return nullptr;
    const bool has_act = !passes::AttrString(*layer, "activation", "").empty();
    const bool has_z = InputAt(*layer, kZ) != nullptr;
    const bool float32 = passes::AttrInt(*layer, "to", static_cast<int64_t>(DataType::kFloat)) ==
                         static_cast<int64_t>(DataType::kFloat);
    if (!has_act && !has_z && float32 && passes::IsOnnxOp(user, "Add")) return Residual(layer, user);
    if (!has_act && float32 && (passes::IsOnnxOp(user, "Relu") || passes::IsOnnxOp(user, "Clip")))
      return Activation(layer, user);
    if (float32 && passes::IsOnnxOp(user, "QuantizeLinear")) return Requantize(layer, user);
    return nullptr;
  }

  Node* Residual(Node* layer, Node* add) {
    if (add->num_inputs() != 2) return nullptr;
    Value* y = layer->output(0);
    Value* r = add->input(0) == y ? add->input(1) : add->input(0);
    if (!r || r == y || !passes::SameDims(r->shape(), y->shape()) ||
        !passes::SameDims(add->output(0)->shape(), y->shape()))
      return nullptr;
    Value *z = r, *z_scale = nullptr, *z_zp = nullptr;
    Node* dq = r->producer();
    if (passes::IsOnnxOp(dq, "DequantizeLinear") && dq->num_inputs() == 3 && PerTensorParams(*dq) &&
        dq->input(0) && IsInt8Type(dq->input(0)->dtype())) {
      z = dq->input(0);
      z_scale = dq->input(1);
      z_zp = dq->input(2);
    } else if (r->dtype() != DataType::kFloat) {
      return nullptr;
    }
    // Rebuilt at the Add: r may be computed after the layer.
    Node* f = g_.InsertNode(add, layer->op_type, layer->name, layer->domain);
    f->attrs = layer->attrs;
    for (size_t i = 0; i < layer->num_inputs(); ++i) f->AddInput(layer->input(i));
    SetInputAt(f, kZ, z);
    if (z_scale) {
      SetInputAt(f, kZScale, z_scale);
      SetInputAt(f, kZZp, z_zp);
    }
    Value* out = add->output(0);
    g_.RemoveNode(add);
    g_.RemoveNode(layer);
    f->AddOutput(out);
    return f;
  }

  // SiLU as exporters write it, Mul(y, Sigmoid(y)): y's two users. The Mul, or nullptr when y is not read
  // so (the layer itself when it is, but the layer has an activation already or a non-float32 output).
  Node* SwishMul(Node* layer) {
    Value* y = layer->output(0);
    if (y->uses().size() != 2 || passes::IsAnyGraphOutput(g_, y)) return nullptr;
    Node* sig = nullptr;
    Node* mul = nullptr;
    for (Node* u : y->uses()) {
      if (passes::IsOnnxOp(u, "Sigmoid") && u->num_inputs() == 1) sig = u;
      if (passes::IsOnnxOp(u, "Mul") && u->num_inputs() == 2) mul = u;
    }
    if (!sig || !mul || sig->graph() != &g_ || mul->graph() != &g_) return nullptr;
    Value* s = sig->output(0);
    if (passes::SoleUser(g_, s) != mul ||
        !((mul->input(0) == y && mul->input(1) == s) || (mul->input(1) == y && mul->input(0) == s)))
      return nullptr;
    const bool float32 = passes::AttrInt(*layer, "to", static_cast<int64_t>(DataType::kFloat)) ==
                         static_cast<int64_t>(DataType::kFloat);
    if (!passes::AttrString(*layer, "activation", "").empty() || !float32) return layer;
    return mul;
  }

  Node* FoldSwish(Node* layer, Node* mul) {
    Node* sig = mul->input(0)->producer() == layer ? mul->input(1)->producer() : mul->input(0)->producer();
    layer->attrs["activation"] = Attribute::FromString("Swish");
    Value* out = mul->output(0);
    g_.RemoveNode(mul);
    g_.RemoveNode(sig);
    layer->SetOutput(0, out);
    return layer;
  }

  Node* Activation(Node* layer, Node* act) {
    if (act->op_type == "Relu") {
      layer->attrs["activation"] = Attribute::FromString("Relu");
    } else {
      float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
      if (act->attr("min") || act->attr("max")) {  // Clip-6's attributes
        lo = passes::AttrFloat(*act, "min", lo);
        hi = passes::AttrFloat(*act, "max", hi);
      }
      for (size_t i = 1; i < act->num_inputs(); ++i) {
        const Value* b = act->input(i);
        if (!b) continue;
        if (!ScalarFloat(b)) return nullptr;
        (i == 1 ? lo : hi) = b->data->data<float>()[0];
      }
      layer->attrs["activation"] = Attribute::FromString("Clip");
      if (std::isfinite(lo)) layer->attrs["activation_min"] = Attribute::FromFloat(lo);
      if (std::isfinite(hi)) layer->attrs["activation_max"] = Attribute::FromFloat(hi);
    }
    Value* out = act->output(0);
    g_.RemoveNode(act);
    layer->SetOutput(0, out);
    return layer;
  }

  Node* Requantize(Node* layer, Node* q) {
    if (q->num_inputs() != 3 || !PerTensorParams(*q) || passes::AttrInt(*q, "saturate", 1) != 1)
      return nullptr;
    if (!InputAt(*layer, kBias)) SetInputAt(layer, kBias, nullptr);
    SetInputAt(layer, kYScale, q->input(1));
    SetInputAt(layer, kYZp, q->input(2));
    Value* out = q->output(0);
    g_.RemoveNode(q);
    layer->SetOutput(0, out);
    return layer;
  }

  Graph& g_;
};

// The quantized residual: `layer`'s float output y read by one per-tensor QuantizeLinear and otherwise only
// as other layers' z → the layer writes the int8 tensor and they read it as an int8 z. Without the
// QuantizeLinear, at y's scale in `scales` when there is one. False when neither.
bool QuantizeResidual(Graph& g, Node* layer, const std::map<std::string, float>& scales) {
  if (InputAt(*layer, kYScale) || layer->num_outputs() != 1) return false;
  if (passes::AttrInt(*layer, "to", static_cast<int64_t>(DataType::kFloat)) !=
      static_cast<int64_t>(DataType::kFloat))
    return false;
  Value* y = layer->output(0);
  if (passes::IsAnyGraphOutput(g, y)) return false;
  Node* q = nullptr;
  std::vector<Node*> readers;
  for (Node* u : y->uses()) {
    if (u->graph() != &g) return false;
    if (passes::IsOnnxOp(u, "QuantizeLinear") && u->input(0) == y && !q) {
      q = u;
      continue;
    }
    if (!IsInt8Layer(u) || InputAt(*u, kZ) != y) return false;
    for (size_t i = 0; i < u->num_inputs(); ++i)
      if (i != kZ && u->input(i) == y) return false;
    readers.push_back(u);
  }
  if (readers.empty()) return false;
  Value *yq = nullptr, *scale = nullptr, *zp = nullptr;
  if (q) {
    if (q->num_inputs() != 3 || !PerTensorParams(*q) || passes::AttrInt(*q, "saturate", 1) != 1) return false;
    yq = q->output(0);
    scale = q->input(1);
    zp = q->input(2);
  } else {
    auto s = scales.find(y->name());
    if (s == scales.end() || !(s->second > 0.f) || !std::isfinite(s->second)) return false;
    scale = passes::AddInitializer(g, y->name() + "_int8_scale",
                                   Tensor::FromVector<float>(DataType::kFloat, {}, {s->second}));
    zp = passes::AddInitializer(g, y->name() + "_int8_zero_point",
                                Tensor::FromVector<int8_t>(DataType::kInt8, {}, {0}));
    yq = passes::NewTensorValue(g, y->name() + "_int8", DataType::kInt8, y->shape());
  }
  for (Node* u : readers) {
    SetInputAt(u, kZ, yq);
    SetInputAt(u, kZScale, scale);
    SetInputAt(u, kZZp, zp);
  }
  if (!InputAt(*layer, kBias)) SetInputAt(layer, kBias, nullptr);
  SetInputAt(layer, kYScale, scale);
  SetInputAt(layer, kYZp, zp);
  if (q) g.RemoveNode(q);
  layer->SetOutput(0, yq);
  return true;
}

}  // namespace

Status RunQConvEpilogue(Model& model, PassContext& ctx) { return RunQConvEpilogue(model, ctx, {}); }

Status RunQConvEpilogue(Model& model, PassContext& ctx, const QConvEpilogueOptions& options) {
  if (!model.graph) return Status::Ok();
  Graph& g = *model.graph;
  std::vector<Node*> layers;
  for (Node* n : g.nodes())
    if (IsInt8Layer(n)) layers.push_back(n);
  // Each step removes only the layer's sole user (and rebuilds the layer), never another listed layer.
  int steps = 0;
  Folder folder(g);
  for (Node* n : layers) steps += folder.Fold(n);
  // After every layer took its tail: the readers of a residual are layers by now.
  if (options.quantized_residuals) {
    layers.clear();
    for (Node* n : g.nodes())
      if (IsInt8Layer(n)) layers.push_back(n);
    for (Node* n : layers) steps += QuantizeResidual(g, n, options.residual_scales) ? 1 : 0;
  }
  if (steps == 0) return Status::Ok();
  ctx.changed = true;
  g.RemoveUnusedValues();
  PassContext dce;  // DequantizeLinears whose int8 input a layer now reads as z
  return RunDeadCodeElimination(model, dce);
}

}  // namespace kiln
