#include "plan/plan_tactics.h"

#include <nlohmann/json.hpp>

namespace kiln {
namespace {

Expected<std::map<std::string, std::string>> ReadSection(const PlanFile& plan, const std::string& name) {
  std::map<std::string, std::string> out;
  auto it = plan.sections.find(name);
  if (it == plan.sections.end()) return out;
  nlohmann::json j = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return InvalidArgument("corrupted plan: the '" + name + "' section is not a JSON object");
  for (auto e = j.begin(); e != j.end(); ++e) {
    if (!e.value().is_string())
      return InvalidArgument("corrupted plan: '" + name + "' entry '" + e.key() + "' is not a string");
    out[e.key()] = e.value().get<std::string>();
  }
  return out;
}

}  // namespace

std::string StringMapToJson(const std::map<std::string, std::string>& m) { return nlohmann::json(m).dump(); }

Expected<PlanTactics> ReadPlanTactics(const PlanFile& plan) {
  PlanTactics t;
  KILN_ASSIGN_OR_RETURN(t.entries, ReadSection(plan, "tactics"));
  KILN_ASSIGN_OR_RETURN(t.nodes, ReadSection(plan, "tactic_nodes"));
  return t;
}

}  // namespace kiln
