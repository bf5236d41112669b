// InstanceNormalization, GroupNormalization and RMSNormalization on the GPU:
// one block per row. Instance/Group: a (batch, group) row of cg·inner values
// (InstanceNormalization is groups == channels). Mean, then the variance around it (two passes, as the
// reference does, so a large mean does not cancel), accumulated in float; then y = (x − mean)·rstd·scale[c] +
// bias[c] with per-channel or (GroupNormalization opset 18) per-group parameters. Few long rows (GroupNorm(1,
// C) as torch exports it, PoolFormer's: one row per image of C·H·W values; diffusion UNets' 32 groups at
// batch 1) would leave most SMs idle with a block per row: those rows split into chunks, a block each. The
// first kernel writes each chunk's count, mean and sum of squared deviations (its own two passes); the second
// combines a row's chunks (Chan et al.'s pairwise update, in double) and normalizes its chunk.
#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/node_context.h"
#include "ops/op_util.h"

namespace kiln::cuda {
namespace {

constexpr int kBlock = 256;
constexpr int64_t kMinChunk = 4096;  // values a block of the split-row path takes at least

struct GroupArgs {
  int64_t groups = 1, cg = 1, inner = 1;  // channels per group, elements per channel
  bool scale_per_channel = true, bias_per_channel = true;
  float epsilon = 1e-5f;
};

template <class T>
__global__ void __launch_bounds__(kBlock) GroupNormKernel(const T* __restrict__ x, const T* __restrict__ scale,
                                                          const T* __restrict__ bias, T* __restrict__ y, GroupArgs a) {
  const int64_t row = blockIdx.x;
  const int64_t len = a.cg * a.inner;
  const T* xr = x + row * len;
  T* yr = y + row * len;
  float s = 0.f;
  for (int64_t i = threadIdx.x; i < len; i += kBlock) s += ToFloat(xr[i]);
  const float mean = BlockReduce<false>(s) / static_cast<float>(len);
  float v = 0.f;
  for (int64_t i = threadIdx.x; i < len; i += kBlock) {
    float d = ToFloat(xr[i]) - mean;
    v += d * d;
  }
  const float rstd = rsqrtf(BlockReduce<false>(v) / static_cast<float>(len) + a.epsilon);
  const int64_t g = row % a.groups;
  for (int64_t i = threadIdx.x; i < len; i += kBlock) {
    const int64_t ch = g * a.cg + i / a.inner;
    const float sc = ToFloat(scale[a.scale_per_channel ? ch : g]);
    const float b = ToFloat(bias[a.bias_per_channel ? ch : g]);
    yr[i] = FromFloat<T>((ToFloat(xr[i]) - mean) * rstd * sc + b);
  }
}

// Chunk blockIdx.x (of `chunk` values) of row blockIdx.y: its count, mean and sum of squared deviations
// (part[(row · chunks + chunk) · 3 + 0..2]).
template <class T>
__global__ void __launch_bounds__(kBlock)
    GroupNormPartKernel(const T* __restrict__ x, float* __restrict__ part, int64_t len, int64_t chunk) {
  const int64_t row = blockIdx.y, begin = static_cast<int64_t>(blockIdx.x) * chunk;
  const int64_t end = begin + chunk < len ? begin + chunk : len;
  const T* xr = x + row * len;
  float s = 0.f;
  for (int64_t i = begin + threadIdx.x; i < end; i += kBlock) s += ToFloat(xr[i]);
  const float count = static_cast<float>(end - begin);
  const float mean = BlockReduce<false>(s) / count;
  float v = 0.f;
  for (int64_t i = begin + threadIdx.x; i < end; i += kBlock) {
    const float d = ToFloat(xr[i]) - mean;
    v += d * d;
  }
  const float m2 = BlockReduce<false>(v);
  if (threadIdx.x == 0) {
    float* p = part + (row * gridDim.x + blockIdx.x) * 3;
    p[0] = count;
    p[1] = mean;
    p[2] = m2;
  }
}

// The row's statistics from its chunks' (GroupNormPartKernel), then chunk blockIdx.x of row blockIdx.y
// normalized.
template <class T>
__global__ void __launch_bounds__(kBlock)
    GroupNormApplyKernel(const T* __restrict__ x, const T* __restrict__ scale, const T* __restrict__ bias,
                         T* __restrict__ y, const float* __restrict__ part, GroupArgs a, int64_t chunk) {
  __shared__ float stats[2];
  const int64_t row = blockIdx.y, len = a.cg * a.inner;
  if (threadIdx.x == 0) {
    double n = 0., mean = 0., m2 = 0.;
    for (unsigned c = 0; c < gridDim.x; ++c) {
      const float* p = part + (row * gridDim.x + c) * 3;
      const double nb = p[0], delta = static_cast<double>(p[1]) - mean, total = n + nb;
      mean += delta * nb / total;
      m2 += static_cast<double>(p[2]) + delta * delta * n * nb / total;
      n = total;
    }
    stats[0] = static_cast<float>(mean);
    stats[1] = rsqrtf(static_cast<float>(m2 / n) + a.epsilon);
  }
  __syncthreads();
  const float mean = stats[0], rstd = stats[1];
  const int64_t g = row % a.groups, begin = static_cast<int64_t>(blockIdx.x) * chunk;
  const int64_t end = begin + chunk < len ? begin + chunk : len;
  const T* xr = x + row * len;
  T* yr = y + row * len;
  for (int64_t i = begin + threadIdx.x; i < end; i += kBlock) {
    const int64_t ch = g * a.cg + i / a.inner;
    const float sc = ToFloat(scale[a.scale_per_channel ? ch : g]);
    const float b = ToFloat(bias[a.bias_per_channel ? ch : g]);
    yr[i] = FromFloat<T>((ToFloat(xr[i]) - mean) * rstd * sc + b);
  }
}

// RMSNormalization: y = x / sqrt(mean(x²) + eps) · scale over rows of `len`
// (the dims from `axis` on); scale has `len` values or one.
template <class T>
__global__ void __launch_bounds__(kBlock) RmsNormKernel(const T* __restrict__ x, const T* __restrict__ scale,
                                                        T* __restrict__ y, int64_t len, bool scalar_scale,
                                                        float epsilon) {
  const T* xr = x + blockIdx.x * len;
  T* yr = y + blockIdx.x * len;
  float s = 0.f;
  for (int64_t i = threadIdx.x; i < len; i += kBlock) {
    float v = ToFloat(xr[i]);
    s += v * v;
  }
  const float inv = rsqrtf(BlockReduce<false>(s) / static_cast<float>(len) + epsilon);
  for (int64_t i = threadIdx.x; i < len; i += kBlock) {
    // Stage 1 rounds to T, as the reference does.
    const float normalized = ToFloat(FromFloat<T>(ToFloat(xr[i]) * inv));
    yr[i] = FromFloat<T>(normalized * ToFloat(scale[scalar_scale ? 0 : i]));
  }
}

class RmsNormOp final : public GpuOp {
 public:
  RmsNormOp(const Node& n, int64_t opset) : node_(n), opset_(opset) {}

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources&) override {
    GpuNodeContext ctx(node_, opset_, &in);
    const auto& d = in[0].dims;
    int64_t axis = 0;
    KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", -1), static_cast<int64_t>(d.size()), &axis));
    len_ = 1;
    for (size_t i = static_cast<size_t>(axis); i < d.size(); ++i) len_ *= d[i];
    rows_ = len_ ? in[0].numel() / len_ : 0;
    if (in[1].dtype != in[0].dtype || out[0].dtype != in[0].dtype)
      return ctx.UnsupportedError("a scale of another type than X on the GPU");
    scalar_scale_ = in[1].numel() == 1;
    if (!scalar_scale_ && in[1].numel() != len_)
      return ctx.UnsupportedError("a scale that broadcasts over only part of the normalized dims on the GPU");
    if (rows_ > 0x7fffffffLL) return ctx.UnsupportedError("more than 2^31 rows on the GPU");
    epsilon_ = ctx.attr_float("epsilon", 1e-5f);
    return Status::Ok();
  }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    if (rows_ == 0 || len_ == 0) return Status::Ok();
    auto launch = [&](auto tag) {
      using T = decltype(tag);
      RmsNormKernel<T><<<static_cast<unsigned>(rows_), kBlock, 0, stream>>>(
          static_cast<const T*>(in[0].data), static_cast<const T*>(in[1].data), static_cast<T*>(out[0].data), len_,
          scalar_scale_, epsilon_);
    };
    if (!DispatchFloatDevice(in[0].dtype, launch))
      return Unsupported(node_.Label() + ": " + std::string(DataTypeName(in[0].dtype)) + " on the GPU");
    return CudaStatus(cudaGetLastError(), "rms norm kernel");
  }

