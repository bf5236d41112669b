// The plan's 'graph' and 'weights' sections: the optimized model the plan
// runs, in kiln's binary IR (plan/ir_codec.h). Read with its shapes inferred
// (what the runtime and a refit work on).
#pragma once

#include <memory>
#include <string>

#include "ir/graph.h"
#include "plan/plan_file.h"

namespace kiln {

// Sets the plan's 'graph' and 'weights' sections.
void WritePlanGraph(const Model& model, PlanFile* plan);
// The model of the plan's 'graph' section, shapes inferred; an error naming
// the section when it is missing or unreadable.
Expected<std::unique_ptr<Model>> ParsePlanGraph(const PlanFile& plan);

}  // namespace kiln
