// Chains of layout ops (Transpose and the reshapes: Reshape, Flatten, Squeeze, Unsqueeze), each op's output
// read only by the next: what the passes that rewrite such chains as a whole (permute_chains,
// inner_axis_last) walk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "ir/graph.h"

namespace kiln::passes {

// A Transpose with one input and output.
bool IsLayoutTranspose(const Node* n);
// Reshape (allowzero 0), Flatten, Squeeze or Unsqueeze whose output rank is known.
bool IsLayoutReshape(const Node* n);
bool IsLayoutOp(const Node* n);

// A Transpose's permutation for an input of `rank` axes: its perm attribute, or ONNX's default, the axes
// reversed.
std::vector<int64_t> TransposePermOf(const Node& n, size_t rank);

// The graph's maximal chains of layout ops, in graph order: each starts at a layout op not fed by one, and
// goes on while the output has a single use (in this graph, as the next op's data input).
std::vector<std::vector<Node*>> LayoutChains(Graph& g);

}  // namespace kiln::passes
