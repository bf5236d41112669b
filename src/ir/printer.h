// Stable text form of the IR, for `kiln inspect --ir`, debugging and golden
// tests. The output is deterministic (attributes sorted by name, nodes in
// schedule order) and deliberately simple:
//
//   opset ai.onnx=17
//   graph main_graph {
//     input %x: float32[batch,3,224,224]
//     init %w: float32[64,3,7,7]
//     %y = Conv[group=1, kernel_shape=[7,7], pads=[3,3,3,3]](%x, %w)  # /conv1/Conv
//     %a, %b = Split[axis=0](%y, _)  # split
//     %z = If[else_branch=<graph>, then_branch=<graph>](%c)  # if0
//       else_branch: graph else_body {
//         ...
//       }
//     output %y: float32[batch,64,112,112]
//   }
//
// Omitted inputs print as `_`, floats in shortest round-trip form with a
// decimal point (1.0, 0.5, 1e-05), strings quoted, tensors of at most 8
// elements in full (float32[2]{1.0, 2.0}) and larger ones abbreviated
// (float32[64,3]{...}). Initializer data is never printed.
#pragma once

#include <string>

#include "ir/graph.h"

namespace kiln {

struct PrintOptions {
  // Also print each node output's type: `%y: float32[1,64,112,112] = Conv(...)`.
  bool value_types = false;
  // Tensors with at most this many elements are printed in full.
  int max_tensor_elements = 8;
};

// The whole model: opsets, main graph, model-local functions.
std::string PrintGraph(const Model& model, const PrintOptions& options = {});
// One graph (and its subgraphs), indented by `indent` spaces.
std::string PrintGraph(const Graph& graph, const PrintOptions& options = {}, int indent = 0);
// One attribute value as the printer shows it (graphs as <graph>).
std::string PrintAttribute(const Attribute& attr, const PrintOptions& options = {});

}  // namespace kiln
