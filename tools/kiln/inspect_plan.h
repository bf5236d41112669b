// `kiln inspect PLAN [--json]` (tools/kiln/inspect_plan.cc): the kernel steps
// of a plan (src/plan/plan_inspect.h). inspect.cc hands plans here.
#pragma once

#include <string>

namespace kiln::cli {

// A name ending in ".plan", or a file that starts with the plan magic
// ("KILNPLAN") whatever its name.
bool LooksLikePlan(const std::string& path);
// Prints the plan's steps (text, or JSON with `json`); the exit code.
int InspectPlanFile(const std::string& path, bool json);

}  // namespace kiln::cli
