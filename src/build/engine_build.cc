// Engine::Build: loads the ONNX model and hands it to the backend the options
// name: the CUDA builder (build/cuda) or the CPU engine on the reference
// executor (runtime/cpu), which runs the imported IR as it is (the oracle's
// semantics) after shape inference and a check that kiln knows every op.
#include <chrono>

#include "build/int8.h"
#include "build/profiles.h"
#include "onnx/import.h"
#include "ops/op_table.h"
#include "passes/shape_inference.h"
#include "runtime/cpu/cpu_engine.h"
#ifdef KILN_HAS_CUDA
#include "runtime/gpu/gpu_engine.h"
#endif

namespace kiln {
namespace {

Status CheckOpsKnown(const Graph& g) {
  std::string missing;
  int count = 0;
  for (const Node* n : g.nodes()) {
    if (!FindOp(n->domain, n->op_type)) {
      if (count++ < 10) missing += "\n  " + n->Label() + ": op is not supported by kiln";
    }
    for (const auto& [key, attr] : n->attrs) {
      if (attr.g) KILN_RETURN_IF_ERROR(CheckOpsKnown(*attr.g));
      for (const auto& sg : attr.graphs) KILN_RETURN_IF_ERROR(CheckOpsKnown(*sg));
    }
  }
  if (count) return Unsupported(std::to_string(count) + " node(s) cannot run on the CPU reference:" + missing);
  return Status::Ok();
}

Expected<std::shared_ptr<Engine>> BuildCpuEngine(std::unique_ptr<Model> model, const BuildOptions& options,
                                                 BuildReport* report) {
  if (options.fp16) return Unsupported("the cpu backend runs FP32 only (the reference executor); drop fp16");
  if (options.int8 || options.fp8) KILN_RETURN_IF_ERROR(PrepareQuantizedGraph(*model, options, &report->precision, &report->notes));
  KILN_RETURN_IF_ERROR(InferShapes(*model));
  KILN_RETURN_IF_ERROR(CheckOpsKnown(*model->graph));
  EngineConfig cfg;
  cfg.workspace_bytes = options.workspace_bytes;
  cfg.profiles = options.profiles;
  KILN_RETURN_IF_ERROR(ResolveProfiles(*model->graph, /*fix_dynamic=*/false, &cfg.profiles, &report->notes));
  report->num_nodes = model->graph->num_nodes();
  for (const Value* v : model->graph->values())
    if (v->data) report->weight_bytes += v->data->nbytes();
  report->peak_bytes = report->weight_bytes;
  return std::shared_ptr<Engine>(cpu::CpuEngine::Create(std::move(model), std::move(cfg)));
}

}  // namespace

Expected<std::shared_ptr<Engine>> Engine::Build(const std::string& onnx_path, const BuildOptions& options,
                                                BuildReport* report) {
  auto t0 = std::chrono::steady_clock::now();
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadModel(onnx_path));
  BuildReport local;
  BuildReport& rep = report ? *report : local;
  Expected<std::shared_ptr<Engine>> engine = Unsupported("unknown backend");
  if (options.backend == BuildOptions::Backend::kCpu) {
    engine = BuildCpuEngine(std::move(model), options, &rep);
  } else {
#ifdef KILN_HAS_CUDA
    engine = cuda::BuildEngine(std::move(model), options, &rep);
#else
    return Unsupported("this kiln was built without CUDA (KILN_CUDA=OFF or no nvcc): build with the cpu backend");
#endif
  }
  rep.build_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return engine;
}

}  // namespace kiln
