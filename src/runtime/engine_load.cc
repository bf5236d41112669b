// Engine::Load / Engine::Deserialize: a plan names the device it was built
// for; "cpu" plans run on the CPU reference executor (runtime/cpu), all others
// on the CUDA backend when kiln has it.
#include "plan/plan_file.h"
#include "runtime/cpu/cpu_engine.h"
#ifdef KILN_HAS_CUDA
#include "runtime/gpu/gpu_engine.h"
#endif

namespace kiln {

namespace {

Expected<std::shared_ptr<Engine>> FromPlan(const PlanFile& plan) {
  if (plan.header.gpu_name == cpu::kCpuPlanDevice) return cpu::DeserializeCpuEngine(plan);
#ifdef KILN_HAS_CUDA
  return cuda::DeserializeGpuEngine(plan);
#else
  return Unsupported("the plan was built for GPU '" + plan.header.gpu_name +
                     "' and this kiln was built without CUDA (KILN_CUDA=OFF); build a plan with the cpu backend");
#endif
}

}  // namespace

Expected<std::shared_ptr<Engine>> Engine::Deserialize(const void* data, size_t size) {
  KILN_ASSIGN_OR_RETURN(PlanFile plan, ParsePlan(data, size));
  return FromPlan(plan);
}

Expected<std::shared_ptr<Engine>> Engine::Load(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(PlanFile plan, ReadPlanFile(path));
  auto e = FromPlan(plan);
  if (!e.ok()) return e.status().WithPrefix(path);
  return e;
}

}  // namespace kiln
