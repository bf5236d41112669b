// `kiln inspect PLAN [--json]`: each kernel step of the plan in order — the
// node, its kernel, the ONNX ops and nodes fused into it, its tactic, its
// element types and the bytes it reads and writes at the opt shapes
// (src/plan/plan_inspect.h; docs/PLAN.md, "Inspecting a plan"). Needs no GPU.
#include "inspect_plan.h"

#include <cstring>
#include <fstream>
#include <iostream>

#include "cli_util.h"
#include "plan/plan_file.h"
#include "plan/plan_inspect.h"

namespace kiln::cli {

bool LooksLikePlan(const std::string& path) {
  if (path.size() > 5 && path.compare(path.size() - 5, 5, ".plan") == 0) return true;
  std::ifstream f(path, std::ios::binary);
  char magic[sizeof(kPlanMagic)] = {};
  return f.read(magic, sizeof(magic)) && std::memcmp(magic, kPlanMagic, sizeof(magic)) == 0;
}

int InspectPlanFile(const std::string& path, bool json) {
  const std::string cmd = "inspect";
  auto plan = ReadPlanFile(path);
  if (!plan.ok()) return Fail(cmd, plan.status().message());
  auto report = InspectPlan(*plan);
  if (!report.ok()) return Fail(cmd, path + ": " + report.status().message());
  if (json)
    std::cout << PlanInspectionJson(*report) << "\n";
  else
    std::cout << path << ": " << PlanInspectionText(*report);
  std::cout.flush();
  return 0;
}

}  // namespace kiln::cli
