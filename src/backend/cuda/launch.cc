// See launch.h.
#include "backend/cuda/launch.h"

#include <cstdlib>
#include <cstring>

namespace kiln::cuda {

bool ProgrammaticLaunchEnabled() {
  // The switch is read once: a process runs all its launches one way.
  static const bool disabled = [] {
    const char* v = std::getenv("KILN_NO_PDL");
    return v && *v && std::strcmp(v, "0") != 0;
  }();
  if (disabled) return false;
  int device = 0, major = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess)
    return false;
  return major >= 9;
}

cudaLaunchConfig_t LaunchConfig(dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                                cudaLaunchAttribute* attr) {
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  if (ProgrammaticLaunchEnabled()) {
    attr->id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr->val.programmaticStreamSerializationAllowed = 1;
    config.attrs = attr;
    config.numAttrs = 1;
  }
  return config;
}

}  // namespace kiln::cuda
