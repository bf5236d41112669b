// CUDA error → Status helpers and a small RAII device buffer.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "kiln/status.h"

namespace kiln::cuda {

inline Status CudaStatus(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Status::Ok();
  return Internal(std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

#define KILN_CUDA_RETURN_IF_ERROR(call) KILN_RETURN_IF_ERROR(::kiln::cuda::CudaStatus((call), #call))
// After a kernel launch: reports launch-configuration errors.
#define KILN_CUDA_CHECK_LAUNCH(what) KILN_RETURN_IF_ERROR(::kiln::cuda::CudaStatus(cudaGetLastError(), what))

// Owns device memory from cudaMalloc. Move-only.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { Reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) {
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      Reset();
      ptr_ = o.ptr_;
      bytes_ = o.bytes_;
      o.ptr_ = nullptr;
      o.bytes_ = 0;
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  // Ensures at least `bytes` (keeps the old memory when big enough).
  Status Reserve(size_t bytes) {
    if (bytes <= bytes_) return Status::Ok();
    Reset();
    void* p = nullptr;
    KILN_RETURN_IF_ERROR(CudaStatus(cudaMalloc(&p, bytes), "cudaMalloc"));
    ptr_ = p;
    bytes_ = bytes;
    return Status::Ok();
  }
  void Reset() {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace kiln::cuda
