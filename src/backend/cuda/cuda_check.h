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

// cudaMalloc whose out-of-memory error says how much was asked for and how
// much the device has free (OutOfRange: the shapes or limits ask too much).
inline Status DeviceMalloc(void** p, size_t bytes) {
  cudaError_t e = cudaMalloc(p, bytes);
  if (e != cudaErrorMemoryAllocation) return CudaStatus(e, "cudaMalloc");
  cudaGetLastError();  // not sticky: clear it so later calls do not see it
  size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  auto mib = [](size_t b) { return std::to_string(b >> 20) + " MiB"; };
  return OutOfRange("out of device memory: " + mib(bytes) + " asked for, " + mib(free_b) + " free of " +
                    mib(total_b));
}

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
    KILN_RETURN_IF_ERROR(DeviceMalloc(&p, bytes));
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

// Pinned host memory the device reads and writes directly (cudaHostAllocMapped):
// small results the host needs after a sync, such as the extents a
// data-dependent op computed. Grows like DeviceBuffer. Move-only.
class MappedBuffer {
 public:
  MappedBuffer() = default;
  ~MappedBuffer() { Reset(); }
  MappedBuffer(const MappedBuffer&) = delete;
  MappedBuffer& operator=(const MappedBuffer&) = delete;

  Status Reserve(size_t bytes) {
    if (bytes <= bytes_) return Status::Ok();
    Reset();
    void* p = nullptr;
    KILN_RETURN_IF_ERROR(CudaStatus(cudaHostAlloc(&p, bytes, cudaHostAllocMapped), "cudaHostAlloc"));
    host_ = p;
    bytes_ = bytes;
    void* d = nullptr;
    KILN_RETURN_IF_ERROR(CudaStatus(cudaHostGetDevicePointer(&d, p, 0), "cudaHostGetDevicePointer"));
    device_ = d;
    return Status::Ok();
  }
  void Reset() {
    if (host_) cudaFreeHost(host_);
    host_ = device_ = nullptr;
    bytes_ = 0;
  }
  template <typename T>
  T* host() const { return static_cast<T*>(host_); }
  template <typename T>
  T* device() const { return static_cast<T*>(device_); }

 private:
  void* host_ = nullptr;
  void* device_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace kiln::cuda
