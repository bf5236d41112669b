#include "runtime/gpu/build_passes.h"

#include "passes/fp16.h"

namespace kiln::cuda {

Status RunBuildPasses(Model& model, const BuildOptions& options, std::vector<std::string>* notes) {
  PassContext ctx;
  if (options.fp16) KILN_RETURN_IF_ERROR(RunConvertToFp16(model, ctx).WithPrefix("fp16 pass"));
  for (const std::string& w : ctx.warnings) notes->push_back(w);
  return Status::Ok();
}

}  // namespace kiln::cuda
