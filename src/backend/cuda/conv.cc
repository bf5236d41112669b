// Conv on cuDNN (legacy descriptor API of cuDNN 9): 1-D/2-D/3-D, groups
// (depthwise included), dilations, strides, symmetric pads (auto_pad resolved
// from shapes). The algorithm is chosen by timing (cudnnFind...Ex) at Prepare
// for each new shape, bias is added by cudnnAddTensor. TF32 only with --tf32;
// FP16 uses tensor cores with FP32 accumulation.
#include <cudnn.h>

#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_op_table.h"
#include "backend/cuda/cudnn_util.h"

namespace kiln::cuda {
namespace {

class ConvOp final : public GpuOp {
 public:
  explicit ConvOp(const Node& n) : node_(n) {}
  ~ConvOp() override {
    if (x_) cudnnDestroyTensorDescriptor(x_);
    if (y_) cudnnDestroyTensorDescriptor(y_);
    if (b_) cudnnDestroyTensorDescriptor(b_);
    if (w_) cudnnDestroyFilterDescriptor(w_);
    if (conv_) cudnnDestroyConvolutionDescriptor(conv_);
  }

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources& res) override {
    auto handle = static_cast<cudnnHandle_t>(res.cudnn);
    const DevTensor& x = in[0];
    const DevTensor& w = in[1];
    const DevTensor& y = out[0];
    int spatial = static_cast<int>(x.dims.size()) - 2;
    if (spatial < 1 || spatial > 3) return Unsupported(node_.Label() + ": Conv on the GPU needs 1-3 spatial dims");
    KILN_ASSIGN_OR_RETURN(cudnnDataType_t dt, CudnnType(x.dtype, node_));
    std::vector<int64_t> strides = IntsAttr(node_, "strides", spatial, 1);
    std::vector<int64_t> dil = IntsAttr(node_, "dilations", spatial, 1);
    KILN_ASSIGN_OR_RETURN(std::vector<int64_t> pads,
                          SymmetricPads(node_, x.dims, w.dims, y.dims, strides, dil, spatial));
    const Attribute* g = node_.attr("group");
    int groups = g ? static_cast<int>(g->i) : 1;
    // cuDNN wants at least 4-D: 1-D convs become 2-D with a unit height.
    std::vector<int64_t> xd = x.dims, wd = w.dims, yd = y.dims;
    if (spatial == 1) {
      xd.insert(xd.begin() + 2, 1);
      wd.insert(wd.begin() + 2, 1);
      yd.insert(yd.begin() + 2, 1);
      strides.insert(strides.begin(), 1);
      dil.insert(dil.begin(), 1);
      pads.insert(pads.begin(), 0);
    }
    KILN_RETURN_IF_ERROR(SetTensor(&x_, dt, xd));
    KILN_RETURN_IF_ERROR(SetTensor(&y_, dt, yd));
    KILN_RETURN_IF_ERROR(SetFilter(&w_, dt, wd));
    if (!conv_) KILN_CUDNN_RETURN_IF_ERROR(cudnnCreateConvolutionDescriptor(&conv_));
    std::vector<int> p(pads.begin(), pads.end()), s(strides.begin(), strides.end()), d(dil.begin(), dil.end());
    cudnnDataType_t compute = dt == CUDNN_DATA_DOUBLE ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    KILN_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionNdDescriptor(conv_, static_cast<int>(p.size()), p.data(), s.data(),
                                                               d.data(), CUDNN_CROSS_CORRELATION, compute));
    KILN_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionGroupCount(conv_, groups));
    cudnnMathType_t math = dt == CUDNN_DATA_HALF ? CUDNN_TENSOR_OP_MATH
                                                 : (res.allow_tf32 ? CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION : CUDNN_FMA_MATH);
    KILN_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionMathType(conv_, math));
    has_bias_ = in.size() > 2 && Present(in[2]);
    if (has_bias_) {
      std::vector<int64_t> bd(yd.size(), 1);
      bd[1] = yd[1];
      KILN_RETURN_IF_ERROR(SetTensor(&b_, dt, bd));
    }
    cudnnMathType_t found_math = math;
    KILN_ASSIGN_OR_RETURN(algo_, FindConvAlgo(handle, x_, w_, conv_, y_, res.workspace_limit, &workspace_, &found_math));
    // FP32 without --tf32 must not run in TF32 even if cuDNN offers it.
    if (dt == CUDNN_DATA_FLOAT && !res.allow_tf32 && found_math != CUDNN_FMA_MATH && found_math != CUDNN_DEFAULT_MATH)
      found_math = CUDNN_FMA_MATH;
    KILN_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionMathType(conv_, found_math));
    return Status::Ok();
  }

  size_t WorkspaceBytes() const override { return workspace_; }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void* ws, GpuResources& res,
                 cudaStream_t stream) override {
    auto handle = static_cast<cudnnHandle_t>(res.cudnn);
    KILN_CUDNN_RETURN_IF_ERROR(cudnnSetStream(handle, stream));
    const float one = 1.f, zero = 0.f;
    KILN_CUDNN_RETURN_IF_ERROR(cudnnConvolutionForward(handle, &one, x_, in[0].data, w_, in[1].data, conv_, algo_, ws,
                                                       workspace_, &zero, y_, out[0].data));
    if (has_bias_)
      KILN_CUDNN_RETURN_IF_ERROR(cudnnAddTensor(handle, &one, b_, in[2].data, &one, y_, out[0].data));
    return Status::Ok();
  }

 private:
  const Node& node_;
  cudnnTensorDescriptor_t x_ = nullptr, y_ = nullptr, b_ = nullptr;
  cudnnFilterDescriptor_t w_ = nullptr;
  cudnnConvolutionDescriptor_t conv_ = nullptr;
  cudnnConvolutionFwdAlgo_t algo_ = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  size_t workspace_ = 0;
  bool has_bias_ = false;
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeConvOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  if (n.num_inputs() < 2 || !n.input(1)) return InvalidArgument(n.Label() + ": Conv needs X and W");
  return std::unique_ptr<GpuOp>(new ConvOp(n));
}

}  // namespace kiln::cuda
