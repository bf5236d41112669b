// A GELU after a product into the product's cuBLASLt epilogue (see gelu_epilogue.h).
#include "passes/gelu_epilogue.h"

#include <algorithm>
#include <string>

#include "passes/pass_util.h"

namespace kiln {

namespace {

// A plain MatMul by constant weights whose batch dims are 1 (fuse_gpu's condition for kiln.FusedMatMul),
// read only by a GELU: fuse_gpu leaves a product with no bias, residual or ReLU as it is (ConvNeXt's and
// other bias-free Linears), so it becomes a kiln.FusedMatMul here to take the GELU.
Node* AsFusedProduct(Graph& g, Node* mm) {
  if (!passes::IsOnnxOp(mm, "MatMul") || !passes::IsPlainNode(mm, 2)) return nullptr;
  const Value* b = mm->input(1);
  const Value* y = mm->output(0);
  if (!passes::IsConstant(b) || b->data->rank() < 2 || b->data->dtype() != y->dtype() ||
      !passes::IsArithmeticFloat(y->dtype()) ||
      !passes::HasRank(mm->input(0), std::max(2, y->shape().rank())) ||
      !passes::IsGeluNode(passes::SoleUser(g, mm->output(0))))
    return nullptr;
  for (int d = 0; d + 2 < b->data->rank(); ++d)
    if (b->data->dim(d) != 1) return nullptr;
  Node* fused = g.InsertNode(mm, "FusedMatMul", mm->name, "kiln");
  fused->AddInput(mm->input(0));
  fused->AddInput(mm->input(1));
  fused->attrs["activation"] = Attribute::FromString("");
  Value* out = mm->output(0);
  g.RemoveNode(mm);
  fused->AddOutput(out);
  return fused;
}

}  // namespace

Status RunGeluEpilogue(Model& model, PassContext& ctx, std::vector<std::string>* report) {
  if (!model.graph) return InvalidArgument("model has no graph");
  Graph& g = *model.graph;
  int taken = 0;
  int made = 0;
  std::vector<Node*> products;
  for (Node* n : std::vector<Node*>(g.nodes())) {
    if (passes::IsKilnOp(n, "FusedMatMul")) {
      products.push_back(n);
    } else if (Node* fused = AsFusedProduct(g, n)) {
      products.push_back(fused);
      ++made;
    }
  }
  for (Node* mm : products) {
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
  passes::FinishKilnRewrite(model, ctx, taken + made);
  return Status::Ok();
}

}  // namespace kiln
