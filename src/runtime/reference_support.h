// What the lean runtime (kiln::runtime) leaves to the builder library
// (kiln::builder), which links shape inference and the CPU reference kernels:
//  - shape inference at run time, for plans whose shape program is
//    incomplete (value-dependent shapes, control flow, shape-tensor inputs:
//    runtime/shape_program.h);
//  - CPU plans (the reference executor).
// The builder passes one to the engines it builds, and kiln::BuilderLoadOptions()
// to Engine::Load. Without one, loading a plan that needs it fails and says so.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/inline_if.h"
#include "kiln/engine.h"
#include "plan/plan_file.h"

namespace kiln {

class ReferenceSupport {
 public:
  virtual ~ReferenceSupport() = default;
  // Infers shapes on `clone` (the engine's model, with the shape-tensor
  // inputs' values and the extents read at sync points already set) at
  // `input_shapes`, folding what the host computes, up to `max_fold_elements`
  // elements a value; then inlines the Ifs whose condition folded, calling
  // `trace` for each node it copies out of a branch, and infers again.
  virtual Status InferAtShapes(Model& clone, const std::map<std::string, std::vector<int64_t>>& input_shapes,
                               int64_t max_fold_elements, const InlineTrace& trace) const = 0;
  // The engine of a plan built for the CPU backend.
  virtual Expected<std::shared_ptr<Engine>> LoadCpuPlan(const PlanFile& plan) const = 0;
};

}  // namespace kiln
