#include "runtime/gpu/build_passes.h"

#include "ir/verifier.h"
#include "passes/fp16.h"
#include "passes/fuse_attention.h"
#include "passes/fuse_gpu.h"
#include "passes/layout_nhwc.h"
#include "passes/pipeline.h"

namespace kiln::cuda {

Status RunBuildPasses(Model& model, const BuildOptions& options, std::vector<std::string>* notes) {
  PassContext ctx;
  // 1. The simplifier: constant folding, Identity/no-op removal, BatchNorm and
  //    bias folding into Conv/Gemm, CSE, DCE (so the fusion sees Conv+bias).
  KILN_RETURN_IF_ERROR(RunSimplify(model, ctx).WithPrefix("simplifier"));
  // 2. Attention chains → kiln.Attention (one fused kernel per attention).
  ctx.changed = false;
  KILN_RETURN_IF_ERROR(RunFuseAttention(model, ctx).WithPrefix("fuse_attention pass"));
  if (ctx.changed) {
    Status valid = VerifyModel(model);
    if (!valid.ok()) return Internal("fuse_attention pass left the model invalid: " + valid.message());
  }
  // 3. Fusion into kiln's fused ops (cuDNN conv+bias+residual+ReLU, cuBLASLt
  //    bias/ReLU epilogues). Before fp16, which then converts the fused ops' weights.
  ctx.changed = false;
  KILN_RETURN_IF_ERROR(RunFuseForGpu(model, ctx).WithPrefix("fuse_gpu pass"));
  if (ctx.changed) {
    Status valid = VerifyModel(model);
    if (!valid.ok()) return Internal("fuse_gpu pass left the model invalid: " + valid.message());
  }
  // 4. Channels-last convolutions and pooling (before fp16, which then converts
  //    the permuted weights).
  bool nhwc = options.layout == BuildOptions::Layout::kNhwc ||
              (options.layout == BuildOptions::Layout::kAuto && options.fp16);
  if (nhwc) {
    ctx.changed = false;
    KILN_RETURN_IF_ERROR(RunChannelsLast(model, ctx).WithPrefix("layout_nhwc pass"));
    if (ctx.changed) {
      Status valid = VerifyModel(model);
      if (!valid.ok()) return Internal("layout_nhwc pass left the model invalid: " + valid.message());
    }
  }
  // 5. Precision.
  if (options.fp16) KILN_RETURN_IF_ERROR(RunConvertToFp16(model, ctx).WithPrefix("fp16 pass"));
  for (const std::string& w : ctx.warnings) notes->push_back(w);
  return Status::Ok();
}

}  // namespace kiln::cuda
