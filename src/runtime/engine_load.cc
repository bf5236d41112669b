// Engine::Load / Engine::Deserialize: a plan names the device it was built
// for; "cpu" plans run on the CPU reference executor (runtime/cpu, in
// kiln_builder: through PlanLoadOptions::reference), all others on the CUDA
// backend when kiln has it.
#include "plan/plan_file.h"
#include "runtime/reference_support.h"
#ifdef KILN_HAS_CUDA
#include "runtime/gpu/gpu_engine.h"
#endif

namespace kiln {

namespace {

Expected<std::shared_ptr<Engine>> FromPlan(const PlanFile& plan, const PlanLoadOptions& options) {
  if (plan.header.gpu_name == kCpuPlanDevice) {
    if (!options.reference)
      return Unsupported(
          "a CPU plan runs on the reference executor, which the lean runtime (kiln::runtime) "
          "does not link: load it with kiln::BuilderLoadOptions() (kiln::builder)");
    return options.reference->LoadCpuPlan(plan);
  }
#ifdef KILN_HAS_CUDA
  return cuda::DeserializeGpuEngine(plan, options.reference);
#else
  return Unsupported("the plan was built for GPU '" + plan.header.gpu_name +
                     "' and this kiln was built without CUDA (KILN_CUDA=OFF); build a plan with the cpu backend");
#endif
}

}  // namespace

Expected<std::shared_ptr<Engine>> Engine::Deserialize(const void* data, size_t size,
                                                      const PlanLoadOptions& options) {
  KILN_ASSIGN_OR_RETURN(PlanFile plan, ParsePlan(data, size));
  return FromPlan(plan, options);
}

Expected<std::shared_ptr<Engine>> Engine::Load(const std::string& path, const PlanLoadOptions& options) {
  KILN_ASSIGN_OR_RETURN(PlanFile plan, ReadPlanFile(path));
  auto e = FromPlan(plan, options);
  if (!e.ok()) return e.status().WithPrefix(path);
  return e;
}

}  // namespace kiln
