// The next product's E4M3 quantization into its producer (see f8_epilogue.h).
// f8_epilogue.h).
#include "passes/f8_epilogue.h"

#include <cmath>
#include <optional>

#include "passes/pass_util.h"

namespace kiln {
namespace {

constexpr size_t kZ = 5, kYScaleInv = 6;  // ops/kiln_f8.cc

using passes::IsKilnOp;
using passes::SoleUser;

// The product's float16 output, with no residual, and an activation the E4M3 epilogue keeps.
bool Takes(const Node& mm) {
  if (passes::AttrInt(mm, "to", 1) != static_cast<int64_t>(DataType::kFloat16) || mm.input(kZ) ||
      mm.input(kYScaleInv) || mm.num_outputs() != 1)
    return false;
  const std::string act = passes::AttrString(mm, "activation", "");
  return act.empty() || act == "Relu";
}

// The constant scale of QuantizeE4M3 node q: positive, finite, float32.
std::optional<float> QuantizeScale(const Node& q) {
  if (q.num_inputs() != 2 || q.num_outputs() != 1 || !q.input(1) || q.input(1)->dtype() != DataType::kFloat)
    return std::nullopt;
  const std::optional<double> s = passes::ConstScalar(q.input(1));
  if (!s || !(*s > 0) || !std::isfinite(*s)) return std::nullopt;
  return static_cast<float>(*s);
}

// A LayerNormalization over the last axis with only Y used, and a QuantizeE4M3 of Y among Y's users
// ⇒ kiln.LayerNormE4M3(x, scale, bias, q_scale) → (Y, the quantization's output).
bool TakeIntoLayerNorm(Graph& g, Node* ln, std::vector<std::string>* report) {
  if (ln->num_inputs() < 2 || !ln->output(0) || !ln->input(0)->shape().rank_known()) return false;
  for (size_t i = 1; i < ln->num_outputs(); ++i)
    if (ln->output(i) && (!ln->output(i)->uses().empty() || passes::IsGraphOutput(g, ln->output(i))))
      return false;
  const int64_t rank = ln->input(0)->shape().rank(), axis = passes::AttrInt(*ln, "axis", -1);
  if (axis != -1 && axis != rank - 1) return false;
  if (passes::AttrInt(*ln, "stash_type", 1) != 1) return false;
  Value* y = ln->output(0);
  Node* q = nullptr;
  for (Node* u : y->uses())
    if (IsKilnOp(u, "QuantizeE4M3") && u->graph() == &g && u->input(0) == y && QuantizeScale(*u)) q = u;
  if (!q) return false;
  Node* f = g.InsertNode(ln, "LayerNormE4M3", ln->name, "kiln");
  for (const char* a : {"axis", "epsilon"})
    if (const Attribute* at = ln->attr(a)) f->attrs[a] = *at;
  f->AddInput(ln->input(0));
  f->AddInput(ln->input(1));
  f->AddInput(ln->num_inputs() > 2 ? ln->input(2) : nullptr);
  f->AddInput(q->input(1));
  Value* yq = q->output(0);
  const std::string label = ln->Label(), qlabel = q->Label();
  g.RemoveNode(q);
  g.RemoveNode(ln);
  f->AddOutput(y);
  f->AddOutput(yq);
  if (report) report->push_back(label + " writes " + qlabel + " too: one kernel stores y and its E4M3 copy");
  return true;
}

}  // namespace

Status RunFuseF8Epilogue(Model& model, PassContext& ctx, std::vector<std::string>* report) {
  if (!model.graph) return InvalidArgument("model has no graph");
  Graph& g = *model.graph;
  for (Node* mm : passes::KilnNodes(g, "F8MatMul")) {
    if (!Takes(*mm)) continue;
    Value* y = mm->output(0);
    Node* next = SoleUser(g, y);
    Node* gelu = nullptr;
    if (passes::IsGeluNode(next) && passes::AttrString(*mm, "activation", "").empty()) {
      gelu = next;
      next = SoleUser(g, gelu->output(0));
    }
    const std::optional<float> scale = IsKilnOp(next, "QuantizeE4M3") ? QuantizeScale(*next) : std::nullopt;
    if (!scale) continue;
    const float inv = 1.f / *scale;
    if (!std::isfinite(inv)) continue;
    while (mm->num_inputs() < kYScaleInv) mm->AddInput(nullptr);
    mm->AddInput(passes::AddInitializer(g, mm->name + "_y_scale_inv",
                                        Tensor::FromVector<float>(DataType::kFloat, {}, {inv})));
    mm->attrs["to"] = Attribute::FromInt(static_cast<int64_t>(DataType::kFloat8E4M3FN));
    std::string what = "its output's E4M3 quantization (" + next->Label() + ")";
    if (gelu) {
      mm->attrs["activation"] = Attribute::FromString("GeluTanh");
      const bool erf = passes::AttrString(*gelu, "approximate", "none") != "tanh";
      what = gelu->Label() + (erf ? " as cuBLASLt's tanh-form GELU (within 4.8e-4 of the erf form)" : "") +
             " and " + what;
    }
    Value* q = next->output(0);
    g.RemoveNode(next);
    if (gelu) g.RemoveNode(gelu);
    mm->SetOutput(0, q);
    g.RemoveUnusedValues();
    if (report) report->push_back(mm->Label() + " takes " + what + " into its epilogue: it writes E4M3");
    ctx.changed = true;
  }
  std::vector<Node*> norms;  // collected first: a rewrite removes QuantizeE4M3 nodes
  for (Node* n : g.nodes())
    if (passes::IsOnnxOp(n, "LayerNormalization")) norms.push_back(n);
  for (Node* ln : norms)
    if (TakeIntoLayerNorm(g, ln, report)) ctx.changed = true;
  return Status::Ok();
}

}  // namespace kiln
