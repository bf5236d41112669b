// ScatterElements (and the deprecated Scatter) and ScatterND, reduction
// none/add/mul/max/min: the output is a copy of the data with the updates
// applied. Deterministic, with no atomics, and in the reference's order:
// 1. one thread per update row computes the output offset it writes
//    (ScatterND: one row per index tuple, of `slab` elements; ScatterElements:
//    one row per index element) into the workspace, -1 for an index out of
//    range (the reference rejects it; the device skips it);
// 2. one thread per (row, element of the slab) that is the first of its
//    "line" to hit its target folds, in update order, every update of the line
//    that hits the same target and writes the result once.
// Duplicates can only meet within a line: ScatterElements' line is the index
// elements sharing every coordinate but the axis, ScatterND's is every tuple.
// Duplicate indices with reduction none are undefined in ONNX; here, as in the
// reference, the last update wins. Float16 reductions round after every step,
// as the reference does. Cost: O(updates × line length) index compares, fine
// for the index counts of detection/decoder graphs (a sort by target is the
// later optimisation for very long lines).
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/node_context.h"
#include "ops/op_util.h"
#include "ops/reduce_util.h"
#include "ops/scatter_plan.h"

namespace kiln::cuda {
namespace {

using ops::ScatterReduction;
using reduce::AxisView;

struct ElementsArgs {
  int rank = 0, axis = 0;
  int64_t ind_dims[kMaxRank];
  int64_t data_strides[kMaxRank];
  int64_t axis_dim = 0;
};

template <class I>
__global__ void ElementsTargetsKernel(const I* __restrict__ idx, int64_t* __restrict__ target, int64_t n,
                                      ElementsArgs a) {
  for (int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; p < n;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t r = p, off = 0;
    for (int d = a.rank - 1; d >= 0; --d) {
      const int64_t c = r % a.ind_dims[d];
      r /= a.ind_dims[d];
      if (d != a.axis) off += c * a.data_strides[d];
    }
    int64_t v = static_cast<int64_t>(idx[p]);
    if (v < 0) v += a.axis_dim;
    target[p] = v >= 0 && v < a.axis_dim ? off + v * a.data_strides[a.axis] : -1;
  }
}

struct NDArgs {
  int depth = 0;
  int64_t data_dims[kMaxRank];
  int64_t data_strides[kMaxRank];
};

template <class I>
__global__ void NDTargetsKernel(const I* __restrict__ idx, int64_t* __restrict__ target, int64_t picks, NDArgs a) {
  for (int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; p < picks;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t off = 0;
    for (int k = 0; k < a.depth && off >= 0; ++k) {
      int64_t v = static_cast<int64_t>(idx[p * a.depth + k]);
      if (v < 0) v += a.data_dims[k];
      off = v >= 0 && v < a.data_dims[k] ? off + v * a.data_strides[k] : -1;
    }
    target[p] = off;
  }
}

template <class T>
__device__ inline T Combine(ScatterReduction red, T a, T b) {
  const auto x = ToCompute(a), y = ToCompute(b);
  switch (red) {
    case ScatterReduction::kAdd: return FromCompute<T>(x + y);
    case ScatterReduction::kMul: return FromCompute<T>(x * y);
    case ScatterReduction::kMax: return FromCompute<T>(x < y ? y : x);  // std::max(x, y)
    case ScatterReduction::kMin: return FromCompute<T>(y < x ? y : x);  // std::min(x, y)
    default: return b;
  }
}

// Rows are the update rows seen as lines (AxisView over [outer, n, inner]:
// rows (o, *, i) form one line); row p's updates start at upd[p * slab].
template <class T>
__global__ void ScatterKernel(T* __restrict__ out, const T* __restrict__ upd, const int64_t* __restrict__ target,
                              AxisView lines, int64_t slab, ScatterReduction red) {
  const int64_t total = lines.outer * lines.n * lines.inner * slab;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t s = e % slab, p = e / slab;
    const int64_t i = p % lines.inner, j = (p / lines.inner) % lines.n, o = p / (lines.inner * lines.n);
    const int64_t t = target[p];
    if (t < 0) continue;
    bool first = true;
    for (int64_t q = 0; q < j && first; ++q) first = target[(o * lines.n + q) * lines.inner + i] != t;
    if (!first) continue;
    T acc = red == ScatterReduction::kNone ? upd[e] : Combine(red, out[t + s], upd[e]);
    for (int64_t q = j + 1; q < lines.n; ++q) {
      const int64_t r = (o * lines.n + q) * lines.inner + i;
      if (target[r] == t) acc = Combine(red, acc, upd[r * slab + s]);
    }
    out[t + s] = acc;
  }
}

class ScatterOp final : public GpuOp {
 public:
  ScatterOp(const Node& n, int64_t opset, bool nd) : node_(n), opset_(opset), nd_(nd) {}

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>&, GpuResources&) override {
    GpuNodeContext ctx(node_, opset_, &in);
    if (in.size() != 3) return ctx.Error("expects 3 inputs");
    const auto& data = in[0].dims;
    if (data.size() > static_cast<size_t>(kMaxRank)) return ctx.UnsupportedError("rank over 8 on the GPU");
    if (in[2].dtype != in[0].dtype) return ctx.Error("updates must have the data's type");
    if (in[1].dtype != DataType::kInt64 && in[1].dtype != DataType::kInt32)
      return ctx.Error("indices must be int32 or int64");
    red_ = ScatterReduction::kNone;
    if (node_.op_type != "Scatter") KILN_RETURN_IF_ERROR(ops::ReadScatterReduction(ctx, &red_));
    if (red_ != ScatterReduction::kNone && in[0].dtype == DataType::kBool)
      return ctx.UnsupportedError("reduction on type bool");
    const std::vector<int64_t> strides = Strides(data);
    if (nd_) {
      ops::ScatterNDPlan plan;
      KILN_RETURN_IF_ERROR(ops::CheckScatterND(ctx, data, in[1].dims, in[2].dims, &plan));
      nd_args_ = NDArgs{};
      nd_args_.depth = static_cast<int>(plan.depth);
      for (size_t k = 0; k < static_cast<size_t>(plan.depth); ++k) {
        nd_args_.data_dims[k] = data[k];
        nd_args_.data_strides[k] = strides[k];
      }
      lines_ = AxisView{1, plan.picks, 1};
      slab_ = plan.slab;
    } else {
      int64_t axis = 0;
      KILN_RETURN_IF_ERROR(ops::CheckScatterElements(ctx, data, in[1].dims, in[2].dims, &axis));
      el_args_ = ElementsArgs{};
      el_args_.rank = static_cast<int>(data.size());
      el_args_.axis = static_cast<int>(axis);
      el_args_.axis_dim = data[static_cast<size_t>(axis)];
      for (size_t d = 0; d < data.size(); ++d) {
        el_args_.ind_dims[d] = in[1].dims[d];
        el_args_.data_strides[d] = strides[d];
      }
      lines_ = reduce::ViewAround(in[1].dims, axis);
      slab_ = 1;
    }
    rows_ = lines_.outer * lines_.n * lines_.inner;
    return Status::Ok();
  }

