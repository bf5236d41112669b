// The plan's 'tactics' and 'tactic_nodes' sections (docs/PLAN.md): JSON
// objects of strings. 'tactics' maps what was timed (a geometry key) to the
// choice (backend/cuda/gpu_op.h TacticCache's text form); 'tactic_nodes' maps
// a node to the key it used at the opt shapes.
#pragma once

#include <map>
#include <string>

#include "plan/plan_file.h"

namespace kiln {

struct PlanTactics {
  std::map<std::string, std::string> entries;  // key → choice
  std::map<std::string, std::string> nodes;    // node name → key
};

std::string StringMapToJson(const std::map<std::string, std::string>& m);
// Both sections (each may be absent: empty); an error "corrupted plan: ..."
// naming the section when one is not a JSON object of strings.
Expected<PlanTactics> ReadPlanTactics(const PlanFile& plan);

}  // namespace kiln
