// Resize / Upsample on the GPU. The interpolation taps (source indices and
// weights per output index of every resized axis: nearest / linear / cubic,
// every coordinate transformation, exclude_outside, antialias, tf_crop_and_resize
// extrapolation) come from ops/resize_plan.h, the same code the CPU reference
// applies, computed in Prepare at the concrete shapes and uploaded once per
// shape. The kernel gives one output element per thread: the tensor product of
// its axes' taps (separable filters), accumulated in float.
#include <algorithm>
#include <cmath>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/node_context.h"
#include "ops/resize_plan.h"

namespace kiln::cuda {
namespace {

constexpr int kMaxResizedAxes = 4;
constexpr int kMaxTapProduct = 4096;  // taps per output element (antialiased downscaling widens them)

struct TapAxis {
  int axis = 0;
  int n = 0;                  // taps per output index
  int64_t taps = 0;           // offset of this axis's (index, weight) entries in the table
  int64_t flags = 0;          // offset of its extrapolate flags
};

struct ResizeArgs {
  int rank = 0;
  int64_t out_dims[kMaxRank];
  int64_t in_strides[kMaxRank];
  int resized = 0;            // number of TapAxis entries
  TapAxis axes[kMaxResizedAxes];
  bool is_resized[kMaxRank];
  float extrapolation = 0.f;
};

struct Tap {
  int32_t index;
  float weight;
};

template <class T>
__global__ void ResizeKernel(const T* __restrict__ x, T* __restrict__ y, int64_t total, ResizeArgs a,
                             const Tap* __restrict__ taps, const uint8_t* __restrict__ flags) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t coord[kMaxRank];
    int64_t r = i;
    for (int d = a.rank - 1; d >= 0; --d) {
      coord[d] = r % a.out_dims[d];
      r /= a.out_dims[d];
    }
    int64_t base = 0;
    for (int d = 0; d < a.rank; ++d)
      if (!a.is_resized[d]) base += coord[d] * a.in_strides[d];
    bool extrapolate = false;
    int64_t product = 1;
    const Tap* row[kMaxResizedAxes];
    for (int k = 0; k < a.resized; ++k) {
      const TapAxis& ax = a.axes[k];
      extrapolate |= flags[ax.flags + coord[ax.axis]] != 0;
      row[k] = taps + ax.taps + coord[ax.axis] * ax.n;
      product *= ax.n;
    }
    if (extrapolate) {
      y[i] = FromFloat<T>(a.extrapolation);
      continue;
    }
    float acc = 0.f;
    for (int64_t t = 0; t < product; ++t) {
      int64_t rest = t, off = base;
      float w = 1.f;
      for (int k = a.resized - 1; k >= 0; --k) {
        const int n = a.axes[k].n;
        const Tap tap = row[k][rest % n];
        rest /= n;
        w *= tap.weight;
        off += static_cast<int64_t>(tap.index) * a.in_strides[a.axes[k].axis];
      }
      acc += w * ToFloat(x[off]);
    }
    y[i] = FromFloat<T>(acc);
  }
}

