#include "run_cuda.h"

#include "ir/clone.h"
#include "kiln/engine.h"
#ifdef KILN_HAS_CUDA
#include <cuda_runtime.h>

#include "runtime/gpu/gpu_engine.h"
#include "runtime/gpu/host_runner.h"
#endif

namespace kiln::cli {

bool IsPlanFile(const std::string& path) {
  return !(path.size() >= 5 && path.compare(path.size() - 5, 5, ".onnx") == 0);
}

#ifndef KILN_HAS_CUDA
Status CudaDeviceAvailable() {
  return Unsupported("this kiln was built without the CUDA backend (nvcc was not found at configure time)");
}
Expected<CudaModel> LoadPlan(const std::string&) {
  return Unsupported("this kiln was built without the CUDA backend (nvcc was not found at configure time)");
}
Expected<std::vector<RtValue>> RunOnCuda(const CudaModel*, const Model*, bool,
                                         const std::map<std::string, RtValue>&) {
  return Unsupported("this kiln was built without the CUDA backend (nvcc was not found at configure time)");
}
#else
Status CudaDeviceAvailable() {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) return Unsupported(std::string("no usable CUDA device: ") + cudaGetErrorString(e));
  if (n == 0) return Unsupported("no CUDA device on this machine");
  return Status::Ok();
}
Expected<CudaModel> LoadPlan(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<Engine> e, Engine::Load(path, BuilderLoadOptions()));
  CudaModel m;
  m.model = &static_cast<const cuda::GpuEngine&>(*e).model();
  m.engine = e;
  return m;
}

Expected<std::vector<RtValue>> RunOnCuda(const CudaModel* plan, const Model* onnx, bool fp16,
                                         const std::map<std::string, RtValue>& feeds) {
  std::map<std::string, Tensor> inputs;
  for (const auto& [name, v] : feeds) {
    if (v.kind != ValueKind::kTensor) return Unsupported("input '" + name + "': only tensors run on the GPU");
    inputs[name] = v.tensor;
  }
  std::shared_ptr<const Engine> engine;
  const Model* model = nullptr;
  if (plan) {
    engine = std::static_pointer_cast<const Engine>(plan->engine);
    model = plan->model;
  } else {
    BuildOptions opt;
    opt.fp16 = fp16;
    for (const auto& [name, t] : inputs) opt.profiles[name] = ShapeRange{t.dims(), t.dims(), t.dims()};
    KILN_ASSIGN_OR_RETURN(std::shared_ptr<Engine> built, cuda::BuildEngine(CloneModel(*onnx), opt, nullptr));
    engine = built;
    model = onnx;
  }
  KILN_ASSIGN_OR_RETURN(auto runner, cuda::HostRunner::Create(engine));
  KILN_RETURN_IF_ERROR(runner->SetInputs(inputs));
  KILN_RETURN_IF_ERROR(runner->Run());
  KILN_ASSIGN_OR_RETURN(auto outs, runner->Outputs());
  std::vector<RtValue> results;
  for (const Value* v : model->graph->outputs) {
    auto it = outs.find(v->name());
    if (it == outs.end()) return Internal("the engine produced no output '" + v->name() + "'");
    results.push_back(RtValue::FromTensor(it->second));
  }
  return results;
}
#endif

}  // namespace kiln::cli
