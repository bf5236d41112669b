// The inline_if pass: Ifs whose condition is a constant become the branch
// they take (ir/inline_if.h, which the GPU runtime also runs at each shape).
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunInlineIf(Model& model, PassContext& ctx);

}  // namespace kiln
