#include "soak_io.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>

#include "core/dtype.h"
#ifdef KILN_HAS_CUDA
#include <cuda_runtime.h>
#endif

namespace kiln::cli {
namespace {

#ifdef KILN_HAS_CUDA
Status Cuda(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Status::Ok();
  return Internal(std::string(what) + ": " + cudaGetErrorString(e));
}
#endif

size_t Bytes(DataType dt, const std::vector<int64_t>& dims) {
  size_t n = 1;
  for (int64_t d : dims) n *= static_cast<size_t>(d);
  return n * ElementSize(dt);
}

}  // namespace

Expected<std::unique_ptr<SoakIo>> SoakIo::Create(bool cuda) {
  std::unique_ptr<SoakIo> io(new SoakIo(cuda));
  if (cuda) {
#ifdef KILN_HAS_CUDA
    cudaStream_t s = nullptr;
    KILN_RETURN_IF_ERROR(Cuda(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate"));
    io->stream_ = s;
#else
    return Unsupported("this kiln was built without the CUDA backend");
#endif
  }
  return io;
}

SoakIo::~SoakIo() {
  for (auto* m : {&inputs_, &outputs_})
    for (auto& [name, b] : *m) Free(b);
#ifdef KILN_HAS_CUDA
  if (stream_) cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
#endif
}

void SoakIo::Free(Buffer& b) {
  if (!b.ptr) return;
#ifdef KILN_HAS_CUDA
  if (cuda_) cudaFree(b.ptr);
#endif
  if (!cuda_) std::free(b.ptr);
  b.ptr = nullptr;
  b.capacity = 0;
}

Status SoakIo::Grow(Buffer& b, size_t bytes) {
  b.bytes = bytes;
  if (bytes <= b.capacity && b.ptr) return Status::Ok();
  Free(b);
  size_t cap = bytes == 0 ? 64 : (bytes + 63) / 64 * 64;
#ifdef KILN_HAS_CUDA
  if (cuda_) KILN_RETURN_IF_ERROR(Cuda(cudaMalloc(&b.ptr, cap), "cudaMalloc"));
#endif
  if (!cuda_) b.ptr = std::aligned_alloc(64, cap);
  if (!b.ptr) return Internal("cannot allocate " + std::to_string(cap) + " bytes");
  b.capacity = cap;
  return Status::Ok();
}

Status SoakIo::Bind(Context& ctx, const std::map<std::string, Tensor>& inputs,
                    const std::vector<TensorInfo>& outputs) {
  for (const auto& [name, t] : inputs) {
    KILN_RETURN_IF_ERROR(ctx.SetInputShape(name, t.dims()));
    Buffer& b = inputs_[name];
    KILN_RETURN_IF_ERROR(Grow(b, t.nbytes()));
#ifdef KILN_HAS_CUDA
    if (cuda_ && t.nbytes() > 0)
      KILN_RETURN_IF_ERROR(Cuda(cudaMemcpy(b.ptr, t.raw(), t.nbytes(), cudaMemcpyHostToDevice), "cudaMemcpy H2D"));
#endif
    if (!cuda_ && t.nbytes() > 0) std::memcpy(b.ptr, t.raw(), t.nbytes());
    KILN_RETURN_IF_ERROR(ctx.SetTensorAddress(name, b.ptr));
  }
  for (const TensorInfo& info : outputs) {
    Buffer& b = outputs_[info.name];
    auto dt = ParseDataType(info.dtype);
    if (!dt) return Internal("output '" + info.name + "' has an unknown dtype '" + info.dtype + "'");
    b.dtype = *dt;
    KILN_ASSIGN_OR_RETURN(b.dims, ctx.GetOutputShape(info.name));
    bool known = true;
    for (int64_t d : b.dims) known = known && d >= 0;
    if (!known) {  // value-dependent: sized during Enqueue
      KILN_RETURN_IF_ERROR(ctx.SetOutputAllocator(info.name, this));
      continue;
    }
    KILN_RETURN_IF_ERROR(Grow(b, Bytes(b.dtype, b.dims)));
    KILN_RETURN_IF_ERROR(ctx.SetTensorAddress(info.name, b.ptr));
  }
  return Status::Ok();
}

Status SoakIo::Run(Context& ctx) {
  grow_error_ = Status::Ok();
  Status s = ctx.Enqueue(stream_);
  if (!grow_error_.ok()) return grow_error_;
  KILN_RETURN_IF_ERROR(s);
#ifdef KILN_HAS_CUDA
  if (cuda_) KILN_RETURN_IF_ERROR(Cuda(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_)), "sync"));
#endif
  return Status::Ok();
}

Status SoakIo::Fetch(std::map<std::string, Tensor>* out) {
  for (auto& [name, b] : outputs_) {
    Tensor& t = (*out)[name];
    if (t.dtype() != b.dtype || t.dims() != b.dims) t = Tensor(b.dtype, b.dims);
    if (t.nbytes() == 0) continue;
#ifdef KILN_HAS_CUDA
    if (cuda_) KILN_RETURN_IF_ERROR(Cuda(cudaMemcpy(t.mutable_raw(), b.ptr, t.nbytes(), cudaMemcpyDeviceToHost), "D2H"));
#endif
    if (!cuda_) std::memcpy(t.mutable_raw(), b.ptr, t.nbytes());
  }
  return Status::Ok();
}

void* SoakIo::Reallocate(const std::string& name, void* current, size_t bytes) {
  Buffer& b = outputs_[name];
  if (current && current == b.ptr && bytes <= b.capacity) return current;
  Status s = Grow(b, bytes);
  if (!s.ok()) {
    grow_error_ = s.WithPrefix("output '" + name + "'");
    return nullptr;
  }
  return b.ptr;
}

void SoakIo::NotifyShape(const std::string& name, const std::vector<int64_t>& dims) { outputs_[name].dims = dims; }

MemoryUse MeasureMemory(bool cuda) {
  MemoryUse m;
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0, resident = 0;
  if (statm >> pages >> resident) m.host_rss = resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
#ifdef KILN_HAS_CUDA
  size_t free_b = 0, total_b = 0;
  if (cuda && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) m.device_used = total_b - free_b;
#else
  (void)cuda;
#endif
  return m;
}

}  // namespace kiln::cli
