// kiln::Refit on a CUDA engine: the CPU refit on the engine's model, then the
// device copies of its constants rewritten in place.
#include "build/refit.h"
#include "kiln/refit.h"
#include "runtime/gpu/gpu_engine.h"

namespace kiln {

Status Refit(Engine& engine, const std::string& onnx_path) {
  auto* gpu = dynamic_cast<cuda::GpuEngine*>(&engine);
  if (!gpu) return InvalidArgument("refit: not a CUDA engine");
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Model> fresh, LoadForRefit(onnx_path, BuildOptionsOf(gpu->config())));
  return gpu->RefitConstants([&](Model& built) { return RefitModel(built, *fresh, onnx_path); });
}

}  // namespace kiln
