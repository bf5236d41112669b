// Inlines decided conditionals: an If whose condition is known (a constant, or
// folded from shapes) is replaced by the nodes of the branch it takes, copied
// into its graph before it, and one Identity per output that keeps the If's
// output values (names and types unchanged). Nested Ifs that become decided
// are inlined too. The GPU runtime runs it at each input shape, where
// conditions on shapes fold (TensorRT's IIfConditional with a build-time
// condition); in the builder (passes/inline_if.h) it removes Ifs on constants.
#pragma once

#include <functional>

#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln {

// Called for each node made: `copy` in the graph, `source` the branch node it
// copies (or the If itself, for the output Identities).
using InlineTrace = std::function<void(const Node* copy, const Node* source)>;

// In `g` only (the top level; branches that get inlined are searched in turn).
// Sets *changed when anything was inlined.
Status InlineDecidedIfs(Graph& g, const InlineTrace& trace, bool* changed);

}  // namespace kiln