 private:
  const Node& node_;
  int64_t opset_;
  int64_t rows_ = 0, len_ = 0;
  bool scalar_scale_ = false;
  float epsilon_ = 1e-5f;
};

class GroupNormOp final : public GpuOp {
 public:
  GroupNormOp(const Node& n, int64_t opset, bool instance) : node_(n), opset_(opset), instance_(instance) {}

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out,
                 GpuResources& res) override {
    GpuNodeContext ctx(node_, opset_, &in);
    const auto& d = in[0].dims;
    if (d.size() < (instance_ ? 3u : 2u)) return ctx.Error("input must have rank >= 3 ([N, C, spatial...])");
    const int64_t n = d[0], c = d[1];
    a_ = GroupArgs{};
    a_.groups = instance_ ? c : ctx.attr_int("num_groups", 0);
    if (a_.groups <= 0 || c % a_.groups != 0) return ctx.Error("num_groups must divide the channel count");
    a_.cg = c / a_.groups;
    a_.inner = 1;
    for (size_t i = 2; i < d.size(); ++i) a_.inner *= d[i];
    a_.epsilon = ctx.attr_float("epsilon", 1e-5f);
    auto per_channel = [&](const DevTensor& t, const char* what) -> Expected<bool> {
      if (t.dtype != in[0].dtype)
        return ctx.UnsupportedError(std::string(what) + " of another type than the input on the GPU");
      if (t.numel() == c) return true;
      if (!instance_ && t.numel() == a_.groups) return false;
      return ctx.Error(std::string(what) + " must have " + std::to_string(c) + " values");
    };
    KILN_ASSIGN_OR_RETURN(a_.scale_per_channel, per_channel(in[1], "scale"));
    KILN_ASSIGN_OR_RETURN(a_.bias_per_channel, per_channel(in[2], "bias"));
    rows_ = n * a_.groups;
    if (rows_ > 0x7fffffffLL) return ctx.UnsupportedError("more than 2^31 rows on the GPU");
    // Fewer rows than two blocks per SM, each long: about four blocks per SM, chunks of 4096 values or more.
    const int64_t len = a_.cg * a_.inner, sms = std::max(res.sm_count, 1);
    chunks_ = 1;
    if (rows_ > 0 && rows_ < 2 * sms && len >= 2 * kMinChunk)
      chunks_ = std::min((4 * sms + rows_ - 1) / rows_, len / kMinChunk);
    chunk_ = chunks_ > 1 ? (len + chunks_ - 1) / chunks_ : len;
    if (chunks_ > 1) chunks_ = (len + chunk_ - 1) / chunk_;
    return Status::Ok();
  }

  size_t WorkspaceBytes() const override {
    return chunks_ > 1 ? static_cast<size_t>(rows_ * chunks_) * 3 * sizeof(float) : 0;
  }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void* workspace,
                 GpuResources&, cudaStream_t stream) override {
    if (out[0].numel() == 0) return Status::Ok();
    auto launch = [&](auto tag) {
      using T = decltype(tag);
      const T* x = static_cast<const T*>(in[0].data);
      const T* scale = static_cast<const T*>(in[1].data);
      const T* bias = static_cast<const T*>(in[2].data);
      T* y = static_cast<T*>(out[0].data);
      if (chunks_ == 1) {
        GroupNormKernel<T><<<static_cast<unsigned>(rows_), kBlock, 0, stream>>>(x, scale, bias, y, a_);
        return;
      }
      const dim3 grid(static_cast<unsigned>(chunks_), static_cast<unsigned>(rows_));
      float* part = static_cast<float*>(workspace);
      GroupNormPartKernel<T><<<grid, kBlock, 0, stream>>>(x, part, a_.cg * a_.inner, chunk_);
      GroupNormApplyKernel<T><<<grid, kBlock, 0, stream>>>(x, scale, bias, y, part, a_, chunk_);
    };
    if (!DispatchFloatDevice(in[0].dtype, launch))
      return Unsupported(node_.Label() + ": " + std::string(DataTypeName(in[0].dtype)) + " on the GPU");
    return CudaStatus(cudaGetLastError(), "group norm kernel");
  }

 private:
  const Node& node_;
  int64_t opset_;
  bool instance_;
  GroupArgs a_;
  int64_t rows_ = 0;
  int64_t chunks_ = 1, chunk_ = 0;  // chunks a row splits into (1: a block per row), values per chunk
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeGroupNormOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  if (n.op_type == "RMSNormalization") {
    if (n.attr("stash_type") && n.attr("stash_type")->i != 1)
      return Unsupported(n.Label() + ": stash_type other than float32 on the GPU");
    return std::unique_ptr<GpuOp>(std::make_unique<RmsNormOp>(n, info.opset));
  }
  const bool instance = n.op_type == "InstanceNormalization";
  if (!instance && n.attr("stash_type") && n.attr("stash_type")->i != 1)
    return Unsupported(n.Label() + ": stash_type other than float32 on the GPU");
  return std::unique_ptr<GpuOp>(std::make_unique<GroupNormOp>(n, info.opset, instance));
}

}  // namespace kiln::cuda
