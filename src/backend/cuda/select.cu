// Data-dependent selections (GpuOp::OutputBounds): NonZero and Compress. The
// outputs are sized at their bounds; Enqueue writes them packed at their real
// dims and the dims to DevTensor::extent. One block walks the input in chunks
// of its threads with a block-wide exclusive scan, so positions come out in
// the reference's (row-major) order without atomics:
// - NonZero: a first sweep counts the nonzeros (the row length of the
//   [rank, nnz] output), a second writes each one's coordinates.
// - Compress: one block scans the condition into output positions (workspace),
//   then one thread per input element copies the kept ones. Condition entries
//   past its length drop the rest of the axis, as the reference.
// The single scanning block bounds the speed (O(n) on one SM), not the
// correctness; a device-wide scan (CUB) is the later optimisation.
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/node_context.h"
#include "ops/op_util.h"
#include "ops/reduce_util.h"

namespace kiln::cuda {
namespace {

using reduce::AxisView;

constexpr int kScanBlock = 1024;

struct Dims {
  int rank = 0;
  int64_t d[kMaxRank];
};

template <class T>
__device__ inline int NonZeroFlag(const T* x, int64_t i, int64_t n) {
  if (i >= n) return 0;
  const auto v = ToCompute(x[i]);
  return v != decltype(v)(0);
}

// One block. y: [rank, nnz] row-major at the real nnz.
template <class T>
__global__ void NonZeroKernel(const T* __restrict__ x, int64_t n, int64_t* __restrict__ y, int64_t* extent, Dims dims) {
  int64_t count = 0, total = 0;
  for (int64_t c = 0; c < n; c += blockDim.x) {
    BlockExclusiveScan(NonZeroFlag(x, c + threadIdx.x, n), &total);
    count += total;
  }
  int64_t base = 0;
  for (int64_t c = 0; c < n; c += blockDim.x) {
    const int64_t i = c + threadIdx.x;
    const int flag = NonZeroFlag(x, i, n);
    const int64_t pos = base + BlockExclusiveScan(flag, &total);
    if (flag) {
      int64_t r = i;
      for (int d = dims.rank - 1; d >= 0; --d) {
        y[d * count + pos] = r % dims.d[d];
        r /= dims.d[d];
      }
    }
    base += total;
  }
  if (threadIdx.x == 0 && extent) {
    extent[0] = dims.rank;
    extent[1] = count;
  }
}

class NonZeroOp final : public GpuOp {
 public:
  NonZeroOp(const Node& n, int64_t opset) : node_(n), opset_(opset) {}

  Expected<std::vector<std::vector<int64_t>>> OutputBounds(const std::vector<DevTensor>& in) const override {
    if (in[0].dims.size() > static_cast<size_t>(kMaxRank))
      return GpuNodeContext(node_, opset_, &in).UnsupportedError("rank over 8 on the GPU");
    return std::vector<std::vector<int64_t>>{{static_cast<int64_t>(in[0].dims.size()), in[0].numel()}};
  }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    Dims dims;
    dims.rank = static_cast<int>(in[0].dims.size());
    if (dims.rank > kMaxRank) return GpuNodeContext(node_, opset_, &in).UnsupportedError("rank over 8 on the GPU");
    for (int d = 0; d < dims.rank; ++d) dims.d[d] = in[0].dims[static_cast<size_t>(d)];
    bool ok = DispatchDevice(in[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      NonZeroKernel<T><<<1, kScanBlock, 0, stream>>>(static_cast<const T*>(in[0].data), in[0].numel(),
                                                     static_cast<int64_t*>(out[0].data), out[0].extent, dims);
    });
    return LaunchStatus(ok, node_, in[0].dtype, "nonzero kernel");
  }

