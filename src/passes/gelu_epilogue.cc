// A GELU after a product into the product's cuBLASLt epilogue (see gelu_epilogue.h).
#include "passes/gelu_epilogue.h"

#include <string>

#include "passes/pass_util.h"

namespace kiln {

Status RunGeluEpilogue(Model& model, PassContext& ctx, std::vector<std::string>* report) {
  if (!model.graph) return InvalidArgument("model has no graph");
  Graph& g = *model.graph;
  int taken = 0;
  for (Node* mm : passes::KilnNodes(g, "FusedMatMul")) {
    if (mm->num_outputs() != 1 || (mm->num_inputs() > 3 && mm->input(3)) ||
        !passes::AttrString(*mm, "activation", "").empty())
      continue;
    Value* y = mm->output(0);
    Node* gelu = passes::SoleUser(g, y);
    if (!passes::IsGeluNode(gelu) || gelu->input(0) != y || gelu->output(0)->dtype() != y->dtype()) continue;
    const bool erf = passes::AttrString(*gelu, "approximate", "none") != "tanh";
    const bool half = y->dtype() == DataType::kFloat16 || y->dtype() == DataType::kBFloat16;
    if (erf && !half) continue;
    const std::string label = gelu->Label();
    Value* out = gelu->output(0);
    g.RemoveNode(gelu);
    mm->SetOutput(0, out);
    mm->attrs["activation"] = Attribute::FromString("GeluTanh");
    ++taken;
    if (report && erf)
      report->push_back(mm->Label() + " takes " + label +
                        " as cuBLASLt's tanh-form GELU epilogue (within 4.8e-4 of the erf form, below " +
                        std::string(DataTypeName(y->dtype())) + "'s resolution there)");
  }
  if (taken > 0) {
    g.RemoveUnusedValues();
    ctx.changed = true;
  }
  return Status::Ok();
}

}  // namespace kiln
