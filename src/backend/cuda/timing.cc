// See timing.h.
#include "backend/cuda/timing.h"

#include <algorithm>
#include <cmath>

#include "backend/cuda/gpu_op.h"

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

Expected<size_t> FastestTactic(GpuResources& res, const std::string& key,
                               const std::vector<std::string>& names,
                               const std::vector<std::function<Expected<float>()>>& timers,
                               const std::string& node_name) {
  auto index_of = [&](const std::string& verdict) {
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == verdict) return i;
    return size_t{0};
  };
  if (res.tactics)
    if (std::optional<std::string> hit = res.tactics->Find(key)) {
      res.tactics->Use(node_name, key);
      return index_of(*hit);
    }
  size_t best = 0;
  float best_ms = INFINITY;
  for (size_t i = 0; i < timers.size(); ++i) {
    KILN_ASSIGN_OR_RETURN(float ms, timers[i]());
    if (ms < best_ms) best = i, best_ms = ms;
  }
  const size_t kept = index_of(KeepTactic(res, key, names[best]));
  if (res.tactics) res.tactics->Use(node_name, key);
  return kept;
}

std::string KeepTactic(GpuResources& res, const std::string& key, const std::string& verdict) {
  return res.tactics ? res.tactics->Insert(key, verdict) : verdict;
}

}  // namespace kiln::cuda
