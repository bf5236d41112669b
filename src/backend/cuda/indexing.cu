// Index-computing movement ops, one output element per thread, moving 1/2/4/8
// byte words (any element type of that size): Tile (out[c] = x[c mod dims])
// and GatherElements (out[c] = x[c with c[axis] = indices[c]], negative
// indices wrap; an index out of range writes zero, as the device cannot
// report it: the CPU reference rejects such inputs), Trilu (keeps
// j − i >= k (upper) or <= k (lower) of the last two dims, zeros the rest) and
// OneHot (depth known on the host; [off, on] from the device, or the host;
// indices of any numeric type truncated to integers, negative ones wrap once,
// out of range ones give an all-off line, as the reference).
#include <cstring>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/node_context.h"
#include "ops/op_util.h"

namespace kiln::cuda {
namespace {

struct IndexArgs {
  int rank = 0;
  int64_t out_dims[kMaxRank];
  int64_t in_dims[kMaxRank];
  int64_t in_strides[kMaxRank];
  int axis = 0;     // GatherElements
  int64_t k = 0;    // Trilu
  bool upper = true;
};

template <class W>
__global__ void TileKernel(const W* __restrict__ x, W* __restrict__ y, int64_t total, IndexArgs a) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t r = i, off = 0;
    for (int d = a.rank - 1; d >= 0; --d) {
      const int64_t c = r % a.out_dims[d];
      r /= a.out_dims[d];
      off += (c % a.in_dims[d]) * a.in_strides[d];
    }
    y[i] = x[off];
  }
}

template <class W, class I>
__global__ void GatherElementsKernel(const W* __restrict__ x, const I* __restrict__ idx, W* __restrict__ y,
                                     int64_t total, IndexArgs a) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t r = i, off = 0;
    bool inside = true;
    for (int d = a.rank - 1; d >= 0; --d) {
      int64_t c = r % a.out_dims[d];
      r /= a.out_dims[d];
      if (d == a.axis) {
        c = static_cast<int64_t>(idx[i]);
        if (c < 0) c += a.in_dims[d];
        inside &= c >= 0 && c < a.in_dims[d];
      }
      off += c * a.in_strides[d];
    }
    y[i] = inside ? x[off] : W{};
  }
}

template <class W>
__global__ void TriluKernel(const W* __restrict__ x, W* __restrict__ y, int64_t total, IndexArgs a) {
  const int64_t cols = a.out_dims[a.rank - 1], rows = a.out_dims[a.rank - 2];
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = i % cols, r = (i / cols) % rows;
    const bool keep = a.upper ? c - r >= a.k : c - r <= a.k;
    y[i] = keep ? x[i] : W{};
  }
}

template <class W, class I>
__global__ void OneHotKernel(const I* __restrict__ idx, const W* __restrict__ values, W* __restrict__ y,
                             int64_t total, int64_t depth, int64_t inner, W off, W on) {
  if (values) {
    off = values[0];
    on = values[1];
  }
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t j = e % inner, d = (e / inner) % depth, o = e / (inner * depth);
    int64_t v = static_cast<int64_t>(ToCompute(idx[o * inner + j]));
    if (v < 0) v += depth;
    y[e] = v == d ? on : off;
  }
}

class OneHotOp final : public GpuOp {
 public:
  OneHotOp(const Node& n, int64_t opset) : node_(n), opset_(opset) {}

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources&) override {
    GpuNodeContext ctx(node_, opset_, &in);
    if (in.size() != 3) return ctx.Error("expects 3 inputs");
    const Tensor* depth = HostInput(node_, in, 1);
    if (!depth || depth->numel() != 1) return ctx.UnsupportedError("depth must be one value known before the run on the GPU");
    depth_ = static_cast<int64_t>(depth->ScalarAt(0));
    if (in[2].numel() != 2) return ctx.Error("values must hold [off, on]");
    const int64_t rank = static_cast<int64_t>(in[0].dims.size());
    int64_t axis = ctx.attr_int("axis", -1);
    if (axis < 0) axis += rank + 1;
    if (axis < 0 || axis > rank) return ctx.Error("axis " + std::to_string(ctx.attr_int("axis", -1)) + " is out of range");
    inner_ = 1;
    for (int64_t d = axis; d < rank; ++d) inner_ *= in[0].dims[static_cast<size_t>(d)];
    const Tensor* values = HostInput(node_, in, 2);
    host_values_ = values != nullptr;
    if (values) std::memcpy(host_bytes_, values->raw(), 2 * ElementSize(values->dtype()));
    return Status::Ok();
  }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    const int64_t n = out[0].numel();
    if (n == 0) return Status::Ok();
    bool ok = false;
    DispatchWord(ElementSize(out[0].dtype), [&](auto word) {
      using W = decltype(word);
      W host[2] = {};
      std::memcpy(host, host_bytes_, sizeof(host));
      const W* dev = host_values_ ? nullptr : static_cast<const W*>(in[2].data);
      ok = DispatchDevice(in[0].dtype, [&](auto itag) {
        using I = decltype(itag);
        OneHotKernel<W, I><<<GridFor(n, 256), 256, 0, stream>>>(static_cast<const I*>(in[0].data), dev,
                                                                static_cast<W*>(out[0].data), n, depth_, inner_,
                                                                host[0], host[1]);
      });
    });
    return LaunchStatus(ok, node_, in[0].dtype, "onehot kernel");
  }

 private:
  const Node& node_;
  int64_t opset_;
  int64_t depth_ = 0, inner_ = 1;
  bool host_values_ = false;  // [off, on] known on the host (host_bytes_), else read on the device
  unsigned char host_bytes_[16] = {};
};

