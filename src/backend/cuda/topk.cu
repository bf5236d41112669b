// TopK along one axis (largest or smallest, always sorted; equal values keep
// the lower index first and NaN ranks as the largest value, as the reference's
// stable sort). One thread per input element counts the elements of its line
// that rank before it; an element whose rank r is below K writes itself to
// output slot r. O(n²) compares per line of n, without shared memory or a
// workspace: right for the K-of-a-few-thousand of detection heads and
// samplers, not for a sort of a 50k vocabulary (CUB's segmented radix sort is
// the later optimisation).
//
// K known on the host (a constant, or folded from shapes) makes the output
// shapes static. K computed on the device makes the op data-dependent
// (GpuOp::OutputBounds): the outputs are sized at the axis dim, K is read on
// the device, clamped to [0, n] (the reference rejects a K outside it; the
// device cannot report it), and the real dims go to the outputs' extents.
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/node_context.h"
#include "ops/op_util.h"
#include "ops/reduce_util.h"

namespace kiln::cuda {
namespace {

using reduce::AxisView;

constexpr int64_t kDeviceK = -1;  // K is read on the device

struct Dims {
  int rank = 0;
  int axis = 0;
  int64_t d[kMaxRank];
};

// K as the kernels see it: k_host, or *k_dev clamped to [0, n] when k_dev is set.
template <class KI>
__device__ inline int64_t ReadK(int64_t k_host, const KI* k_dev, int64_t n) {
  if (!k_dev) return k_host;
  const int64_t k = static_cast<int64_t>(*k_dev);
  return k < 0 ? 0 : (k > n ? n : k);
}

template <class T, class KI>
__global__ void TopKKernel(const T* __restrict__ x, T* __restrict__ values, int64_t* __restrict__ indices,
                           AxisView v, int64_t k_host, const KI* k_dev, bool largest) {
  const int64_t total = v.outer * v.n * v.inner;
  const int64_t k = ReadK(k_host, k_dev, v.n);
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = e % v.inner, j = (e / v.inner) % v.n, o = e / (v.inner * v.n);
    const T* line = x + o * v.n * v.inner + i;
    const auto c = ToCompute(x[e]);
    int64_t rank = 0;
    for (int64_t m = 0; m < v.n && rank < k; ++m) {
      if (m == j) continue;
      const auto cm = ToCompute(line[m * v.inner]);
      const bool before = largest ? Above(cm, c) : Above(c, cm);
      const bool tie = !Above(cm, c) && !Above(c, cm);
      rank += before || (tie && m < j);
    }
    if (rank < k) {
      const int64_t dst = (o * k + rank) * v.inner + i;
      values[dst] = x[e];
      indices[dst] = j;
    }
  }
}

// The outputs' real dims: the input's with the axis at K.
template <class KI>
__global__ void TopKExtentKernel(int64_t* values_extent, int64_t* indices_extent, Dims dims, const KI* k_dev,
                                 int64_t k_host) {
  const int64_t k = ReadK(k_host, k_dev, dims.d[dims.axis]);
  for (int r = 0; r < dims.rank; ++r) {
    const int64_t d = r == dims.axis ? k : dims.d[r];
    if (values_extent) values_extent[r] = d;
    if (indices_extent) indices_extent[r] = d;
  }
}

class TopKOp final : public GpuOp {
 public:
  TopKOp(const Node& n, int64_t opset) : node_(n), opset_(opset) {}

  Expected<std::vector<std::vector<int64_t>>> OutputBounds(const std::vector<DevTensor>& in) const override {
    int64_t axis = 0, k = 0;
    KILN_RETURN_IF_ERROR(ReadAxisAndK(in, &axis, &k));
    if (k != kDeviceK) return std::vector<std::vector<int64_t>>{};  // K on the host: static shapes
    std::vector<int64_t> dims = in[0].dims;
    // At most the axis dim: the bound is the input's dims.
    return std::vector<std::vector<int64_t>>{dims, dims};
  }

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>&, GpuResources&) override {
    int64_t axis = 0;
    KILN_RETURN_IF_ERROR(ReadAxisAndK(in, &axis, &k_));
    const auto& d = in[0].dims;
    v_ = reduce::ViewAround(d, axis);
    dims_ = Dims{};
    dims_.rank = static_cast<int>(d.size());
    dims_.axis = static_cast<int>(axis);
    for (size_t r = 0; r < d.size(); ++r) dims_.d[r] = d[r];
    largest_ = opset_ < 11 || GpuNodeContext(node_, opset_, &in).attr_int("largest", 1) != 0;
    return Status::Ok();
  }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    const bool device_k = k_ == kDeviceK;
    bool ok = true;
    auto launch = [&](auto ktag) {
      using KI = decltype(ktag);
      const KI* k_dev = device_k ? static_cast<const KI*>(in[1].data) : nullptr;
      if (out[0].extent || out[1].extent)
        TopKExtentKernel<KI><<<1, 1, 0, stream>>>(out[0].extent, out[1].extent, dims_, k_dev, k_);
      const int64_t total = v_.outer * v_.n * v_.inner;
      if (total == 0 || (!device_k && k_ == 0)) return;
      ok = DispatchDevice(in[0].dtype, [&](auto tag) {
        using T = decltype(tag);
        if constexpr (!std::is_same<T, bool>::value)
          TopKKernel<T, KI><<<GridFor(total, 256), 256, 0, stream>>>(
              static_cast<const T*>(in[0].data), static_cast<T*>(out[0].data), static_cast<int64_t*>(out[1].data),
              v_, k_, k_dev, largest_);
      });
    };
    if (device_k && in[1].dtype == DataType::kInt32) launch(int32_t{});
    else launch(int64_t{});
    return LaunchStatus(ok, node_, in[0].dtype, "topk kernel");
  }

 private:
  // The normalised axis, and K when it is known on the host (checked against
  // the axis dim, naming the node), else kDeviceK.
  Status ReadAxisAndK(const std::vector<DevTensor>& in, int64_t* axis, int64_t* k) const {
    GpuNodeContext ctx(node_, opset_, &in);
    const int64_t rank = static_cast<int64_t>(in[0].dims.size());
    if (rank > kMaxRank) return ctx.UnsupportedError("rank over 8 on the GPU");
    KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", -1), rank, axis));
    const int64_t n = in[0].dims[static_cast<size_t>(*axis)];
    *k = kDeviceK;
    if (opset_ < 10) {
      *k = ctx.attr_int("k", 0);
    } else if (const Tensor* t = HostInput(node_, in, 1)) {
      if (t->numel() != 1) return ctx.Error("k must be a single value");
      *k = t->IntAt(0);
    } else if (in.size() < 2 || (in[1].dtype != DataType::kInt64 && in[1].dtype != DataType::kInt32)) {
      return ctx.Error("k must be a single int64 value");
    }
    if (*k != kDeviceK && (*k < 0 || *k > n))
      return ctx.Error("k = " + std::to_string(*k) + " must be in [0, " + std::to_string(n) + "]");
    return Status::Ok();
  }

  const Node& node_;
  int64_t opset_;
  AxisView v_;
  Dims dims_;
  int64_t k_ = kDeviceK;
  bool largest_ = true;
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeTopKOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(std::make_unique<TopKOp>(*info.node, info.opset));
}

}  // namespace kiln::cuda
