// Internal to src/onnx: inlines calls to model-local functions
// (ModelProto.functions) into plain nodes, so the rest of kiln never sees a
// function call.
#pragma once

#include "kiln/status.h"
#include "onnx.pb.h"

namespace kiln {
namespace onnx_internal {

// Replaces every call to a model-local function (in the main graph, its
// subgraphs and in other function bodies) by the function's nodes: formal
// inputs/outputs become the call's names, internal values get fresh unique
// names ("<call node>/<name>"), attribute references (ref_attr_name) take the
// call's attribute or the function's default. Adds the functions' opset
// imports the model lacks, then drops ModelProto.functions.
Status InlineLocalFunctions(onnx::ModelProto* model);

}  // namespace onnx_internal
}  // namespace kiln
