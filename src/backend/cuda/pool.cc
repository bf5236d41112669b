// MaxPool / AveragePool / GlobalAveragePool / GlobalMaxPool on cuDNN pooling.
// Symmetric pads (auto_pad resolved from shapes) and ceil_mode where the extra
// window lands in padding cuDNN accepts; other 2-D windows (asymmetric pads,
// ceil_mode past the padding, dilations) on kiln's kernel (window_pool.h). MaxPool's Indices output is
// not supported on the GPU. kiln.PoolNhwc (attribute `pool` names the op) is the same op on 4-D
// channels-last tensors, on kiln's kernels only: global_pool.h for its global pools, window_pool.h for the
// others.
#include <cudnn.h>

#include <string>
#include <utility>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_op_table.h"
#include "backend/cuda/cudnn_util.h"
#include "backend/cuda/global_pool.h"
#include "backend/cuda/window_pool.h"

namespace kiln::cuda {
namespace {

class PoolOp final : public GpuOp {
 public:
  // kind: the ONNX pooling op; channels_last: X and Y are [N,H,W,C].
  PoolOp(const Node& n, std::string kind, bool channels_last)
      : node_(n), kind_(std::move(kind)), channels_last_(channels_last) {}
  ~PoolOp() override {
    if (x_) cudnnDestroyTensorDescriptor(x_);
    if (y_) cudnnDestroyTensorDescriptor(y_);
    if (pool_) cudnnDestroyPoolingDescriptor(pool_);
  }

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources&) override {
    std::vector<int64_t> xd = in[0].dims, yd = out[0].dims;
    if (channels_last_) {
      if (xd.size() != 4 || yd.size() != 4) return Unsupported(node_.Label() + ": channels-last pooling needs 4-D tensors");
      xd = NchwDims(xd);
      yd = NchwDims(yd);
    }
    int spatial = static_cast<int>(xd.size()) - 2;
    if (spatial < 1 || spatial > 3) return Unsupported(node_.Label() + ": pooling needs 1-3 spatial dims on the GPU");
    KILN_ASSIGN_OR_RETURN(cudnnDataType_t dt, CudnnType(in[0].dtype, node_));
    bool global = kind_.rfind("Global", 0) == 0;
    bool is_max = kind_.find("Max") != std::string::npos;
    global_nhwc_ = channels_last_ && global;
    window_ = false;
    if (global_nhwc_) {  // kiln's kernel (global_pool.h), not cuDNN's
      dtype_ = in[0].dtype;
      max_ = is_max;
      n_ = in[0].dims[0];
      pixels_ = in[0].dims[1] * in[0].dims[2];
      c_ = in[0].dims[3];
      return Status::Ok();
    }
    std::vector<int64_t> kernel, strides, pads, dil(spatial, 1), kd(2, 0);  // kd: 0, 0, kernel (NCHW)
    if (global) {
      kernel.assign(xd.begin() + 2, xd.end());
      strides.assign(spatial, 1);
      pads.assign(spatial, 0);
    } else {
      kernel = IntsAttr(node_, "kernel_shape", spatial, 1);
      strides = IntsAttr(node_, "strides", spatial, 1);
      dil = IntsAttr(node_, "dilations", spatial, 1);
      kd.insert(kd.end(), kernel.begin(), kernel.end());
      bool dilated = false;
      for (int64_t d : dil) dilated = dilated || d != 1;
      // Channels-last 2-D windows all run on kiln's kernel: its 16-byte form reads each tap once.
      if (channels_last_) return PrepareWindow(in[0].dtype, xd, kd, yd, strides, dil, is_max);
      Expected<std::vector<int64_t>> symmetric = SymmetricPads(node_, xd, kd, yd, strides, dil, spatial);
      if (dilated || !symmetric.ok()) {
        if (spatial == 2) return PrepareWindow(in[0].dtype, xd, kd, yd, strides, dil, is_max);
        if (dilated) return Unsupported(node_.Label() + ": dilated pooling runs on the GPU in 2-D only");
        return symmetric.status();
      }
      pads = *symmetric;
    }
    if (spatial == 1) {
      xd.insert(xd.begin() + 2, 1);
      yd.insert(yd.begin() + 2, 1);
      kernel.insert(kernel.begin(), 1);
      strides.insert(strides.begin(), 1);
      pads.insert(pads.begin(), 0);
    }
    const Attribute* cip = node_.attr("count_include_pad");
    cudnnPoolingMode_t mode = is_max ? CUDNN_POOLING_MAX_DETERMINISTIC
                              : (cip && cip->i) ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
                                                : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
    if (!pool_) KILN_CUDNN_RETURN_IF_ERROR(cudnnCreatePoolingDescriptor(&pool_));
    std::vector<int> k(kernel.begin(), kernel.end()), p(pads.begin(), pads.end()), s(strides.begin(), strides.end());
    KILN_CUDNN_RETURN_IF_ERROR(cudnnSetPoolingNdDescriptor(pool_, mode, CUDNN_PROPAGATE_NAN,
                                                           static_cast<int>(k.size()), k.data(), p.data(), s.data()));
    KILN_RETURN_IF_ERROR(SetTensor(&x_, dt, xd));
    KILN_RETURN_IF_ERROR(SetTensor(&y_, dt, yd));
    // cuDNN's own output size must match ONNX's (ceil_mode may differ).
    std::vector<int> got(xd.size());
    KILN_CUDNN_RETURN_IF_ERROR(cudnnGetPoolingNdForwardOutputDim(pool_, x_, static_cast<int>(got.size()), got.data()));
    for (size_t i = 0; i < got.size(); ++i)
      if (got[i] != yd[i]) {
        if (spatial == 2 && !global) return PrepareWindow(in[0].dtype, xd, kd, yd, strides, dil, is_max);
        return Unsupported(node_.Label() + ": pooling output " + DimsToString(yd) +
                           " (ceil_mode) is not expressible with cuDNN here");
      }
    return Status::Ok();
  }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources& res,
                 cudaStream_t stream) override {
    if (global_nhwc_) return LaunchGlobalPoolNhwc(dtype_, max_, n_, pixels_, c_, in[0].data, out[0].data, stream);
    if (window_) return LaunchWindowPool2d(dtype_, geometry_, in[0].data, out[0].data, stream);
    auto h = static_cast<cudnnHandle_t>(res.cudnn);
    KILN_CUDNN_RETURN_IF_ERROR(cudnnSetStream(h, stream));
    const float one = 1.f, zero = 0.f;
    KILN_CUDNN_RETURN_IF_ERROR(cudnnPoolingForward(h, pool_, &one, x_, in[0].data, &zero, y_, out[0].data));
    return Status::Ok();
  }

