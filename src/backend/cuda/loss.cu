// NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss on the GPU
// (semantics: src/ops/reduce_loss.cc, the CPU reference). Input [N, C, d...],
// target [N, d...] (int32/int64), optional class weights [C], ignore_index,
// reduction none / sum / mean (mean divides by the summed weights of the
// targets not ignored), SCE's optional log_prob output.
// One thread per position (b, j): SCE's log-softmax over the C classes, the
// position's loss and weight; reductions then run in one block. Everything is
// computed in double, as the reference does (losses are small next to the
// network that feeds them; FP64 keeps the sums in the reference's order of
// magnitude of error). A target outside [0, C) that is not ignored is an
// error on the CPU; the kernel cannot fail, so that position gives NaN.
#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/node_context.h"

namespace kiln::cuda {
namespace {

enum class Reduction { kNone, kSum, kMean };


template <class T, class I>
__global__ void LossKernel(const T* __restrict__ x, const I* __restrict__ target, const T* __restrict__ weight,
                           T* __restrict__ loss_out, double* __restrict__ loss_ws, double* __restrict__ weight_ws,
                           T* __restrict__ log_prob, int64_t n, int64_t c, int64_t d, bool softmax, bool has_ignore,
                           int64_t ignore) {
  const int64_t total = n * d;
  for (int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; p < total;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t b = p / d, j = p % d;
    const T* xp = x + b * c * d + j;
    double shift = 0;  // log-softmax: x - (max + log(sum(exp(x - max))))
    if (softmax) {
      double mx = -INFINITY;
      for (int64_t k = 0; k < c; ++k) mx = fmax(mx, LoadF64(xp[k * d]));
      double sum = 0;
      for (int64_t k = 0; k < c; ++k) sum += exp(LoadF64(xp[k * d]) - mx);
      shift = mx + log(sum);
      if (log_prob) {
        T* lp = log_prob + b * c * d + j;
        for (int64_t k = 0; k < c; ++k) lp[k * d] = StoreF64<T>(LoadF64(xp[k * d]) - shift);
      }
    }
    const int64_t t = static_cast<int64_t>(target[p]);
    double l = 0, w = 0;
    if (!(has_ignore && t == ignore)) {
      if (t < 0 || t >= c) {
        l = NAN;
        w = NAN;
      } else {
        w = weight ? LoadF64(weight[t]) : 1.0;
        l = -(LoadF64(xp[t * d]) - shift) * w;
      }
    }
    if (loss_out) loss_out[p] = StoreF64<T>(l);
    if (loss_ws) {
      loss_ws[p] = l;
      weight_ws[p] = w;
    }
  }
}

// One block: out[0] = sum(loss) (kSum) or sum(loss) / sum(weight) (kMean).
template <class T>
__global__ void LossReduceKernel(const double* __restrict__ loss, const double* __restrict__ weight, T* __restrict__ out,
                                 int64_t total, bool mean) {
  double l = 0, w = 0;
  for (int64_t p = threadIdx.x; p < total; p += blockDim.x) {
    l += loss[p];
    w += weight[p];
  }
  l = BlockReduceOp<BlockOp::kSum, double>(l, 0.0);
  w = BlockReduceOp<BlockOp::kSum, double>(w, 0.0);
  if (threadIdx.x == 0) out[0] = StoreF64<T>(mean ? l / w : l);
}

class LossOp final : public GpuOp {
 public:
  LossOp(const Node& n, int64_t opset, bool softmax, Reduction red)
      : node_(n), opset_(opset), softmax_(softmax), red_(red) {}

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources&) override {
    GpuNodeContext ctx(node_, opset_, &in);
    const DevTensor &x = in[0], &t = in[1];
    if (x.dims.size() < 2) return ctx.Error("input must have rank >= 2 ([N, C, ...])");
    if (t.dtype != DataType::kInt64 && t.dtype != DataType::kInt32) return ctx.Error("target must be int32 or int64");
    n_ = x.dims[0];
    c_ = x.dims[1];
    d_ = 1;
    for (size_t i = 2; i < x.dims.size(); ++i) d_ *= x.dims[i];
    bool target_ok = t.dims.size() == x.dims.size() - 1 && t.dims[0] == n_;
    for (size_t i = 1; target_ok && i < t.dims.size(); ++i) target_ok = t.dims[i] == x.dims[i + 1];
    if (!target_ok) return ctx.Error("target shape must be input shape without the class dim");
    has_weight_ = in.size() > 2 && Present(in[2]);
    if (has_weight_ && (in[2].dims.size() != 1 || in[2].dims[0] != c_ || in[2].dtype != x.dtype))
      return ctx.Error("weight must be 1-D of size C and the input's type");
    workspace_ = red_ == Reduction::kNone ? 0 : 2 * sizeof(double) * static_cast<size_t>(n_ * d_);
    want_log_prob_ = softmax_ && out.size() > 1 && Present(out[1]);
    return Status::Ok();
  }
  size_t WorkspaceBytes() const override { return workspace_; }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void* workspace,
                 GpuResources&, cudaStream_t stream) override {
    const int64_t total = n_ * d_;
    const DataType dt = in[0].dtype;
    double* lw = red_ == Reduction::kNone ? nullptr : static_cast<double*>(workspace);
    double* ww = lw ? lw + total : nullptr;
    const bool has_ignore = node_.attr("ignore_index") != nullptr;
    const int64_t ignore = has_ignore ? node_.attr("ignore_index")->i : 0;
    bool ok = false;
    auto launch = [&](auto tag) {
      using T = decltype(tag);
      auto go = [&](auto itag) {
        using I = decltype(itag);
        if (total > 0)
          LossKernel<T, I><<<GridFor(total, 128), 128, 0, stream>>>(
              static_cast<const T*>(in[0].data), static_cast<const I*>(in[1].data),
              has_weight_ ? static_cast<const T*>(in[2].data) : nullptr,
              red_ == Reduction::kNone ? static_cast<T*>(out[0].data) : nullptr, lw, ww,
              want_log_prob_ ? static_cast<T*>(out[1].data) : nullptr, n_, c_, d_, softmax_, has_ignore, ignore);
        if (red_ != Reduction::kNone)
          LossReduceKernel<T><<<1, 256, 0, stream>>>(lw, ww, static_cast<T*>(out[0].data), total,
                                                     red_ == Reduction::kMean);
      };
      if (in[1].dtype == DataType::kInt64) go(int64_t{});
      else go(int32_t{});
      ok = true;
    };
    if (dt == DataType::kDouble) launch(double{});
    else DispatchFloatDevice(dt, launch);
    return LaunchStatus(ok, node_, dt, "loss kernel");
  }

