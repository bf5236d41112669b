// kiln.Im2Col reads through the float Cast before it (see cast_into_im2col.h).
#include "passes/cast_into_im2col.h"

#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

bool IsFloat(DataType dt) {
  return dt == DataType::kFloat || dt == DataType::kFloat16 || dt == DataType::kBFloat16;
}

}  // namespace

Status RunCastIntoIm2Col(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  Graph& g = *model.graph;
  int count = 0;
  for (Node* n : passes::KilnNodes(g, "Im2Col")) {
    if (n->num_inputs() != 1 || !n->input(0) || n->attr("to")) continue;
    Node* cast = n->input(0)->producer();
    if (!passes::IsOnnxOp(cast, "Cast") || !passes::IsPlainNode(cast, 1)) continue;
    Value* x = cast->input(0);
    const DataType to = n->input(0)->dtype();
    if (!IsFloat(x->dtype()) || !IsFloat(to)) continue;
    Value* cast_out = n->input(0);
    n->SetInput(0, x);
    n->attrs["to"] = Attribute::FromInt(static_cast<int64_t>(to));
    if (cast_out->uses().empty() && !passes::IsAnyGraphOutput(g, cast_out)) g.RemoveNode(cast);
    ++count;
  }
  passes::FinishKilnRewrite(model, ctx, count);
  return Status::Ok();
}

}  // namespace kiln
