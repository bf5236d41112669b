// E4M3 output and GELU into kiln.F8MatMul's epilogue (see f8_epilogue.h).
#include "passes/f8_epilogue.h"

#include <cmath>

#include "passes/pass_util.h"

namespace kiln {
namespace {

constexpr size_t kZ = 5, kYScaleInv = 6;  // ops/kiln_f8.cc

bool IsKilnOp(const Node* n, const char* op) { return n && n->domain == "kiln" && n->op_type == op; }

// The only user of v, a node of g, when v is not a graph output.
Node* SoleUser(Graph& g, Value* v) {
  if (!passes::HasSingleUse(g, v)) return nullptr;
  Node* u = v->uses()[0];
  return u->graph() == &g ? u : nullptr;
}

bool IsGelu(const Node* n) {
  return (IsKilnOp(n, "Gelu") || passes::IsOnnxOp(n, "Gelu")) && n->num_inputs() == 1 &&
         n->num_outputs() == 1;
}

// The product's float16 output, with no residual, and an activation the E4M3 epilogue keeps.
bool Takes(const Node& mm) {
  if (passes::AttrInt(mm, "to", 1) != static_cast<int64_t>(DataType::kFloat16) || mm.input(kZ) ||
      mm.input(kYScaleInv) || mm.num_outputs() != 1)
    return false;
  const std::string act = passes::AttrString(mm, "activation", "");
  return act.empty() || act == "Relu";
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
    if (IsGelu(next) && passes::AttrString(*mm, "activation", "").empty()) {
      gelu = next;
      next = SoleUser(g, gelu->output(0));
    }
    if (!IsKilnOp(next, "QuantizeE4M3") || next->num_inputs() != 2 || next->num_outputs() != 1) continue;
    const std::optional<double> scale = passes::ConstScalar(next->input(1));
    if (!scale || !(*scale > 0) || !std::isfinite(*scale) || next->input(1)->dtype() != DataType::kFloat)
      continue;
    const float inv = 1.f / static_cast<float>(*scale);
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
  return Status::Ok();
}

}  // namespace kiln
