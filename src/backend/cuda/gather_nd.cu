// GatherND (opsets 11-13, batch_dims) on the GPU: output = indices.shape[:-1]
// + data.shape[batch_dims + k:], where k = indices.shape[-1]; each output
// element finds its index tuple and reads one element of data. Negative
// indices count from the end; out-of-range ones clamp (no fault), as Gather's
// kernel does. One element per thread: GatherND is rare in exported models
// (transformers' dynamo exports use it once, on small tensors).
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_op_table.h"
#include "backend/cuda/kernel_util.cuh"

namespace kiln::cuda {
namespace {

struct TupleMap {
  int k = 0;
  int64_t dim[kMaxRank];     // data dims indexed by the tuple
  int64_t stride[kMaxRank];  // their element strides
};

template <class W, class Idx>
__global__ void GatherNdKernel(const W* __restrict__ in, const Idx* __restrict__ idx, W* __restrict__ out, int64_t n,
                               int64_t slice, int64_t tuples_per_batch, int64_t batch_stride, TupleMap m) {
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += step) {
    int64_t t = i / slice;
    int64_t off = (t / tuples_per_batch) * batch_stride + (i - t * slice);
    const Idx* tuple = idx + t * m.k;
    for (int j = 0; j < m.k; ++j) {
      int64_t v = static_cast<int64_t>(tuple[j]);
      if (v < 0) v += m.dim[j];
      v = v < 0 ? 0 : (v >= m.dim[j] ? m.dim[j] - 1 : v);
      off += v * m.stride[j];
    }
    out[i] = in[off];
  }
}

class GatherNdOp final : public GpuOp {
 public:
  explicit GatherNdOp(const Node& n) : node_(n) {}

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources&) override {
    const std::vector<int64_t>& d = in[0].dims;
    const std::vector<int64_t>& q = in[1].dims;
    const Attribute* bd = node_.attr("batch_dims");
    const int64_t b = bd ? bd->i : 0;
    if (q.empty()) return InvalidArgument(node_.Label() + ": indices must have rank >= 1");
    const int64_t k = q.back();
    const int64_t r = static_cast<int64_t>(d.size());
    if (b < 0 || k < 1 || b + k > r || k > kMaxRank)
      return Unsupported(node_.Label() + ": GatherND with data " + DimsToString(d) + ", indices " + DimsToString(q) +
                         " and batch_dims " + std::to_string(b) + " is not supported on the GPU");
    map_ = TupleMap{};
    map_.k = static_cast<int>(k);
    slice_ = 1;
    for (int64_t i = b + k; i < r; ++i) slice_ *= d[static_cast<size_t>(i)];
    int64_t s = slice_;
    for (int64_t j = k - 1; j >= 0; --j) {
      map_.dim[j] = d[static_cast<size_t>(b + j)];
      map_.stride[j] = s;
      s *= map_.dim[j];
      if (map_.dim[j] == 0 && out[0].numel() > 0)
        return InvalidArgument(node_.Label() + ": indices into an empty dim of data " + DimsToString(d));
    }
    batch_stride_ = s;
    int64_t batches = 1, tuples = 1;
    for (int64_t i = 0; i < b; ++i) batches *= d[static_cast<size_t>(i)];
    for (size_t i = 0; i + 1 < q.size(); ++i) tuples *= q[i];
    tuples_per_batch_ = batches > 0 ? tuples / batches : 1;
    if (tuples_per_batch_ == 0) tuples_per_batch_ = 1;
    return Status::Ok();
  }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    const int64_t n = out[0].numel();
    if (n == 0) return Status::Ok();
    const bool i64 = in[1].dtype == DataType::kInt64;
    if (!i64 && in[1].dtype != DataType::kInt32)
      return Unsupported(node_.Label() + ": GatherND indices must be int64 or int32");
    const unsigned grid = GridFor(n, 256);
    auto go = [&](auto w) {
      using W = decltype(w);
      const W* src = static_cast<const W*>(in[0].data);
      W* dst = static_cast<W*>(out[0].data);
      if (i64)
        GatherNdKernel<W, int64_t><<<grid, 256, 0, stream>>>(src, static_cast<const int64_t*>(in[1].data), dst, n,
                                                             slice_, tuples_per_batch_, batch_stride_, map_);
      else
        GatherNdKernel<W, int32_t><<<grid, 256, 0, stream>>>(src, static_cast<const int32_t*>(in[1].data), dst, n,
                                                             slice_, tuples_per_batch_, batch_stride_, map_);
    };
    switch (ElementSize(in[0].dtype)) {
      case 1: go(uint8_t{}); break;
      case 2: go(uint16_t{}); break;
      case 4: go(uint32_t{}); break;
      case 8: go(uint64_t{}); break;
      default:
        return Unsupported(node_.Label() + ": " + std::string(DataTypeName(in[0].dtype)) +
                           " is not supported by GatherND on the GPU");
    }
    return CudaStatus(cudaGetLastError(), "GatherND kernel");
  }

 private:
  const Node& node_;
  TupleMap map_;
  int64_t slice_ = 1, tuples_per_batch_ = 1, batch_stride_ = 1;
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeGatherNdOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(new GatherNdOp(*info.node));
}

}  // namespace kiln::cuda
