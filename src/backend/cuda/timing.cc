// See timing.h.
#include "backend/cuda/timing.h"

#include <algorithm>
#include <cmath>

namespace kiln::cuda {

Expected<float> TimeOnPrivateStream(const std::function<Status(cudaStream_t)>& run, int runs) {
  cudaStream_t stream = nullptr;
  KILN_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaEvent_t start = nullptr, stop = nullptr;
  cudaError_t err = cudaEventCreate(&start);
  if (err == cudaSuccess) err = cudaEventCreate(&stop);
  Status st = err == cudaSuccess ? run(stream) : CudaStatus(err, "cudaEventCreate");  // warm-up
  float best = INFINITY;
  for (int r = 0; r < runs && st.ok(); ++r) {
    cudaEventRecord(start, stream);
    st = run(stream);
    cudaEventRecord(stop, stream);
    float ms = 0.f;
    if (st.ok()) st = CudaStatus(cudaEventSynchronize(stop), "cudaEventSynchronize");
    if (st.ok()) st = CudaStatus(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    if (st.ok()) best = std::min(best, ms);
  }
  const cudaError_t synced = cudaStreamSynchronize(stream);
  if (start) cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);
  cudaStreamDestroy(stream);
  KILN_RETURN_IF_ERROR(st);
  KILN_CUDA_RETURN_IF_ERROR(synced);
  return best;
}

Status FillForTiming(std::initializer_list<DeviceBuffer*> buffers) {
  for (DeviceBuffer* b : buffers)
    if (b->bytes()) KILN_CUDA_RETURN_IF_ERROR(cudaMemset(b->get(), 0x3c, b->bytes()));
  return Status::Ok();
}

}  // namespace kiln::cuda
