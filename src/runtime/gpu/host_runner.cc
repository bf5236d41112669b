#include "runtime/gpu/host_runner.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "backend/cuda/cuda_check.h"

namespace kiln::cuda {
namespace {

size_t ElementsOf(const std::vector<int64_t>& dims) {
  size_t n = 1;
  for (int64_t d : dims) n *= static_cast<size_t>(d);
  return n;
}

}  // namespace

Expected<std::unique_ptr<HostRunner>> HostRunner::Create(std::shared_ptr<const Engine> engine) {
  std::unique_ptr<HostRunner> r(new HostRunner());
  r->engine_ = std::move(engine);
  KILN_ASSIGN_OR_RETURN(r->ctx_, r->engine_->CreateContext());
  KILN_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&r->stream_, cudaStreamNonBlocking));
  for (auto& e : r->ev_) KILN_CUDA_RETURN_IF_ERROR(cudaEventCreate(&e));
  for (const TensorInfo& t : r->engine_->Outputs()) {
    Buffer& b = r->outputs_[t.name];
    auto dt = ParseDataType(t.dtype);
    b.dtype = dt ? *dt : DataType::kUndefined;
  }
  for (const TensorInfo& t : r->engine_->Inputs()) {
    auto dt = ParseDataType(t.dtype);
    r->inputs_[t.name].dtype = dt ? *dt : DataType::kUndefined;
    r->inputs_[t.name].shape_tensor = t.shape_tensor;
  }
  return r;
}

HostRunner::~HostRunner() {
  for (auto* m : {&inputs_, &outputs_})
    for (auto& [name, b] : *m) {
      if (b.host) cudaFreeHost(b.host);
      if (b.device) cudaFree(b.device);
    }
  for (auto& e : ev_)
    if (e) cudaEventDestroy(e);
  if (stream_) cudaStreamDestroy(stream_);
}

Status HostRunner::Grow(Buffer& b, size_t bytes) {
  b.bytes = bytes;
  if (bytes <= b.capacity && b.host) return Status::Ok();
  if (b.host) cudaFreeHost(b.host);
  if (b.device) cudaFree(b.device);
  b.host = b.device = nullptr;
  size_t cap = std::max<size_t>(bytes, 256);
  KILN_CUDA_RETURN_IF_ERROR(cudaMallocHost(&b.host, cap));
  KILN_CUDA_RETURN_IF_ERROR(cudaMalloc(&b.device, cap));
  b.capacity = cap;
  return Status::Ok();
}

Status HostRunner::SetInputs(const std::map<std::string, Tensor>& inputs) {
  for (const auto& [name, b] : inputs_)
    if (!inputs.count(name)) return InvalidArgument("missing value for input '" + name + "'");
  for (const auto& [name, t] : inputs) {
    auto it = inputs_.find(name);
    if (it == inputs_.end()) return InvalidArgument("the engine has no input named '" + name + "'");
    Buffer& b = it->second;
    if (t.dtype() != b.dtype)
      return InvalidArgument("input '" + name + "' expects " + std::string(DataTypeName(b.dtype)) + ", got " +
                             std::string(DataTypeName(t.dtype())));
    KILN_RETURN_IF_ERROR(ctx_->SetInputShape(name, t.dims()));
    if (b.shape_tensor) KILN_RETURN_IF_ERROR(ctx_->SetInputValue(name, t.raw(), t.nbytes()));
    KILN_RETURN_IF_ERROR(Grow(b, t.nbytes()));
    b.dims = t.dims();
    if (t.nbytes()) std::memcpy(b.host, t.raw(), t.nbytes());
    KILN_RETURN_IF_ERROR(ctx_->SetTensorAddress(name, b.device));
  }
  for (auto& [name, b] : outputs_) {
    KILN_ASSIGN_OR_RETURN(b.dims, ctx_->GetOutputShape(name));
    if (std::any_of(b.dims.begin(), b.dims.end(), [](int64_t d) { return d < 0; })) {
      KILN_RETURN_IF_ERROR(ctx_->SetOutputAllocator(name, this));  // sized during Enqueue
      continue;
    }
    KILN_RETURN_IF_ERROR(Grow(b, ElementsOf(b.dims) * ElementSize(b.dtype)));
    KILN_RETURN_IF_ERROR(ctx_->SetTensorAddress(name, b.device));
  }
  return Status::Ok();
}

Status HostRunner::Run(RunTiming* timing) {
  auto t0 = std::chrono::steady_clock::now();
  KILN_CUDA_RETURN_IF_ERROR(cudaEventRecord(ev_[0], stream_));
  for (auto& [name, b] : inputs_)
    if (b.bytes)
      KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(b.device, b.host, b.bytes, cudaMemcpyHostToDevice, stream_));
  KILN_CUDA_RETURN_IF_ERROR(cudaEventRecord(ev_[1], stream_));
  auto e0 = std::chrono::steady_clock::now();
  grow_error_ = Status::Ok();
  Status enq = ctx_->Enqueue(stream_);
  KILN_RETURN_IF_ERROR(grow_error_);
  KILN_RETURN_IF_ERROR(enq);
  auto e1 = std::chrono::steady_clock::now();
  KILN_CUDA_RETURN_IF_ERROR(cudaEventRecord(ev_[2], stream_));
  // An output sized during Enqueue holds its real extent packed at the front of a buffer sized at its bound:
  // only that part is copied (the rest was never written).
  for (auto& [name, b] : outputs_)
    if (const size_t bytes = std::min(b.bytes, ElementsOf(b.dims) * ElementSize(b.dtype)))
      KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(b.host, b.device, bytes, cudaMemcpyDeviceToHost, stream_));
  KILN_CUDA_RETURN_IF_ERROR(cudaEventRecord(ev_[3], stream_));
  KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
  auto t1 = std::chrono::steady_clock::now();
  if (timing) {
    KILN_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&timing->h2d_ms, ev_[0], ev_[1]));
    KILN_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&timing->compute_ms, ev_[1], ev_[2]));
    KILN_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&timing->d2h_ms, ev_[2], ev_[3]));
    timing->enqueue_us = std::chrono::duration<double, std::micro>(e1 - e0).count();
    timing->total_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  }
  return Status::Ok();
}

void* HostRunner::Reallocate(const std::string& name, void* current, size_t bytes) {
  Buffer& b = outputs_[name];
  Status s = Grow(b, bytes);
  if (!s.ok()) {
    grow_error_ = s.WithPrefix("output '" + name + "'");
    return nullptr;
  }
  return b.device;
}

void HostRunner::NotifyShape(const std::string& name, const std::vector<int64_t>& dims) { outputs_[name].dims = dims; }

Expected<std::map<std::string, Tensor>> HostRunner::Outputs() const {
  std::map<std::string, Tensor> out;
  for (const auto& [name, b] : outputs_) {
    Tensor t(b.dtype, b.dims);
    if (t.nbytes()) std::memcpy(t.mutable_raw(), b.host, t.nbytes());
    out[name] = std::move(t);
  }
  return out;
}

}  // namespace kiln::cuda
