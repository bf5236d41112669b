#include "runtime/gpu/build_passes.h"

namespace kiln::cuda {

Status RunBuildPasses(Model& model, const BuildOptions& options, std::vector<std::string>* notes) {
  if (options.fp16) return Unsupported("--fp16 is not available yet: the FP16 precision pass is not written");
  return Status::Ok();
}

}  // namespace kiln::cuda