 private:
  // A 2-D window cuDNN cannot express (asymmetric pads, ceil_mode past the padding, dilation): kiln's kernel
  // (window_pool.h). xd, kd, yd: NCHW dims (kd: 0, 0, kernel).
  Status PrepareWindow(DataType dt, const std::vector<int64_t>& xd, const std::vector<int64_t>& kd,
                       const std::vector<int64_t>& yd, const std::vector<int64_t>& strides,
                       const std::vector<int64_t>& dil, bool is_max) {
    std::vector<int64_t> begin, end;
    ResolvePads(node_, xd, kd, yd, strides, dil, 2, &begin, &end);
    const Attribute* cip = node_.attr("count_include_pad");
    WindowPool2d& g = geometry_;
    g = WindowPool2d{xd[0],  xd[1],      xd[2],      xd[3],         yd[2],         yd[3],    kd[2],
                     kd[3],  strides[0], strides[1], dil[0],        dil[1],        begin[0], begin[1],
                     end[0], end[1],     is_max,     cip && cip->i, channels_last_};
    dtype_ = dt;
    window_ = true;
    return Status::Ok();
  }

  const Node& node_;
  const std::string kind_;
  const bool channels_last_;
  cudnnTensorDescriptor_t x_ = nullptr, y_ = nullptr;
  cudnnPoolingDescriptor_t pool_ = nullptr;
  // Global pooling of channels-last X [N, H, W, C].
  bool global_nhwc_ = false, max_ = false;
  bool window_ = false;  // kiln's window kernel (PrepareWindow)
  WindowPool2d geometry_{};
  DataType dtype_ = DataType::kFloat;
  int64_t n_ = 0, pixels_ = 0, c_ = 0;
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakePoolOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  if (n.num_outputs() > 1 && n.output(1))
    return Unsupported(n.Label() + ": MaxPool's Indices output is not supported on the GPU");
  return std::unique_ptr<GpuOp>(new PoolOp(n, n.op_type, false));
}

Expected<std::unique_ptr<GpuOp>> MakePoolNhwcOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  const Attribute* kind = n.attr("pool");
  if (!kind || n.num_outputs() != 1) return InvalidArgument(n.Label() + ": PoolNhwc needs the pool attribute and one output");
  return std::unique_ptr<GpuOp>(new PoolOp(n, kind->s, true));
}

}  // namespace kiln::cuda
