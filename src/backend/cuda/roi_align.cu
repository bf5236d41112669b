// RoiAlign (opset 10 and 16): one thread per output element (roi, channel,
// bin) pools its bilinear samples with ops/roi_align_plan.h, the CPU
// reference's own sampling and pooling, in double. A batch index out of range
// gives a zero output (the reference rejects it; the device cannot report it);
// the reference's size check of adaptive grids is not repeated on the device.
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/node_context.h"
#include "ops/roi_align_plan.h"

namespace kiln::cuda {
namespace {

using ops::RoiAlignParams;

template <class T, class I>
__global__ void RoiAlignKernel(const T* __restrict__ x, const T* __restrict__ rois, const I* __restrict__ batch_idx,
                               T* __restrict__ y, int64_t total, int64_t batches, int64_t channels, RoiAlignParams p) {
  const int64_t bins = p.out_h * p.out_w, plane_size = p.height * p.width;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t bin = e % bins, c = (e / bins) % channels, n = e / (bins * channels);
    const int64_t b = static_cast<int64_t>(batch_idx[n]);
    if (b < 0 || b >= batches) {
      y[e] = FromCompute<T>(0.0f);
      continue;
    }
    double r[4];
    for (int k = 0; k < 4; ++k) r[k] = static_cast<double>(ToCompute(rois[n * 4 + k]));
    const ops::RoiGrid g = ops::MakeRoiGrid(r, p);
    const T* plane = x + (b * channels + c) * plane_size;
    auto load = [plane](int64_t off) { return static_cast<double>(ToCompute(plane[off])); };
    const double v = ops::RoiPool(g, p, bin / p.out_w, bin % p.out_w, load);
    y[e] = FromCompute<T>(static_cast<decltype(ToCompute(T{}))>(v));
  }
}

class RoiAlignOp final : public GpuOp {
 public:
  RoiAlignOp(const Node& n, int64_t opset) : node_(n), opset_(opset) {}

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>&, GpuResources&) override {
    GpuNodeContext ctx(node_, opset_, &in);
    if (in.size() < 3) return ctx.Error("needs X, rois and batch_indices");
    const auto& x = in[0].dims;
    if (x.size() != 4) return ctx.Error("X must be 4-D [N, C, H, W]");
    if (in[1].dims.size() != 2 || in[1].dims[1] != 4) return ctx.Error("rois must be [num_rois, 4]");
    if (in[2].dims.size() != 1 || in[2].dims[0] != in[1].dims[0]) return ctx.Error("batch_indices must be [num_rois]");
    if (in[1].dtype != in[0].dtype) return ctx.UnsupportedError("rois of another type than X on the GPU");
    if (in[2].dtype != DataType::kInt64 && in[2].dtype != DataType::kInt32)
      return ctx.Error("batch_indices must be int64");
    p_ = RoiAlignParams{};
    p_.height = x[2];
    p_.width = x[3];
    p_.out_h = ctx.attr_int("output_height", 1);
    p_.out_w = ctx.attr_int("output_width", 1);
    p_.sampling_ratio = ctx.attr_int("sampling_ratio", 0);
    if (p_.out_h <= 0 || p_.out_w <= 0 || p_.sampling_ratio < 0) return ctx.Error("bad output size or sampling_ratio");
    if (p_.sampling_ratio > 4096) return ctx.Error("sampling_ratio is too large");
    const std::string mode = ctx.attr_string("mode", "avg");
    if (mode != "avg" && mode != "max") return ctx.Error("mode must be avg or max, got '" + mode + "'");
    // Opset 10 had no attribute and behaved as output_half_pixel.
    const std::string ctm =
        ctx.attr_string("coordinate_transformation_mode", opset_ < 16 ? "output_half_pixel" : "half_pixel");
    if (ctm != "half_pixel" && ctm != "output_half_pixel")
      return ctx.Error("unknown coordinate_transformation_mode '" + ctm + "'");
    p_.half_pixel = ctm == "half_pixel";
    p_.max_mode = mode == "max";
    p_.scale = ctx.attr_float("spatial_scale", 1.0f);
    batches_ = x[0];
    channels_ = x[1];
    return Status::Ok();
  }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    const int64_t total = out[0].numel();
    if (total == 0) return Status::Ok();
    bool ok = DispatchFloatDevice(in[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      auto launch = [&](auto itag) {
        using I = decltype(itag);
        RoiAlignKernel<T, I><<<GridFor(total, 256), 256, 0, stream>>>(
            static_cast<const T*>(in[0].data), static_cast<const T*>(in[1].data), static_cast<const I*>(in[2].data),
            static_cast<T*>(out[0].data), total, batches_, channels_, p_);
      };
      if (in[2].dtype == DataType::kInt32) launch(int32_t{});
      else launch(int64_t{});
    });
    return LaunchStatus(ok, node_, in[0].dtype, "roialign kernel");
  }

 private:
  const Node& node_;
  int64_t opset_;
  RoiAlignParams p_;
  int64_t batches_ = 0, channels_ = 0;
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeRoiAlignOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(std::make_unique<RoiAlignOp>(*info.node, info.opset));
}

}  // namespace kiln::cuda
