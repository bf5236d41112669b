// Kernel launches with programmatic dependent launch (PDL, sm_90+): a kernel launched by LaunchKernel may be
// scheduled while the kernel before it in the stream is still finishing, so its launch latency and block
// start-up overlap that kernel's tail instead of following it. In a CUDA graph (kiln's replays) the edge
// becomes a programmatic one. The price is a rule: every kernel launched this way calls
// WaitForPriorKernels() (kernel_util.cuh) as its first statement, before it reads or writes global memory;
// that waits until the kernels before it have finished and their writes are visible. Kernels launched with
// <<<>>> (and library kernels: cuBLASLt, cuDNN) keep full stream ordering.
//
// KILN_NO_PDL=1 in the environment launches every kernel with plain stream ordering (the A/B switch for
// timing PDL, and a way out should a driver misbehave); devices before sm_90 always do.
#pragma once

#include <cuda_runtime.h>

namespace kiln::cuda {

// Whether launches on the current device use PDL (sm_90+ and KILN_NO_PDL unset).
bool ProgrammaticLaunchEnabled();

// The launch configuration (grid, block, dynamic shared memory, stream) with the PDL attribute when enabled.
// `attr` must outlive the launch.
cudaLaunchConfig_t LaunchConfig(dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                                cudaLaunchAttribute* attr);

// kernel<<<grid, block, smem, stream>>>(args...), with PDL when enabled. The kernel must start with
// WaitForPriorKernels().
template <class... Params, class... Args>
cudaError_t LaunchKernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                         Args&&... args) {
  cudaLaunchAttribute attr;
  const cudaLaunchConfig_t config = LaunchConfig(grid, block, smem, stream, &attr);
  return cudaLaunchKernelEx(&config, kernel, static_cast<Params>(args)...);
}

}  // namespace kiln::cuda
