// Text pieces the kernel generators share (pointwise_source.cc, row_source.cc):
// the prelude, load/store suffixes, inlined constants.
#pragma once

#include <string>

#include "core/dtype.h"
#include "ir/graph.h"

namespace kiln::codegen {

// The helpers every generated kernel starts with (pointwise_prelude.inc),
// followed by the parameter block's definition.
const std::string& Prelude();
// The load/store suffix of an element type (kiln_ld_<suffix>), or nullptr.
const char* Suffix(DataType dt);
// A one-element float/bool constant as a literal, or "" when it is not one.
std::string ConstantLiteral(const Value& v);

}  // namespace kiln::codegen