 private:
  const Node& node_;
  int64_t opset_;
  bool softmax_;
  Reduction red_;
  int64_t n_ = 0, c_ = 0, d_ = 1;
  bool has_weight_ = false, want_log_prob_ = false;
  size_t workspace_ = 0;
};

}  // namespace

// Refuses at build time an unknown reduction and targets that are not int32/int64.
Expected<std::unique_ptr<GpuOp>> MakeLossOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  const Attribute* r = n.attr("reduction");
  const std::string red = r ? r->s : "mean";
  Reduction reduction;
  if (red == "none") reduction = Reduction::kNone;
  else if (red == "sum") reduction = Reduction::kSum;
  else if (red == "mean") reduction = Reduction::kMean;
  else return Unsupported(n.Label() + ": reduction must be none, sum or mean, got '" + red + "'");
  if (n.num_inputs() < 2 || !n.input(0) || !n.input(1)) return Unsupported(n.Label() + ": expects input and target");
  const DataType tt = n.input(1)->dtype();
  if (tt != DataType::kUndefined && tt != DataType::kInt64 && tt != DataType::kInt32)
    return Unsupported(n.Label() + ": target of type " + std::string(DataTypeName(tt)) + " (int32 or int64)");
  return std::unique_ptr<GpuOp>(
      std::make_unique<LossOp>(n, info.opset, n.op_type == "SoftmaxCrossEntropyLoss", reduction));
}

}  // namespace kiln::cuda