 private:
  const Node& node_;
  int64_t opset_;
};

// One block: pos[j] = kept entries before j (for j < m), pos[m] = their count.
__global__ void CompressScanKernel(const bool* __restrict__ cond, int64_t m, int64_t* __restrict__ pos,
                                   int64_t* extent, Dims dims, int axis) {
  int64_t base = 0, total = 0;
  for (int64_t c = 0; c < m; c += blockDim.x) {
    const int64_t j = c + threadIdx.x;
    const int flag = j < m && cond[j];
    const int64_t p = base + BlockExclusiveScan(flag, &total);
    if (j < m) pos[j] = p;
    base += total;
  }
  if (threadIdx.x == 0) {
    pos[m] = base;
    if (extent)
      for (int d = 0; d < dims.rank; ++d) extent[d] = d == axis ? base : dims.d[d];
  }
}

template <class W>
__global__ void CompressCopyKernel(const W* __restrict__ x, const bool* __restrict__ cond,
                                   const int64_t* __restrict__ pos, int64_t m, W* __restrict__ y, AxisView v) {
  const int64_t kept = pos[m], total = v.outer * v.n * v.inner;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = e % v.inner, j = (e / v.inner) % v.n, o = e / (v.inner * v.n);
    if (j < m && cond[j]) y[(o * kept + pos[j]) * v.inner + i] = x[e];
  }
}

class CompressOp final : public GpuOp {
 public:
  CompressOp(const Node& n, int64_t opset) : node_(n), opset_(opset) {}

  Expected<std::vector<std::vector<int64_t>>> OutputBounds(const std::vector<DevTensor>& in) const override {
    std::vector<int64_t> dims;
    int axis = 0;
    KILN_RETURN_IF_ERROR(View(in, &dims, &axis));
    dims[static_cast<size_t>(axis)] = in[1].numel();
    return std::vector<std::vector<int64_t>>{dims};
  }

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>&, GpuResources&) override {
    std::vector<int64_t> dims;
    int axis = 0;
    KILN_RETURN_IF_ERROR(View(in, &dims, &axis));
    v_ = reduce::ViewAround(dims, axis);
    m_ = in[1].numel();
    axis_ = axis;
    dims_ = Dims{};
    dims_.rank = static_cast<int>(dims.size());
    for (size_t d = 0; d < dims.size(); ++d) dims_.d[d] = dims[d];
    return Status::Ok();
  }

  size_t WorkspaceBytes() const override { return static_cast<size_t>(m_ + 1) * sizeof(int64_t); }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void* workspace, GpuResources&,
                 cudaStream_t stream) override {
    auto* pos = static_cast<int64_t*>(workspace);
    const bool* cond = static_cast<const bool*>(in[1].data);
    CompressScanKernel<<<1, kScanBlock, 0, stream>>>(cond, m_, pos, out[0].extent, dims_, axis_);
    const int64_t total = v_.outer * v_.n * v_.inner;
    bool ok = true;
    if (total > 0)
      ok = DispatchWord(ElementSize(in[0].dtype), [&](auto word) {
        using W = decltype(word);
        CompressCopyKernel<W><<<GridFor(total, 256), 256, 0, stream>>>(static_cast<const W*>(in[0].data), cond, pos,
                                                                        m_, static_cast<W*>(out[0].data), v_);
      });
    return LaunchStatus(ok, node_, in[0].dtype, "compress kernel");
  }

 private:
  // The dims Compress works on (the input's, or flattened without an axis),
  // the axis, and the reference's checks naming the node.
  Status View(const std::vector<DevTensor>& in, std::vector<int64_t>* dims, int* axis) const {
    GpuNodeContext ctx(node_, opset_, &in);
    if (in.size() != 2 || !Present(in[1])) return ctx.Error("expects 2 inputs");
    if (in[1].dims.size() != 1) return ctx.Error("condition must be 1-D");
    if (in[1].dtype != DataType::kBool) return ctx.Error("condition must be bool");
    if (in[0].dims.size() > static_cast<size_t>(kMaxRank)) return ctx.UnsupportedError("rank over 8 on the GPU");
    int64_t a = 0;
    *dims = in[0].dims;
    if (node_.attr("axis")) KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", 0), static_cast<int64_t>(in[0].dims.size()), &a));
    else *dims = {in[0].numel()};
    *axis = static_cast<int>(a);
    if (in[1].numel() > (*dims)[static_cast<size_t>(a)]) return ctx.Error("condition is longer than the compressed dim");
    return Status::Ok();
  }

  const Node& node_;
  int64_t opset_;
  AxisView v_;
  Dims dims_;
  int64_t m_ = 0;
  int axis_ = 0;
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeNonZeroOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(std::make_unique<NonZeroOp>(*info.node, info.opset));
}

Expected<std::unique_ptr<GpuOp>> MakeCompressOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(std::make_unique<CompressOp>(*info.node, info.opset));
}

}  // namespace kiln::cuda
