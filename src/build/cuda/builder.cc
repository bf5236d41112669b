// Engine::Build: ONNX → optimized IR → every node checked against the CUDA op
// table (no silent CPU fallback) → engine with device constants → contexts at
// the profile's max shapes (arena size) and opt shapes (kernel choice).
#include <chrono>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_op_table.h"
#include "backend/gpu_caps.h"
#include "build/build_passes.h"
#include "build/cuda/nvrtc_compile.h"
#include "build/profiles.h"
#include "build/timing_cache.h"
#include "onnx/import.h"
#include "passes/shape_inference.h"
#include "runtime/gpu/gpu_engine.h"

namespace kiln {
namespace {

std::string DescribeInputs(const Node& n) {
  std::string s = " (inputs:";
  for (size_t i = 0; i < n.num_inputs(); ++i) {
    const Value* v = n.input(i);
    s += std::string(i ? ", " : " ") + (v ? v->name() + " " + v->type.ToString() : "<omitted>");
  }
  return s + ")";
}

// Every node must run on the GPU or be host shape arithmetic: the declared
// capabilities of its op-table row (backend/gpu_caps.h), then its factory.
Status CheckGpuSupport(const Model& m, bool fp16, std::map<std::string, std::string>* kernels) {
  std::vector<std::pair<std::string, std::string>> chosen;
  std::vector<GpuGap> gaps = FindGpuGaps(m, cuda::FactoryProbe(fp16), &chosen);
  for (const auto& [node, kernel] : chosen) (*kernels)[node] = kernel;
  if (gaps.empty()) return Status::Ok();
  std::string msg = std::to_string(gaps.size()) + " node(s) cannot run on the GPU:";
  for (size_t i = 0; i < gaps.size() && i < 10; ++i) msg += "\n  " + gaps[i].reason + DescribeInputs(*gaps[i].node);
  if (gaps.size() > 10) msg += "\n  ... and " + std::to_string(gaps.size() - 10) + " more (kiln check MODEL --backend cuda lists them all)";
  return Unsupported(msg);
}

// The generated kernels (kiln.Pointwise), compiled for this GPU.
Status CompileGeneratedKernels(Model& m, BuildReport* rep) {
  int dev = 0, major = 0, minor = 0;
  KILN_CUDA_RETURN_IF_ERROR(cudaGetDevice(&dev));
  KILN_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  KILN_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
  cuda::KernelCache cache;
  KILN_RETURN_IF_ERROR(cuda::CompilePointwiseKernels(m, major * 10 + minor, cache, &rep->notes));
  if (cache.compiled() + cache.hits() > 0)
    rep->notes.push_back("generated " + std::to_string(cache.compiled() + cache.hits()) + " pointwise kernel(s) (" +
                         std::to_string(cache.compiled()) + " compiled, " + std::to_string(cache.hits()) +
                         " identical to one before)");
  return Status::Ok();
}

struct BuildGpu {
  std::string name;
  uint32_t cc = 0;
};

Expected<BuildGpu> CurrentGpu() {
  int dev = 0;
  KILN_CUDA_RETURN_IF_ERROR(cudaGetDevice(&dev));
  cudaDeviceProp p{};
  KILN_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&p, dev));
  return BuildGpu{p.name, static_cast<uint32_t>(p.major * 10 + p.minor)};
}

}  // namespace

}  // namespace kiln

namespace kiln::cuda {

Expected<std::shared_ptr<Engine>> BuildEngine(std::unique_ptr<Model> model, const BuildOptions& options,
                                              BuildReport* report) {
  auto t0 = std::chrono::steady_clock::now();
  BuildReport local;
  BuildReport& rep = report ? *report : local;
  // The timing cache is read first: a damaged or foreign file fails before any work.
  std::map<std::string, std::string> timed;
  BuildGpu gpu;
  if (!options.timing_cache_file.empty()) {
    KILN_ASSIGN_OR_RETURN(gpu, CurrentGpu());
    KILN_ASSIGN_OR_RETURN(timed, LoadTimingCacheFile(options.timing_cache_file, gpu.name, gpu.cc));
  }
  KILN_RETURN_IF_ERROR(InferShapes(*model));
  KILN_RETURN_IF_ERROR(RunBuildPasses(*model, options, &rep.notes, &rep.precision));
  KILN_RETURN_IF_ERROR(CompileGeneratedKernels(*model, &rep));
  cuda::EngineConfig cfg;
  cfg.fp16 = options.fp16;
  cfg.tf32 = options.tf32;
  cfg.nhwc = UsesNhwc(options);
  cfg.fp32_islands = options.fp32_islands;
  cfg.precision = rep.precision;
  cfg.workspace_bytes = options.workspace_bytes;
  cfg.conv_tactics = options.conv_tactics;
  cfg.cudnn_eng4 = options.cudnn_eng4;
  cfg.stem_gemm = options.stem_gemm;
  cfg.im2col_conv = options.im2col_conv;
  cfg.gelu_epilogue = options.gelu_epilogue;
  cfg.pack_qkv = options.pack_qkv;
  cfg.profiles = options.profiles;
  KILN_RETURN_IF_ERROR(ResolveProfiles(*model->graph, /*fix_dynamic=*/true, &cfg.profiles, &rep.notes));
  KILN_RETURN_IF_ERROR(CheckGpuSupport(*model, cfg.fp16, &cfg.kernels));
  rep.num_nodes = model->graph->num_nodes();
  for (const auto& [node, kernel] : cfg.kernels)
    if (kernel != "host shape arithmetic" && kernel != "alias (no kernel)") ++rep.num_kernels;

  KILN_ASSIGN_OR_RETURN(auto engine, cuda::GpuEngine::Create(std::move(model), std::move(cfg), std::nullopt,
                                                             BuilderLoadOptions().reference));
  engine->tactics()->Load(timed);
  // Arena at the largest shapes; kernels prepared at the opt shapes. Not when
  // a shape-tensor input decides shapes: its values come only with a run
  // (Context::SetInputValue), so the context sizes and prepares then.
  bool shape_tensors = false;
  for (const TensorInfo& in : engine->Inputs()) shape_tensors |= engine->IsShapeTensorInput(in.name);
  for (const char* which : {"max", "opt"}) {
    if (shape_tensors) break;
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<Context> ctx, engine->CreateContext());
    for (const auto& [name, r] : engine->config().profiles)
      KILN_RETURN_IF_ERROR(ctx->SetInputShape(name, std::string(which) == "max" ? r.max : r.opt));
    for (const TensorInfo& out : engine->Outputs())
      KILN_RETURN_IF_ERROR(ctx->GetOutputShape(out.name).status().WithPrefix(std::string("at the ") + which + " shapes"));
    if (std::string(which) == "max") rep.activation_bytes = ctx->ActivationBytes();
  }
  if (!options.timing_cache_file.empty()) {
    std::map<std::string, std::string> merged = engine->tactics()->Entries();
    KILN_RETURN_IF_ERROR(SaveTimingCacheFile(options.timing_cache_file, merged, gpu.name, gpu.cc));
    rep.notes.push_back("timing cache " + options.timing_cache_file + ": " + std::to_string(timed.size()) +
                        " entries loaded, " + std::to_string(merged.size() - timed.size()) + " new");
  }
  rep.weight_bytes = engine->weight_bytes();
  rep.peak_bytes = rep.weight_bytes + rep.activation_bytes;
  rep.build_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return std::shared_ptr<Engine>(std::move(engine));
}

}  // namespace kiln::cuda