class ResizeOp final : public GpuOp {
 public:
  ResizeOp(const Node& n, int64_t opset) : node_(n), opset_(opset) {}

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources&) override {
    GpuNodeContext ctx(node_, opset_, &in);
    const bool legacy = ops::IsLegacyResize(ctx);
    auto host = [&](size_t i) -> Expected<const Tensor*> {
      if (i >= node_.num_inputs() || !node_.input(i)) return static_cast<const Tensor*>(nullptr);
      const Tensor* t = HostInput(node_, in, i);
      if (!t) return ctx.UnsupportedError("input " + std::to_string(i) + " must be known before the run on the GPU");
      return t;
    };
    KILN_ASSIGN_OR_RETURN(const Tensor* roi, host(legacy ? 99 : 1));
    KILN_ASSIGN_OR_RETURN(const Tensor* scales, host(legacy ? 1 : 2));
    KILN_ASSIGN_OR_RETURN(const Tensor* sizes, host(legacy ? 99 : 3));
    KILN_ASSIGN_OR_RETURN(ops::ResizePlan plan, ops::PlanResize(ctx, in[0].dims, roi, scales, sizes));
    if (plan.out_dims != out[0].dims)
      return Internal(node_.Label() + ": planned output " + DimsToString(plan.out_dims) + " but shape inference said " +
                      DimsToString(out[0].dims));
    const int rank = static_cast<int>(in[0].dims.size());
    if (rank > kMaxRank) return ctx.UnsupportedError("rank over 8 on the GPU");
    if (static_cast<int>(plan.axes.size()) > kMaxResizedAxes)
      return ctx.UnsupportedError("more than 4 resized axes on the GPU");
    args_ = ResizeArgs{};
    args_.rank = rank;
    args_.extrapolation = static_cast<float>(plan.attrs.extrapolation_value);
    int64_t stride = 1;
    for (int d = rank - 1; d >= 0; --d) {
      args_.out_dims[d] = out[0].dims[d];
      args_.in_strides[d] = stride;
      args_.is_resized[d] = false;
      stride *= in[0].dims[d];
    }
    // The table: every axis's taps, then every axis's extrapolate flags.
    // Nearest taps are one-hot: keep the chosen one.
    std::vector<Tap> taps;
    std::vector<uint8_t> flags;
    int64_t product = 1;
    for (const ops::AxisTaps& t : plan.axes) {
      if (t.in > INT32_MAX) return ctx.UnsupportedError("an axis of 2^31 elements or more on the GPU");
      TapAxis& ax = args_.axes[args_.resized++];
      ax.axis = static_cast<int>(t.axis);
      args_.is_resized[t.axis] = true;
      const bool nearest = plan.attrs.mode == "nearest";
      ax.n = nearest ? 1 : static_cast<int>(t.n);
      ax.taps = static_cast<int64_t>(taps.size());
      ax.flags = static_cast<int64_t>(flags.size());
      for (int64_t y = 0; y < t.out; ++y) {
        const int64_t* idx = t.index.data() + y * t.n;
        const double* w = t.weight.data() + y * t.n;
        if (nearest) {
          int64_t j = std::max_element(w, w + t.n) - w;
          taps.push_back({static_cast<int32_t>(idx[j]), 1.f});
        } else {
          for (int64_t j = 0; j < t.n; ++j) taps.push_back({static_cast<int32_t>(idx[j]), static_cast<float>(w[j])});
        }
        flags.push_back(t.extrapolate[static_cast<size_t>(y)]);
      }
      product *= std::max(ax.n, 1);
    }
    if (product > kMaxTapProduct)
      return ctx.UnsupportedError(std::to_string(product) + " taps per output element on the GPU (antialiased downscaling by a large factor)");
    flags_offset_ = (taps.size() * sizeof(Tap) + 15) / 16 * 16;
    size_t bytes = flags_offset_ + flags.size();
    KILN_RETURN_IF_ERROR(table_.Reserve(std::max<size_t>(bytes, 16)));
    if (!taps.empty())
      KILN_CUDA_RETURN_IF_ERROR(cudaMemcpy(table_.get(), taps.data(), taps.size() * sizeof(Tap), cudaMemcpyHostToDevice));
    if (!flags.empty())
      KILN_CUDA_RETURN_IF_ERROR(cudaMemcpy(static_cast<char*>(table_.get()) + flags_offset_, flags.data(), flags.size(),
                                           cudaMemcpyHostToDevice));
    return Status::Ok();
  }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    const int64_t n = out[0].numel();
    if (n == 0) return Status::Ok();
    const Tap* taps = static_cast<const Tap*>(table_.get());
    const uint8_t* flags = static_cast<const uint8_t*>(table_.get()) + flags_offset_;
    auto launch = [&](auto tag) {
      using T = decltype(tag);
      ResizeKernel<T><<<GridFor(n, 256), 256, 0, stream>>>(static_cast<const T*>(in[0].data),
                                                          static_cast<T*>(out[0].data), n, args_, taps, flags);
    };
    if (!DispatchFloatDevice(in[0].dtype, launch))
      return Unsupported(node_.Label() + ": Resize of " + std::string(DataTypeName(in[0].dtype)) + " on the GPU");
    return CudaStatus(cudaGetLastError(), "resize kernel");
  }

 private:
  const Node& node_;
  int64_t opset_;
  ResizeArgs args_;
  DeviceBuffer table_;
  size_t flags_offset_ = 0;
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeResizeOp(const GpuOpInfo& info) {
  GpuNodeContext ctx(*info.node, info.opset);
  KILN_RETURN_IF_ERROR(ops::ReadResizeAttrs(ctx).status());
  return std::unique_ptr<GpuOp>(std::make_unique<ResizeOp>(*info.node, info.opset));
}

}  // namespace kiln::cuda
