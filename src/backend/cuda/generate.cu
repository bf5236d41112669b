// Generators whose output shape is the value of an input: Range (start,
// limit, delta) and ConstantOfShape (shape). Those inputs must be known on the
// host before the run (the rows declare them Host: constants, shape
// arithmetic, or shape-tensor graph inputs given with SetInputValue), like
// TensorRT's shape tensors; a node whose inputs are all host values is folded
// by the runtime as shape arithmetic, so these kernels run when the builder
// keeps the node on the device. Semantics: src/ops/shape_generate.cc.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/node_context.h"

namespace kiln::cuda {
namespace {

// y[i] = start + i * delta in the reference's compute type (float for the
// 16-bit floats, the storage type otherwise).
template <class T>
__global__ void RangeKernel(T* __restrict__ y, int64_t n, double start_f, double delta_f, int64_t start_i,
                            int64_t delta_i) {
  using C = decltype(ToCompute(T{}));
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if constexpr (std::is_floating_point<C>::value) {
      const C s = static_cast<C>(start_f), d = static_cast<C>(delta_f);
      y[i] = FromCompute<T>(static_cast<C>(s + static_cast<C>(i) * d));
    } else {
      y[i] = static_cast<T>(static_cast<C>(start_i) + static_cast<C>(i) * static_cast<C>(delta_i));
    }
  }
}

template <class W>
__global__ void FillKernel(W* __restrict__ y, int64_t n, W v) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = v;
}

class RangeOp final : public GpuOp {
 public:
  RangeOp(const Node& n, int64_t opset) : node_(n), opset_(opset) {}

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources&) override {
    GpuNodeContext ctx(node_, opset_, &in);
    const Tensor* s = HostInput(node_, in, 0);
    const Tensor* d = HostInput(node_, in, 2);
    if (!s || !d || !HostInput(node_, in, 1))
      return ctx.UnsupportedError("start, limit and delta must be known before the run on the GPU");
    if (s->numel() != 1 || d->numel() != 1) return ctx.Error("inputs must be scalars");
    start_f_ = s->ScalarAt(0);
    delta_f_ = d->ScalarAt(0);
    if (!IsFloatingPoint(s->dtype())) {
      start_i_ = s->IntAt(0);
      delta_i_ = d->IntAt(0);
    }
    return Status::Ok();
  }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    const int64_t n = out[0].numel();
    if (n == 0) return Status::Ok();
    const bool ok = DispatchDevice(out[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      RangeKernel<T><<<GridFor(n, 256), 256, 0, stream>>>(static_cast<T*>(out[0].data), n, start_f_, delta_f_,
                                                          start_i_, delta_i_);
    });
    return LaunchStatus(ok, node_, out[0].dtype, "range kernel");
  }

 private:
  const Node& node_;
  int64_t opset_;
  double start_f_ = 0, delta_f_ = 1;
  int64_t start_i_ = 0, delta_i_ = 1;
};

class ConstantOfShapeOp final : public GpuOp {
 public:
  explicit ConstantOfShapeOp(const Node& n) : node_(n) {
    const Attribute* v = n.attr("value");
    if (v && v->t.defined() && v->t.numel() == 1) {
      size_ = ElementSize(v->t.dtype());
      std::memcpy(bytes_, v->t.raw(), size_);
    }
  }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    const int64_t n = out[0].numel();
    if (n == 0) return Status::Ok();
    const size_t size = ElementSize(out[0].dtype);
    const bool ok = DispatchWord(size, [&](auto w) {
      using W = decltype(w);
      W v{};
      if (size_ == size) std::memcpy(&v, bytes_, size);
      FillKernel<W><<<GridFor(n, 256), 256, 0, stream>>>(static_cast<W*>(out[0].data), n, v);
    });
    return LaunchStatus(ok, node_, out[0].dtype, "fill kernel");
  }

 private:
  const Node& node_;
  unsigned char bytes_[8] = {};
  size_t size_ = 4;  // float 0 by default
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeRangeOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(std::make_unique<RangeOp>(*info.node, info.opset));
}

// Refuses a value attribute that is not one element of a word-sized type.
Expected<std::unique_ptr<GpuOp>> MakeConstantOfShapeOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  const Attribute* v = n.attr("value");
  if (v && (!v->t.defined() || v->t.numel() != 1 || ElementSize(v->t.dtype()) == 0 ||
            ElementSize(v->t.dtype()) > 8 || v->t.dtype() == DataType::kString))
    return Unsupported(n.Label() + ": value must be one element of a numeric type on the GPU");
  return std::unique_ptr<GpuOp>(std::make_unique<ConstantOfShapeOp>(n));
}

}  // namespace kiln::cuda
