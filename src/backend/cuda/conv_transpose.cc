// ConvTranspose on the GPU: cuDNN's backward-data convolution, which is the
// transposed convolution with ONNX's weight layout [C_in, C_out/group, k...]
// as its filter. Output extents and begin/end pads come from the CPU
// reference's resolver (ops/nn_common.h: pads, auto_pad, output_padding,
// output_shape). cuDNN places output row j at padded coordinate j + pad_begin
// and infers the end from the output size, so any output_padding below the
// stride works; an end pad larger than the begin pad (odd SAME totals) is
// rejected at build time. 1-D runs as 2-D with a unit trailing dim. The bias
// is added per channel after the convolution. The algorithm comes from
// cuDNN's heuristics, within the workspace limit.
#include "backend/cuda/cudnn_util.h"
#include "backend/cuda/node_context.h"
#include "ops/nn_common.h"

namespace kiln::cuda {
namespace {

class ConvTransposeOp final : public GpuOp {
 public:
  ConvTransposeOp(const Node& n, int64_t opset) : node_(n), opset_(opset) {}
  ~ConvTransposeOp() override {
    if (x_) cudnnDestroyTensorDescriptor(x_);
    if (y_) cudnnDestroyTensorDescriptor(y_);
    if (b_) cudnnDestroyTensorDescriptor(b_);
    if (w_) cudnnDestroyFilterDescriptor(w_);
    if (conv_) cudnnDestroyConvolutionDescriptor(conv_);
  }

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources& res) override {
    GpuNodeContext ctx(node_, opset_, &in);
    const DevTensor& x = in[0];
    const DevTensor& w = in[1];
    const DevTensor& y = out[0];
    const size_t nsp = x.dims.size() >= 2 ? x.dims.size() - 2 : 0;
    if (nsp < 1 || nsp > 3) return ctx.UnsupportedError("ConvTranspose on the GPU needs 1-3 spatial dims");
    std::vector<int64_t> kernel(w.dims.begin() + 2, w.dims.end());
    nn::TransposeAttrs a;
    KILN_RETURN_IF_ERROR(nn::ReadTransposeAttrs(ctx, nsp, kernel, &a));
    std::vector<int64_t> spatial_in(x.dims.begin() + 2, x.dims.end()), spatial_out;
    KILN_RETURN_IF_ERROR(nn::ResolveTranspose(ctx, spatial_in, &a, &spatial_out));
    for (size_t i = 0; i < nsp; ++i) {
      if (spatial_out[i] != y.dims[i + 2])
        return Internal(node_.Label() + ": resolved output " + DimsToString(spatial_out) + " but shape inference said " +
                        DimsToString(y.dims));
      const int64_t begin = a.w.pads[i], end = a.w.pads[nsp + i];
      const int64_t slack = a.output_padding[i] + begin - end;  // extra rows cuDNN must floor away
      if (slack < 0 || slack >= a.w.strides[i])
        return ctx.UnsupportedError("padding " + std::to_string(begin) + " before and " + std::to_string(end) +
                                    " after spatial dim " + std::to_string(i) + " on the GPU");
    }
    KILN_ASSIGN_OR_RETURN(cudnnDataType_t dt, CudnnType(x.dtype, node_));
    std::vector<int64_t> xd = x.dims, yd = y.dims, wd = w.dims;
    std::vector<int> pads, strides, dil;
    for (size_t i = 0; i < nsp; ++i) {
      pads.push_back(static_cast<int>(a.w.pads[i]));
      strides.push_back(static_cast<int>(a.w.strides[i]));
      dil.push_back(static_cast<int>(a.w.dilations[i]));
    }
    if (nsp == 1) {  // cuDNN's Nd descriptors want two spatial dims
      xd.push_back(1);
      yd.push_back(1);
      wd.push_back(1);
      pads.push_back(0);
      strides.push_back(1);
      dil.push_back(1);
    }
    KILN_RETURN_IF_ERROR(SetTensor(&x_, dt, xd));
    KILN_RETURN_IF_ERROR(SetTensor(&y_, dt, yd));
    KILN_RETURN_IF_ERROR(SetFilter(&w_, dt, wd));
    if (!conv_) KILN_CUDNN_RETURN_IF_ERROR(cudnnCreateConvolutionDescriptor(&conv_));
    cudnnDataType_t compute = dt == CUDNN_DATA_DOUBLE ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    KILN_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionNdDescriptor(conv_, static_cast<int>(pads.size()), pads.data(),
                                                               strides.data(), dil.data(), CUDNN_CROSS_CORRELATION,
                                                               compute));
    KILN_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionGroupCount(conv_, static_cast<int>(a.group)));
    const cudnnMathType_t math = dt == CUDNN_DATA_HALF || dt == CUDNN_DATA_BFLOAT16
                                     ? CUDNN_TENSOR_OP_MATH
                                     : (res.allow_tf32 ? CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION : CUDNN_FMA_MATH);
    KILN_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionMathType(conv_, math));
    has_bias_ = in.size() > 2 && Present(in[2]);
    if (has_bias_) {
      std::vector<int64_t> bd(yd.size(), 1);
      bd[1] = yd[1];
      KILN_RETURN_IF_ERROR(SetTensor(&b_, dt, bd));
    }
    auto handle = static_cast<cudnnHandle_t>(res.cudnn);
    constexpr int kMax = 8;
    cudnnConvolutionBwdDataAlgoPerf_t perf[kMax];
    int found = 0;
    KILN_CUDNN_RETURN_IF_ERROR(
        cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, w_, x_, conv_, y_, kMax, &found, perf));
    bool chosen = false;
    for (int i = 0; i < found && !chosen; ++i) {
      if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > res.workspace_limit) continue;
      if (perf[i].determinism != CUDNN_DETERMINISTIC) continue;  // ALGO_0 adds with atomics: not bit-stable
      // FP32 without --tf32 must not run in TF32.
      if (dt == CUDNN_DATA_FLOAT && !res.allow_tf32 && perf[i].mathType != CUDNN_FMA_MATH &&
          perf[i].mathType != CUDNN_DEFAULT_MATH)
        continue;
      algo_ = perf[i].algo;
      workspace_ = perf[i].memory;
      KILN_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionMathType(conv_, perf[i].mathType));
      chosen = true;
    }
    if (!chosen) return ctx.UnsupportedError("cuDNN has no transposed-convolution algorithm for these shapes");
    double_ = dt == CUDNN_DATA_DOUBLE;
    return Status::Ok();
  }

  size_t WorkspaceBytes() const override { return workspace_; }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void* ws, GpuResources& res,
                 cudaStream_t stream) override {
    if (out[0].numel() == 0) return Status::Ok();
    auto handle = static_cast<cudnnHandle_t>(res.cudnn);
    KILN_CUDNN_RETURN_IF_ERROR(cudnnSetStream(handle, stream));
    const double one_d = 1.0, zero_d = 0.0;
    const float one_f = 1.f, zero_f = 0.f;
    const void* one = double_ ? static_cast<const void*>(&one_d) : &one_f;
    const void* zero = double_ ? static_cast<const void*>(&zero_d) : &zero_f;
    KILN_CUDNN_RETURN_IF_ERROR(cudnnConvolutionBackwardData(handle, one, w_, in[1].data, x_, in[0].data, conv_, algo_,
                                                            ws, workspace_, zero, y_, out[0].data));
    if (has_bias_) KILN_CUDNN_RETURN_IF_ERROR(cudnnAddTensor(handle, one, b_, in[2].data, one, y_, out[0].data));
    return Status::Ok();
  }

 private:
  const Node& node_;
  int64_t opset_;
  cudnnTensorDescriptor_t x_ = nullptr, y_ = nullptr, b_ = nullptr;
  cudnnFilterDescriptor_t w_ = nullptr;
  cudnnConvolutionDescriptor_t conv_ = nullptr;
  cudnnConvolutionBwdDataAlgo_t algo_ = CUDNN_CONVOLUTION_BWD_DATA_ALGO_0;
  size_t workspace_ = 0;
  bool has_bias_ = false, double_ = false;
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeConvTransposeOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(std::make_unique<ConvTransposeOp>(*info.node, info.opset));
}

}  // namespace kiln::cuda
