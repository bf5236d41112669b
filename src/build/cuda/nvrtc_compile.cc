// NVRTC compilation of generated kernels (see nvrtc_compile.h).
#include "build/cuda/nvrtc_compile.h"

#include <nvrtc.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "build/codegen/pointwise_source.h"
#include "passes/fuse_pointwise.h"
#include "plan/plan_file.h"

namespace kiln::cuda {
namespace {

Status NvrtcError(nvrtcResult r, const std::string& what) {
  return Internal(what + ": " + nvrtcGetErrorString(r));
}

// The source's checksum (plan/plan_file.h) as 16 hex digits.
std::string Hash(const std::string& s) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(PlanChecksum(s.data(), s.size())));
  return buf;
}

}  // namespace

Expected<std::string> CompileCubin(const std::string& source, const std::string& label, int arch) {
  nvrtcProgram prog;
  nvrtcResult r = nvrtcCreateProgram(&prog, source.c_str(), "kiln_generated.cu", 0, nullptr, nullptr);
  if (r != NVRTC_SUCCESS) return NvrtcError(r, label + ": nvrtcCreateProgram");
  std::unique_ptr<nvrtcProgram, void (*)(nvrtcProgram*)> guard(&prog, [](nvrtcProgram* p) { nvrtcDestroyProgram(p); });
  const std::string gpu = "--gpu-architecture=sm_" + std::to_string(arch);
  const char* opts[] = {gpu.c_str(), "-std=c++17"};
  r = nvrtcCompileProgram(prog, 2, opts);
  if (r != NVRTC_SUCCESS) {
    size_t n = 0;
    nvrtcGetProgramLogSize(prog, &n);
    std::string log(n, '\0');
    if (n) nvrtcGetProgramLog(prog, log.data());
    return Internal(label + ": the generated kernel does not compile (" + nvrtcGetErrorString(r) + "):\n" + log);
  }
  size_t size = 0;
  r = nvrtcGetCUBINSize(prog, &size);
  if (r != NVRTC_SUCCESS) return NvrtcError(r, label + ": nvrtcGetCUBINSize");
  std::string cubin(size, '\0');
  r = nvrtcGetCUBIN(prog, cubin.data());
  if (r != NVRTC_SUCCESS) return NvrtcError(r, label + ": nvrtcGetCUBIN");
  return cubin;
}

Expected<std::string> KernelCache::Cubin(const std::string& source, const std::string& label, int arch) {
  const std::string key = Hash(source) + "/sm_" + std::to_string(arch);
  auto it = cubins_.find(key);
  if (it != cubins_.end()) {
    ++hits_;
    return it->second;
  }
  KILN_ASSIGN_OR_RETURN(std::string cubin, CompileCubin(source, label, arch));
  ++compiled_;
  cubins_[key] = cubin;
  return cubin;
}

Status CompilePointwiseKernels(Model& model, int arch, KernelCache& cache, std::vector<std::string>* notes) {
  const int64_t opset = model.OpsetOf("");
  for (Node* n : model.graph->nodes()) {
    if (n->domain != "kiln" || n->op_type != "Pointwise") continue;
    Expected<codegen::PointwiseKernel> gen = codegen::GeneratePointwise(*n, opset, "kiln_pw");
    Expected<std::string> compiled = gen.ok() ? cache.Cubin(gen->source, n->Label(), arch) : gen.status();
    if (!compiled.ok()) {
      // A kernel that cannot be made is a kiln bug, not the user's: run the
      // group's ops one by one instead, and say so.
      if (notes) notes->push_back("generated kernel failed, its ops run unfused: " + compiled.status().message());
      KILN_RETURN_IF_ERROR(UnfusePointwise(*model.graph, n));
      continue;
    }
    codegen::PointwiseKernel& k = *gen;
    std::string cubin = std::move(*compiled);
    std::vector<int64_t> modes;
    for (codegen::InputMode m : k.input_modes) modes.push_back(static_cast<int64_t>(m));
    n->attrs["kernel"] = Attribute::FromString(k.name);
    n->attrs["cubin"] = Attribute::FromString(std::move(cubin));
    n->attrs["input_modes"] = Attribute::FromInts(std::move(modes));
    n->attrs["row_kernel"] = Attribute::FromInt(k.rows ? 1 : 0);
    n->attrs["input_views"] = Attribute::FromInts(EncodePwViews(k.input_views));
    n->attrs["params_bytes"] = Attribute::FromInt(static_cast<int64_t>(sizeof(KilnPwParams)));
  }
  return Status::Ok();
}

}  // namespace kiln::cuda