  size_t WorkspaceBytes() const override { return static_cast<size_t>(rows_) * sizeof(int64_t); }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void* workspace, GpuResources&,
                 cudaStream_t stream) override {
    const size_t bytes = static_cast<size_t>(out[0].numel()) * ElementSize(out[0].dtype);
    if (bytes > 0 && out[0].data != in[0].data)
      KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out[0].data, in[0].data, bytes, cudaMemcpyDeviceToDevice, stream));
    if (rows_ == 0 || slab_ == 0 || bytes == 0) return Status::Ok();
    auto* target = static_cast<int64_t*>(workspace);
    const unsigned grid = GridFor(rows_, 256);
    auto targets = [&](auto itag) {
      using I = decltype(itag);
      const I* idx = static_cast<const I*>(in[1].data);
      if (nd_) NDTargetsKernel<I><<<grid, 256, 0, stream>>>(idx, target, rows_, nd_args_);
      else ElementsTargetsKernel<I><<<grid, 256, 0, stream>>>(idx, target, rows_, el_args_);
    };
    if (in[1].dtype == DataType::kInt64) targets(int64_t{});
    else targets(int32_t{});
    bool ok = DispatchDevice(out[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (!std::is_same<T, bool>::value)
        ScatterKernel<T><<<GridFor(rows_ * slab_, 256), 256, 0, stream>>>(
            static_cast<T*>(out[0].data), static_cast<const T*>(in[2].data), target, lines_, slab_, red_);
      else  // bool: reduction none only (Prepare); moved as bytes
        ScatterKernel<uint8_t><<<GridFor(rows_ * slab_, 256), 256, 0, stream>>>(
            static_cast<uint8_t*>(out[0].data), static_cast<const uint8_t*>(in[2].data), target, lines_, slab_,
            red_);
    });
    return LaunchStatus(ok, node_, out[0].dtype, "scatter kernel");
  }

 private:
  const Node& node_;
  int64_t opset_;
  bool nd_;
  ScatterReduction red_ = ScatterReduction::kNone;
  ElementsArgs el_args_;
  NDArgs nd_args_;
  AxisView lines_;
  int64_t slab_ = 1, rows_ = 0;
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeScatterOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(std::make_unique<ScatterOp>(*info.node, info.opset, info.node->op_type == "ScatterND"));
}

}  // namespace kiln::cuda
