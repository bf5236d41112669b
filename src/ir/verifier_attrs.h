// Internal to the verifier: attribute names/types of well-known ONNX ops.
#pragma once

#include <vector>

#include "ir/graph.h"
#include "ir/verifier.h"

namespace kiln {
namespace verifier_internal {

// Reports attributes of default-domain ops whose type differs from what ONNX
// specifies (e.g. Conv 'strides' must be ints), missing required attributes,
// and untyped or unresolved (ref_attr_name) attributes of any op.
void CheckAttributes(const Node& node, int64_t opset, const std::string& where, std::vector<Issue>* issues);

}  // namespace verifier_internal
}  // namespace kiln
