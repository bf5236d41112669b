// The plan's 'graph', 'weights' and 'folded' sections: the optimized model the
// plan runs, in kiln's binary IR (plan/ir_codec.h), with the types shape
// inference gave at build time and the node outputs it folded. Reading runs no
// shape inference (the runtime links none); a caller that needs it (the CPU
// engine, inspect, refit) runs InferShapes on the result.
#pragma once

#include <memory>
#include <string>

#include "ir/graph.h"
#include "plan/plan_file.h"

namespace kiln {

// Sets the plan's 'graph', 'weights' and 'folded' sections.
void WritePlanGraph(const Model& model, PlanFile* plan);
// The model of the plan's 'graph' section with its folded values; an error
// naming the section when it is missing or unreadable.
Expected<std::unique_ptr<Model>> ParsePlanGraph(const PlanFile& plan);

}  // namespace kiln
