// The CPU reference executor: runs the IR op by op with the ops' plain-loop
// CPU reference implementations. It is the oracle the passes and the CUDA
// backend are tested against.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ops/op_context.h"

namespace kiln {

class ReferenceExecutor {
 public:
  // The model must outlive the executor.
  explicit ReferenceExecutor(const Model& model) : model_(model) {}

  // Runs the main graph. `inputs` maps graph input names to values; every
  // graph input without an initializer must be given. Returns the graph
  // outputs in order. Errors name the failing node.
  Expected<std::vector<RtValue>> Run(const std::map<std::string, RtValue>& inputs) const;

 private:
  const Model& model_;
};

}  // namespace kiln
