// NonMaxSuppression (data-dependent: GpuOp::OutputBounds), in the reference's
// selection order: per batch and class, the boxes scoring above
// score_threshold by descending score (lower index first on ties), each kept
// unless it overlaps a kept one by IoU > iou_threshold, at most
// max_output_boxes_per_class; triples [batch, class, box] in (batch, class)
// order. Box reading and the overlap test are the reference's (ops/nms_box.h).
// 1. One block per (batch, class): each candidate's rank in the score order
//    (counted, as TopK does), then the greedy pass over the ranked candidates,
//    each checked against the kept ones by the whole block.
// 2. One block scans the per-class counts into output offsets, writes the
//    triples packed and the real dims [count, 3] to the extent.
// The scalars (max_output_boxes_per_class, iou_threshold, score_threshold) are
// read on the device when they are not known on the host.
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/node_context.h"
#include "ops/nms_box.h"

namespace kiln::cuda {
namespace {

constexpr int kNmsBlock = 256;

// A scalar input: its host value, or (on_device) read from `dev`, bound in Enqueue.
template <class T>
struct Scalar {
  T host{};
  bool on_device = false;
  const void* dev = nullptr;
  DataType dtype = DataType::kUndefined;
  __device__ T Get() const {
    if (!dev) return host;
    switch (dtype) {
      case DataType::kInt64: return static_cast<T>(*static_cast<const int64_t*>(dev));
      case DataType::kInt32: return static_cast<T>(*static_cast<const int32_t*>(dev));
      case DataType::kDouble: return static_cast<T>(*static_cast<const double*>(dev));
      case DataType::kFloat16: return static_cast<T>(__half2float(*static_cast<const __half*>(dev)));
      default: return static_cast<T>(*static_cast<const float*>(dev));
    }
  }
};

struct NmsArgs {
  int64_t batches = 0, classes = 0, boxes = 0;
  bool center = false, has_score_threshold = false;
  Scalar<int64_t> max_out;
  Scalar<float> iou, score;
};

// Workspace per (batch, class) pair p: order[p * boxes ..], kept[p * boxes ..], count[p].
__global__ void NmsClassKernel(const float* __restrict__ boxes, const float* __restrict__ scores, NmsArgs a,
                               int64_t* __restrict__ order, int64_t* __restrict__ kept, int64_t* __restrict__ count) {
  const int64_t pair = blockIdx.x, b = pair / a.classes, n = a.boxes;
  const float* sc = scores + pair * n;
  const float* bx = boxes + b * n * 4;
  int64_t* ord = order + pair * n;
  int64_t* sel = kept + pair * n;
  const float threshold = a.score.Get(), iou = a.iou.Get();
  int64_t max_out = a.max_out.Get();
  if (max_out < 0) max_out = 0;
  auto candidate = [&](int64_t i) { return !a.has_score_threshold || sc[i] > threshold; };
  // Rank of every candidate: higher scores first, then lower indices.
  int64_t m = 0;
  for (int64_t c = 0; c < n; c += blockDim.x) {
    const int64_t i = c + threadIdx.x;
    int64_t total = 0;
    BlockExclusiveScan(i < n && candidate(i), &total);
    m += total;
    if (i >= n || !candidate(i)) continue;
    int64_t rank = 0;
    for (int64_t j = 0; j < n; ++j)
      rank += j != i && candidate(j) && (sc[j] > sc[i] || (sc[j] == sc[i] && j < i));
    ord[rank] = i;
  }
  __syncthreads();
  // Greedy pass in rank order; every thread tracks the same kept count.
  int64_t k = 0;
  for (int64_t r = 0; r < m && k < max_out; ++r) {
    const int64_t i = ord[r];
    const ops::NmsBox box = ops::ReadNmsBox(bx + i * 4, a.center);
    int suppressed = 0;
    for (int64_t t = threadIdx.x; t < k && !suppressed; t += blockDim.x)
      suppressed = ops::NmsSuppresses(box, ops::ReadNmsBox(bx + sel[t] * 4, a.center), iou);
    if (__syncthreads_or(suppressed)) continue;
    if (threadIdx.x == 0) sel[k] = i;
    ++k;
    __syncthreads();
  }
  if (threadIdx.x == 0) count[pair] = k;
}

// One block: triples packed in pair order, and the extent [count, 3].
__global__ void NmsGatherKernel(const int64_t* __restrict__ kept, const int64_t* __restrict__ count, int64_t pairs,
                                int64_t classes, int64_t boxes, int64_t* __restrict__ y, int64_t* extent) {
  int64_t base = 0, total = 0;
  for (int64_t c = 0; c < pairs; c += blockDim.x) {
    const int64_t p = c + threadIdx.x;
    const int64_t k = p < pairs ? count[p] : 0;
    const int64_t off = base + BlockExclusiveScan(k, &total);
    for (int64_t t = 0; t < k; ++t) {
      int64_t* row = y + (off + t) * 3;
      row[0] = p / classes;
      row[1] = p % classes;
      row[2] = kept[p * boxes + t];
    }
    base += total;
  }
  if (threadIdx.x == 0 && extent) {
    extent[0] = base;
    extent[1] = 3;
  }
}

class NmsOp final : public GpuOp {
 public:
  NmsOp(const Node& n, int64_t opset) : node_(n), opset_(opset) {}