class IndexOp final : public GpuOp {
 public:
  IndexOp(const Node& n, int64_t opset) : node_(n), opset_(opset) {}

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources&) override {
    GpuNodeContext ctx(node_, opset_, &in);
    const auto& d = in[0].dims;
    if (d.size() > static_cast<size_t>(kMaxRank)) return ctx.UnsupportedError("rank over 8 on the GPU");
    if (out[0].dims.size() != d.size()) return Internal(node_.Label() + ": output rank differs from the input's");
    a_ = IndexArgs{};
    a_.rank = static_cast<int>(d.size());
    int64_t stride = 1;
    for (int i = a_.rank - 1; i >= 0; --i) {
      a_.in_dims[i] = d[static_cast<size_t>(i)];
      a_.out_dims[i] = out[0].dims[static_cast<size_t>(i)];
      a_.in_strides[i] = stride;
      stride *= d[static_cast<size_t>(i)];
    }
    if (node_.op_type == "GatherElements") {
      int64_t axis = 0;
      KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", 0), a_.rank, &axis));
      a_.axis = static_cast<int>(axis);
      if (in[1].dtype != DataType::kInt64 && in[1].dtype != DataType::kInt32)
        return ctx.Error("indices must be int32 or int64");
    } else if (node_.op_type == "Trilu") {
      if (a_.rank < 2) return ctx.Error("input must have rank >= 2");
      a_.upper = ctx.attr_int("upper", 1) != 0;
      a_.k = 0;
      if (node_.num_inputs() > 1 && node_.input(1)) {
        const Tensor* k = HostInput(node_, in, 1);
        if (!k || k->numel() != 1) return ctx.UnsupportedError("k must be one value known before the run on the GPU");
        a_.k = k->IntAt(0);
      }
    } else {
      for (int i = 0; i < a_.rank; ++i)
        if (a_.in_dims[i] == 0 && a_.out_dims[i] != 0) return ctx.Error("cannot tile an empty axis");
    }
    return Status::Ok();
  }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    const int64_t n = out[0].numel();
    if (n == 0) return Status::Ok();
    const unsigned grid = GridFor(n, 256);
    const bool gather = node_.op_type == "GatherElements";
    bool ok = DispatchWord(ElementSize(in[0].dtype), [&](auto word) {
      using W = decltype(word);
      const W* x = static_cast<const W*>(in[0].data);
      W* y = static_cast<W*>(out[0].data);
      if (node_.op_type == "Trilu") TriluKernel<W><<<grid, 256, 0, stream>>>(x, y, n, a_);
      else if (!gather) TileKernel<W><<<grid, 256, 0, stream>>>(x, y, n, a_);
      else if (in[1].dtype == DataType::kInt64)
        GatherElementsKernel<W, int64_t><<<grid, 256, 0, stream>>>(x, static_cast<const int64_t*>(in[1].data), y, n, a_);
      else
        GatherElementsKernel<W, int32_t><<<grid, 256, 0, stream>>>(x, static_cast<const int32_t*>(in[1].data), y, n, a_);
    });
    return LaunchStatus(ok, node_, in[0].dtype, "index kernel");
  }

 private:
  const Node& node_;
  int64_t opset_;
  IndexArgs a_;
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeOneHotOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(std::make_unique<OneHotOp>(*info.node, info.opset));
}

Expected<std::unique_ptr<GpuOp>> MakeIndexOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(std::make_unique<IndexOp>(*info.node, info.opset));
}

}  // namespace kiln::cuda
