#include "passes/inline_if.h"

#include "ir/inline_if.h"

namespace kiln {

Status RunInlineIf(Model& model, PassContext& ctx) {
  if (!model.graph) return Status::Ok();
  bool changed = false;
  KILN_RETURN_IF_ERROR(InlineDecidedIfs(*model.graph, nullptr, &changed));
  ctx.changed |= changed;
  return Status::Ok();
}

}  // namespace kiln