  Expected<std::vector<std::vector<int64_t>>> OutputBounds(const std::vector<DevTensor>& in) const override {
    NmsArgs a;
    KILN_RETURN_IF_ERROR(Read(in, &a));
    int64_t per_class = a.boxes;
    if (!a.max_out.on_device && a.max_out.host < per_class) per_class = a.max_out.host < 0 ? 0 : a.max_out.host;
    return std::vector<std::vector<int64_t>>{{a.batches * a.classes * per_class, 3}};
  }

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>&, GpuResources&) override {
    KILN_RETURN_IF_ERROR(Read(in, &a_));
    return Status::Ok();
  }

  size_t WorkspaceBytes() const override {
    const int64_t pairs = a_.batches * a_.classes;
    return static_cast<size_t>(pairs * (2 * a_.boxes + 1)) * sizeof(int64_t);
  }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void* workspace, GpuResources&,
                 cudaStream_t stream) override {
    NmsArgs a = a_;
    Bind(in, 2, &a.max_out);
    Bind(in, 3, &a.iou);
    Bind(in, 4, &a.score);
    const int64_t pairs = a.batches * a.classes;
    auto* order = static_cast<int64_t*>(workspace);
    int64_t* kept = order + pairs * a.boxes;
    int64_t* count = kept + pairs * a.boxes;
    if (pairs > 0)
      NmsClassKernel<<<static_cast<unsigned>(pairs), kNmsBlock, 0, stream>>>(
          static_cast<const float*>(in[0].data), static_cast<const float*>(in[1].data), a, order, kept, count);
    NmsGatherKernel<<<1, 1024, 0, stream>>>(kept, count, pairs, a.classes, a.boxes,
                                            static_cast<int64_t*>(out[0].data), out[0].extent);
    return CudaStatus(cudaGetLastError(), "nms kernel");
  }

 private:
  // Shapes, attributes and the scalars known on the host (the reference's checks).
  Status Read(const std::vector<DevTensor>& in, NmsArgs* a) const {
    GpuNodeContext ctx(node_, opset_, &in);
    if (in.size() < 2 || !Present(in[0]) || !Present(in[1])) return ctx.Error("needs boxes and scores");
    const auto& b = in[0].dims;
    const auto& s = in[1].dims;
    if (b.size() != 3 || b[2] != 4) return ctx.Error("boxes must be [num_batches, spatial_dimension, 4]");
    if (s.size() != 3) return ctx.Error("scores must be [num_batches, num_classes, spatial_dimension]");
    if (s[0] != b[0] || s[2] != b[1]) return ctx.Error("boxes and scores do not match");
    if (in[0].dtype != DataType::kFloat || in[1].dtype != DataType::kFloat)
      return ctx.UnsupportedError("boxes and scores other than float32 on the GPU");
    *a = NmsArgs{};
    a->batches = b[0];
    a->boxes = b[1];
    a->classes = s[1];
    a->center = ctx.attr_int("center_point_box", 0) != 0;
    a->has_score_threshold = in.size() > 4 && Present(in[4]) && in[4].numel() > 0;
    for (size_t i = 2; i < in.size() && i < 5; ++i)
      if (Present(in[i]) && in[i].numel() > 1) return ctx.Error("input " + std::to_string(i) + " must be a scalar");
    if (const Tensor* t = Host(in, 2)) a->max_out.host = t->IntAt(0);
    if (const Tensor* t = Host(in, 3)) {
      a->iou.host = static_cast<float>(t->ScalarAt(0));
      if (a->iou.host < 0.0f || a->iou.host > 1.0f) return ctx.Error("iou_threshold must be in [0, 1]");
    }
    if (const Tensor* t = Host(in, 4)) a->score.host = static_cast<float>(t->ScalarAt(0));
    a->max_out.on_device = OnDevice(in, 2);
    a->iou.on_device = OnDevice(in, 3);
    a->score.on_device = OnDevice(in, 4);
    return Status::Ok();
  }
  // The host value of a given, non-empty scalar input; nullptr otherwise.
  const Tensor* Host(const std::vector<DevTensor>& in, size_t i) const {
    if (i >= in.size() || !Present(in[i]) || in[i].numel() == 0) return nullptr;
    return HostInput(node_, in, i);
  }
  // True when the scalar is given but not known on the host.
  bool OnDevice(const std::vector<DevTensor>& in, size_t i) const {
    return i < in.size() && Present(in[i]) && in[i].numel() > 0 && !Host(in, i);
  }
  template <class T>
  static void Bind(const std::vector<DevTensor>& in, size_t i, Scalar<T>* s) {
    if (!s->on_device) return;
    s->dev = in[i].data;
    s->dtype = in[i].dtype;
  }

  const Node& node_;
  int64_t opset_;
  NmsArgs a_;
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeNmsOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(std::make_unique<NmsOp>(*info.node, info.opset));
}

}  // namespace kiln::cuda
