// The plan's 'graph' section: the optimized model the plan runs. Read with
// its shapes inferred (what the runtime and a refit work on).
#pragma once

#include <memory>
#include <string>

#include "ir/graph.h"
#include "plan/plan_file.h"

namespace kiln {

Expected<std::string> SerializePlanGraph(const Model& model);
// The model of the plan's 'graph' section, shapes inferred; an error naming
// the section when it is missing or unreadable.
Expected<std::unique_ptr<Model>> ParsePlanGraph(const PlanFile& plan);

}  // namespace kiln
