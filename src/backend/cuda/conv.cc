// Conv and kiln.FusedConv on cuDNN (legacy descriptor API of cuDNN 9):
// 1-D/2-D/3-D, groups (depthwise included), dilations, strides, symmetric pads
// (auto_pad resolved from shapes). The algorithm is chosen by timing
// (cudnnFind...Ex) at Prepare for each new shape, and runs with the math type
// it was timed with. TF32 only with --tf32; FP16 uses tensor cores with FP32
// accumulation.
//
// Conv: cudnnConvolutionForward, bias by cudnnAddTensor.
// FusedConv (Y = act(Conv(X, W, B) + Z); made by passes/fuse_gpu.cc): one
// cudnnConvolutionBiasActivationForward call for
// float32/float16 — y = act(1·conv(x) + alpha2·z + bias), with a zero bias
// buffer when B is absent and z = y, alpha2 = 0 when Z is absent. cuDNN runs
// the identity activation only with IMPLICIT_PRECOMP_GEMM: that algorithm is
// used when cudnnFind timed it close to the fastest (within kPrecompSlack,
// which the separate bias/residual passes it saves are worth); otherwise, and
// for double/bfloat16, the fastest algorithm runs unfused (conv, then
// cudnnAddTensor for bias and Z, cudnnActivationForward for ReLU). cuDNN's
// fused call knows only ReLU: Clip, Sigmoid and Swish run as one in-place
// elementwise pass after it (activation.h).
// FusedConvNhwc (passes/layout_nhwc.cc): the same on channels-last tensors,
// X/Z/Y [N,H,W,C] and W [K,R,S,C/group] (cuDNN's NHWC filter format), 2-D only.
// Two shapes skip cuDNN there: a 1x1, stride-1, unpadded, ungrouped conv is the
// matrix product [N*H*W, C] x [C, K] and runs on cuBLASLt (bias/ReLU epilogue,
// Z through beta = 1); a depthwise conv runs our own kernel (depthwise.h).
// A float16/bfloat16 ungrouped one may run as one cuDNN graph with its whole
// epilogue (conv_graph.h): with --conv-tactics auto when it timed faster than
// the legacy call plus the passes the legacy call leaves (an activation other
// than ReLU; bias, residual and ReLU when the fused call is not used), each
// pass costed at reading and writing Y once at kPassBytesPerMs. A 1x1 one with
// an activation cuBLASLt cannot fuse (Clip, Sigmoid, Swish) runs as the graph
// when that timed faster than the cuBLASLt product plus the activation pass.
// With --conv-tactics im2col, any other float16/bfloat16 ungrouped 2-D
// FusedConvNhwc runs as im2col (its windows as the rows of A [N·OH·OW, R·S·C]
// in the workspace) and the cuBLASLt product A · Wᵀ with the 1x1 path's
// epilogue. Not a timed candidate of auto: on EfficientNetV2-S's fused-MBConv
// 3x3 convolutions (384², batch 32, H100) it took 0.387 ms against cuDNN's
// 0.292 (48 → 192 channels) and 0.580 against 0.163 (24 → 24): A's write and
// read cost more than cuDNN loses to its small channel counts.
#include <cudnn.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "backend/cuda/activation.h"
#include "backend/cuda/conv1x1_small.h"
#include "backend/cuda/conv_graph.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_op_table.h"
#include "backend/cuda/cudnn_util.h"
#include "backend/cuda/depthwise.h"
#include "backend/cuda/im2col.h"
#include "backend/cuda/lt_gemm.h"
#include "backend/cuda/timing.h"

namespace kiln::cuda {
namespace {

// IMPLICIT_PRECOMP_GEMM for an identity-activation FusedConv is kept when its
// timed cost is at most this factor of the fastest algorithm's.
constexpr float kPrecompSlack = 1.2f;
// A memory-bound elementwise pass's rate for that estimate: about an H100's or
// H200's achievable bandwidth (3 TB/s).
constexpr double kPassBytesPerMs = 3e9;

class ConvOp final : public GpuOp {
 public:
  // fused: kiln.FusedConv (inputs X, W, B?, Z?; attribute activation).
  ConvOp(const Node& n, bool fused, ActivationSpec act, bool channels_last)
      : node_(n),
        fused_(fused),
        relu_(act.kind == Activation::kRelu),
        act_after_(relu_ ? ActivationSpec{} : act),
        epilogue_(act),
        channels_last_(channels_last) {
    const Attribute* after = n.attr("residual_after_activation");
    z_after_act_ = fused && after && after->i != 0;
  }
  ~ConvOp() override {
    if (x_) cudnnDestroyTensorDescriptor(x_);
    if (y_) cudnnDestroyTensorDescriptor(y_);
    if (b_) cudnnDestroyTensorDescriptor(b_);
    if (w_) cudnnDestroyFilterDescriptor(w_);
    if (conv_) cudnnDestroyConvolutionDescriptor(conv_);
    if (act_) cudnnDestroyActivationDescriptor(act_);
  }

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out,
                 GpuResources& res) override {
    auto handle = static_cast<cudnnHandle_t>(res.cudnn);
    const DevTensor& x = in[0];
    const DevTensor& w = in[1];
    const DevTensor& y = out[0];
    use_graph_ = false;
    use_small_ = false;
    use_im2col_ = false;
    if (channels_last_ && (x.dims.size() != 4 || w.dims.size() != 4 || y.dims.size() != 4))
      return Unsupported(node_.Label() + ": channels-last Conv on the GPU needs 4-D X, W and Y");
    int spatial = static_cast<int>(x.dims.size()) - 2;
    if (spatial < 1 || spatial > 3)
      return Unsupported(node_.Label() + ": Conv on the GPU needs 1-3 spatial dims");
    KILN_ASSIGN_OR_RETURN(dt_, CudnnType(x.dtype, node_));
    std::vector<int64_t> strides = IntsAttr(node_, "strides", spatial, 1);
    std::vector<int64_t> dil = IntsAttr(node_, "dilations", spatial, 1);
    KILN_ASSIGN_OR_RETURN(std::vector<int64_t> pads,
                          SymmetricPads(node_, channels_last_ ? NchwDims(x.dims) : x.dims,
                                        channels_last_ ? NchwDims(w.dims) : w.dims,
                                        channels_last_ ? NchwDims(y.dims) : y.dims, strides, dil, spatial));
    const Attribute* g = node_.attr("group");
    int groups = g ? static_cast<int>(g->i) : 1;
    has_bias_ = in.size() > 2 && Present(in[2]);
    has_z_ = fused_ && in.size() > 3 && Present(in[3]);
    depthwise_ = channels_last_ && spatial == 2 && groups > 1 && x.dims[3] == groups && w.dims[0] == groups &&
                 w.dims[3] == 1 && y.dims[3] == groups;
    pointwise_ = channels_last_ && spatial == 2 && groups == 1 && w.dims[1] == 1 && w.dims[2] == 1 &&
                 strides == std::vector<int64_t>{1, 1} && pads == std::vector<int64_t>{0, 0} &&
                 x.dims[1] == y.dims[1] && x.dims[2] == y.dims[2] && dt_ != CUDNN_DATA_DOUBLE;
    // A residual after the activation: cuDNN's graph (any epilogue order) or the separate calls below; the
    // products', the depthwise kernels' and the fused call's epilogues add Z before the activation.
    const bool z_post = z_after_act_ && has_z_;
    if (z_post) pointwise_ = depthwise_ = false;
    if (pointwise_) {
      if (has_z_ && in[3].dims != y.dims)
        return InvalidArgument(node_.Label() + ": Z " + DimsToString(in[3].dims) + " must have the output's shape " +
                               DimsToString(y.dims));
      GemmShape gs;
      gs.m = x.dims[0] * x.dims[1] * x.dims[2];
      gs.k = x.dims[3];
      gs.n = w.dims[0];
      gs.trans_b = true;  // W [K, C] row-major is Bᵀ
      KILN_ASSIGN_OR_RETURN(cudaDataType_t lt, LtType(x.dtype, node_));
      workspace_ = kLtWorkspace;
      KILN_RETURN_IF_ERROR(gemm_
                               .Prepare(gs, lt, res.allow_tf32, has_bias_, res,
                                        relu_ ? LtActivation::kRelu : LtActivation::kNone, node_.name)
                               .WithPrefix(node_.Label()));
      // Few input channels or few pixels: our own kernel may beat the product (and its activation pass);
      // not when --conv-tactics=graph asks for cuDNN's graph everywhere.
      small_ = Conv1x1Shape{gs.m, gs.k, gs.n};
      if (res.conv_tactics != BuildOptions::ConvTactics::kGraph && SmallConv1x1Fits(x.dtype, small_)) {
        Expected<bool> small_wins = SmallBeatsLt(x, y, res);
        use_small_ = small_wins.ok() && *small_wins;
        if (use_small_) return Status::Ok();
      }
      // An activation cuBLASLt cannot fuse (anything but ReLU) costs it one more pass: cuDNN's graph may not.
      // A candidate only: whatever fails on its way leaves the cuBLASLt product, which is ready.
      if (act_after_.kind == Activation::kNone) return Status::Ok();
      float graph_ms = 0.f;
      if (!PrepareGraph(x.dtype, NchwDims(x.dims), NchwDims(w.dims), NchwDims(y.dims), {0, 0}, {1, 1}, {1, 1}, res,
                        &graph_ms))
        return Status::Ok();
      Expected<bool> graph_wins = GraphBeatsLt(x, y, graph_ms, res);
      if (graph_wins.ok() && *graph_wins) UseGraph(res);
      return Status::Ok();
    }
    if (depthwise_) {
      if (has_z_ && in[3].dims != y.dims)
        return InvalidArgument(node_.Label() + ": Z " + DimsToString(in[3].dims) + " must have the output's shape " +
                               DimsToString(y.dims));
      dw_ = DepthwiseShape{x.dims[0], x.dims[1], x.dims[2], x.dims[3], y.dims[1], y.dims[2], w.dims[1], w.dims[2],
                           strides[0], strides[1], pads[0], pads[1], dil[0], dil[1]};
      workspace_ = 0;
      dw_kernel_ = DepthwiseKernel::kPixels;
      if (DepthwiseRowsFit(x.dtype, dw_) || DepthwiseRegsFit(x.dtype, dw_)) {
        Expected<DepthwiseKernel> pick = PickDepthwise(x, y, res);
        if (pick.ok()) dw_kernel_ = *pick;
      }
      return Status::Ok();
    }
    // --conv-tactics im2col: the im2col product wherever it fits.
    if (res.conv_tactics == BuildOptions::ConvTactics::kIm2Col && !z_post &&
        Im2ColFits(x, w, y, spatial, groups, strides, pads, dil, res)) {
      // No verdict (a timing cache keeps timed choices only); the node's use names the key all the same.
      if (res.tactics) res.tactics->Use(node_.name, Im2ColKey(x, y));
      UseIm2Col(x.dtype);
      return Status::Ok();
    }
    // cuDNN wants at least 4-D: 1-D convs become 2-D with a unit height.
    std::vector<int64_t> xd = x.dims, wd = w.dims, yd = y.dims;
    if (channels_last_) {
      xd = NchwDims(xd);
      wd = NchwDims(wd);
      yd = NchwDims(yd);
    }
    if (spatial == 1) {
      xd.insert(xd.begin() + 2, 1);
      wd.insert(wd.begin() + 2, 1);
      yd.insert(yd.begin() + 2, 1);
      strides.insert(strides.begin(), 1);
      dil.insert(dil.begin(), 1);
      pads.insert(pads.begin(), 0);
    }
    if (channels_last_) {
      KILN_RETURN_IF_ERROR(SetTensorNhwc(&x_, dt_, xd));
      KILN_RETURN_IF_ERROR(SetTensorNhwc(&y_, dt_, yd));
      KILN_RETURN_IF_ERROR(SetFilter(&w_, dt_, wd, CUDNN_TENSOR_NHWC));
    } else {
      KILN_RETURN_IF_ERROR(SetTensor(&x_, dt_, xd));
      KILN_RETURN_IF_ERROR(SetTensor(&y_, dt_, yd));
      KILN_RETURN_IF_ERROR(SetFilter(&w_, dt_, wd));
    }
    if (!conv_) KILN_CUDNN_RETURN_IF_ERROR(cudnnCreateConvolutionDescriptor(&conv_));
    std::vector<int> p(pads.begin(), pads.end()), s(strides.begin(), strides.end()),
        d(dil.begin(), dil.end());
    cudnnDataType_t compute = dt_ == CUDNN_DATA_DOUBLE ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    KILN_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionNdDescriptor(
        conv_, static_cast<int>(p.size()), p.data(), s.data(), d.data(), CUDNN_CROSS_CORRELATION, compute));
    KILN_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionGroupCount(conv_, groups));
    cudnnMathType_t math = dt_ == CUDNN_DATA_HALF
                               ? CUDNN_TENSOR_OP_MATH
                               : (res.allow_tf32 ? CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION : CUDNN_FMA_MATH);
    KILN_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionMathType(conv_, math));
    if (has_z_ && in[3].dims != y.dims)
      return InvalidArgument(node_.Label() + ": Z " + DimsToString(in[3].dims) +
                             " must have the output's shape " + DimsToString(y.dims));
    // The fused call needs a bias descriptor even without B (a zero bias is passed).
    if (has_bias_ || fused_) {
      std::vector<int64_t> bd(yd.size(), 1);
      bd[1] = yd[1];
      KILN_RETURN_IF_ERROR(SetTensor(&b_, dt_, bd));
    }

    // cuDNN's graph API: the whole epilogue in one engine. A candidate: if it fails, the legacy call runs.
    float graph_ms = 0.f;
    bool graph_ok = false;
    if (spatial == 2 && groups == 1) {
      graph_ok = PrepareGraph(x.dtype, xd, wd, yd, pads, strides, dil, res, &graph_ms);
      if (graph_ok && res.conv_tactics == BuildOptions::ConvTactics::kGraph) {
        UseGraph(res);
        return Status::Ok();
      }
    }
    KILN_ASSIGN_OR_RETURN(
        std::vector<ConvAlgoChoice> algos,
        FindConvAlgos(handle, x_, w_, conv_, y_, res.workspace_limit, res.tactics.get(), node_.name));
    ConvAlgoChoice pick = algos[0];
    fused_call_ = false;
    if (fused_ && !z_post && (dt_ == CUDNN_DATA_FLOAT || dt_ == CUDNN_DATA_HALF)) {
      if (relu_) {
        fused_call_ = true;
      } else {  // identity: cuDNN supports it only with IMPLICIT_PRECOMP_GEMM
        for (const ConvAlgoChoice& c : algos)
          if (c.algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM &&
              c.time_ms <= kPrecompSlack * algos[0].time_ms) {
            pick = c;
            fused_call_ = true;
            break;
          }
      }
    }
    if (graph_ok) {
      const int passes = (act_after_.kind != Activation::kNone) +
                         (fused_call_ ? 0 : int(has_bias_) + int(has_z_) + int(relu_));
      const double pass_ms =
          2.0 * static_cast<double>(out[0].numel() * ElementSize(y.dtype)) / kPassBytesPerMs;
      if (graph_ms <= pick.time_ms + passes * pass_ms) {
        UseGraph(res);
        return Status::Ok();
      }
    }
    algo_ = pick.algo;
    workspace_ = pick.workspace;
    cudnnMathType_t found_math = pick.math;
    // FP32 without --tf32 must not run in TF32 even if cuDNN offers it.
    if (dt_ == CUDNN_DATA_FLOAT && !res.allow_tf32 && found_math != CUDNN_FMA_MATH &&
        found_math != CUDNN_DEFAULT_MATH)
      found_math = CUDNN_FMA_MATH;
    KILN_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionMathType(conv_, found_math));

    if (fused_ && (fused_call_ || relu_)) {
      if (!act_) KILN_CUDNN_RETURN_IF_ERROR(cudnnCreateActivationDescriptor(&act_));
      cudnnActivationMode_t mode = relu_ ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY;
      KILN_CUDNN_RETURN_IF_ERROR(cudnnSetActivationDescriptor(act_, mode, CUDNN_PROPAGATE_NAN, 0.0));
    }
    if (fused_call_ && !has_bias_) {  // zero bias, written once here (outside any capture)
      size_t bytes = static_cast<size_t>(yd[1]) * ElementSize(x.dtype);
      KILN_RETURN_IF_ERROR(zero_bias_.Reserve(bytes));
      KILN_CUDA_RETURN_IF_ERROR(cudaMemset(zero_bias_.get(), 0, bytes));
      // The legacy stream does not order with the context's non-blocking stream: finish here.
      KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(nullptr));
    }
    return Status::Ok();
  }

  size_t WorkspaceBytes() const override { return workspace_; }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void* ws,
                 GpuResources& res, cudaStream_t stream) override {
    auto handle = static_cast<cudnnHandle_t>(res.cudnn);
    KILN_CUDNN_RETURN_IF_ERROR(cudnnSetStream(handle, stream));
    // Scaling factors are double for double tensors, float otherwise.
    const float one_f = 1.f, zero_f = 0.f;
    const double one_d = 1.0, zero_d = 0.0;
    const bool dbl = dt_ == CUDNN_DATA_DOUBLE;
    const void* one = dbl ? static_cast<const void*>(&one_d) : &one_f;
    const void* zero = dbl ? static_cast<const void*>(&zero_d) : &zero_f;
    void* y = out[0].data;
    if (use_graph_)
      return graph_.Run(in[0].data, in[1].data, has_bias_ ? in[2].data : nullptr, has_z_ ? in[3].data : nullptr, y,
                        ws, res, stream)
          .WithPrefix(node_.Label());
    if (use_small_)
      return LaunchSmallConv1x1(out[0].dtype, small_, in[0].data, in[1].data,
                                has_bias_ ? in[2].data : nullptr, has_z_ ? in[3].data : nullptr, y, epilogue_,
                                stream)
          .WithPrefix(node_.Label());
    if (pointwise_) {
      if (out[0].numel() == 0) return Status::Ok();
      KILN_RETURN_IF_ERROR(gemm_.Run(in[0].data, in[1].data, has_z_ ? in[3].data : nullptr,
                                     has_bias_ ? in[2].data : nullptr, y, 1.f, has_z_ ? 1.f : 0.f, ws, res, stream)
                               .WithPrefix(node_.Label()));
      return LaunchActivation(out[0].dtype, y, out[0].numel(), act_after_, stream);
    }
    if (use_im2col_) {
      if (out[0].numel() == 0) return Status::Ok();
      void* a = ws;
      void* lt_ws = static_cast<char*>(ws) + AlignedBytes(im2col_.elements(), out[0].dtype);
      KILN_RETURN_IF_ERROR(
          LaunchIm2Col(out[0].dtype, im2col_, in[0].data, a, stream).WithPrefix(node_.Label()));
      KILN_RETURN_IF_ERROR(gemm_
                               .Run(a, in[1].data, has_z_ ? in[3].data : nullptr,
                                    has_bias_ ? in[2].data : nullptr, y, 1.f, has_z_ ? 1.f : 0.f, lt_ws, res,
                                    stream)
                               .WithPrefix(node_.Label()));
      return LaunchActivation(out[0].dtype, y, out[0].numel(), act_after_, stream);
    }
    if (depthwise_)
      return LaunchDepthwiseNhwc(out[0].dtype, dw_, in[0].data, in[1].data, has_bias_ ? in[2].data : nullptr,
                                 has_z_ ? in[3].data : nullptr, y, epilogue_, dw_kernel_, res.sm_count,
                                 stream);
    if (fused_call_) {
      const void* z = has_z_ ? in[3].data : y;
      const void* bias = has_bias_ ? in[2].data : zero_bias_.get();
      KILN_RETURN_IF_ERROR(CudnnStatus(cudnnConvolutionBiasActivationForward(
                                           handle, one, x_, in[0].data, w_, in[1].data, conv_, algo_, ws, workspace_,
                                           has_z_ ? one : zero, y_, z, b_, bias, act_, y_, y),
                                       "cudnnConvolutionBiasActivationForward"));
      return LaunchActivation(out[0].dtype, y, out[0].numel(), act_after_, stream);
    }
    KILN_CUDNN_RETURN_IF_ERROR(cudnnConvolutionForward(handle, one, x_, in[0].data, w_, in[1].data, conv_,
                                                       algo_, ws, workspace_, zero, y_, y));
    if (has_bias_) KILN_CUDNN_RETURN_IF_ERROR(cudnnAddTensor(handle, one, b_, in[2].data, one, y_, y));
    const bool z_post = z_after_act_ && has_z_;
    if (has_z_ && !z_post)
      KILN_CUDNN_RETURN_IF_ERROR(cudnnAddTensor(handle, one, y_, in[3].data, one, y_, y));
    if (fused_ && relu_)
      KILN_CUDNN_RETURN_IF_ERROR(cudnnActivationForward(handle, act_, one, y_, y, zero, y_, y));
    KILN_RETURN_IF_ERROR(LaunchActivation(out[0].dtype, y, out[0].numel(), act_after_, stream));
    if (z_post) KILN_CUDNN_RETURN_IF_ERROR(cudnnAddTensor(handle, one, y_, in[3].data, one, y_, y));
    return Status::Ok();
  }

 private:
  // Prepares this convolution as one cuDNN graph (conv_graph.h; logical NCHW
  // dims) when the build allows it and the type fits; false when it does not,
  // or cuDNN has no engine, or preparing failed: the caller keeps its own
  // path. *ms: its timed cost.
  bool PrepareGraph(DataType dt, std::vector<int64_t> xd, std::vector<int64_t> wd, std::vector<int64_t> yd,
                    std::vector<int64_t> pads, std::vector<int64_t> strides, std::vector<int64_t> dil,
                    GpuResources& res, float* ms) {
    if (!channels_last_ || !fused_ || res.conv_tactics == BuildOptions::ConvTactics::kLegacy ||
        (dt != DataType::kFloat16 && dt != DataType::kBFloat16))
      return false;
    ConvGraphShape gs{std::move(xd),
                      std::move(wd),
                      std::move(yd),
                      std::move(pads),
                      std::move(strides),
                      std::move(dil),
                      dt,
                      has_bias_,
                      has_z_,
                      z_after_act_ && has_z_,
                      epilogue_};
    return graph_.Prepare(gs, res, ms).ok();
  }

  void UseGraph(GpuResources& res) {
    use_graph_ = true;
    workspace_ = graph_.WorkspaceBytes();
    if (res.tactics) res.tactics->Use(node_.name, graph_.key());
  }

  // Bytes of `elements` elements of `dt`, rounded up to 256 (the product's workspace follows A's).
  static size_t AlignedBytes(int64_t elements, DataType dt) {
    const size_t bytes = static_cast<size_t>(elements) * ElementSize(dt);
    return (bytes + 255) / 256 * 256;
  }

  // Whether this convolution may run as im2col and a cuBLASLt product: channels-last FusedConvNhwc,
  // float16/bfloat16, 2-D, ungrouped, rows of A a whole number of 16-byte words, A within the workspace
  // limit. Prepares im2col_ and gemm_ (the product [N·OH·OW, R·S·C] x [R·S·C, K], W [K, R, S, C] as Bᵀ).
  bool Im2ColFits(const DevTensor& x, const DevTensor& w, const DevTensor& y, int spatial, int groups,
                  const std::vector<int64_t>& strides, const std::vector<int64_t>& pads,
                  const std::vector<int64_t>& dil, GpuResources& res) {
    if (!channels_last_ || !fused_ || spatial != 2 || groups != 1 ||
        (x.dtype != DataType::kFloat16 && x.dtype != DataType::kBFloat16))
      return false;
    Im2ColGeometry g;
    g.n = x.dims[0], g.h = x.dims[1], g.w = x.dims[2], g.c = x.dims[3];
    g.oh = y.dims[1], g.ow = y.dims[2];
    g.kh = w.dims[1], g.kw = w.dims[2];
    g.sh = strides[0], g.sw = strides[1], g.pt = pads[0], g.pl = pads[1], g.dh = dil[0], g.dw = dil[1];
    g.columns = g.taps();
    g.channels_last = true;
    const int64_t k = w.dims[0];
    if (g.columns % 8 != 0 || k % 8 != 0 || g.elements() == 0 ||
        AlignedBytes(g.elements(), x.dtype) + kLtWorkspace > res.workspace_limit)
      return false;
    GemmShape gs;
    gs.m = g.n * g.oh * g.ow;
    gs.k = g.columns;
    gs.n = k;
    gs.trans_b = true;
    Expected<cudaDataType_t> lt = LtType(x.dtype, node_);
    if (!lt.ok() || !gemm_
                         .Prepare(gs, *lt, res.allow_tf32, has_bias_, res,
                                  relu_ ? LtActivation::kRelu : LtActivation::kNone, node_.name)
                         .ok())
      return false;
    im2col_ = g;
    return true;
  }

  // The key a node running im2col names as its use (kiln inspect): the geometry and the epilogue.
  std::string Im2ColKey(const DevTensor& x, const DevTensor& y) const {
    const Im2ColGeometry& g = im2col_;
    return "conv_im2col:" + std::string(DataTypeName(x.dtype)) + ":x" + DimsToString(x.dims) + "k" +
           std::to_string(g.kh) + "x" + std::to_string(g.kw) + "s" + std::to_string(g.sh) + "x" +
           std::to_string(g.sw) + "p" + std::to_string(g.pt) + "x" + std::to_string(g.pl) + "d" +
           std::to_string(g.dh) + "x" + std::to_string(g.dw) + "y" + DimsToString(y.dims) + ":b" +
           std::to_string(has_bias_) + ":z" + std::to_string(has_z_) + ":a" +
           std::to_string(static_cast<int>(epilogue_.kind));
  }

  void UseIm2Col(DataType dt) {
    use_im2col_ = true;
    workspace_ = AlignedBytes(im2col_.elements(), dt) + kLtWorkspace;
  }

  // A 1x1 convolution: whether the prepared graph beats cuBLASLt's product plus
  // the activation pass after it (--conv-tactics graph: always). The verdict
  // is a tactic entry (graph key + ":1x1", "graph" or "cublaslt"), so a
  // loaded plan does not time again.
  Expected<bool> GraphBeatsLt(const DevTensor& x, const DevTensor& y, float graph_ms, GpuResources& res) {
    if (res.conv_tactics == BuildOptions::ConvTactics::kGraph) return true;
    const std::string key = graph_.key() + ":1x1";
    if (res.tactics)
      if (std::optional<std::string> hit = res.tactics->Find(key)) return *hit == "graph";
    KILN_ASSIGN_OR_RETURN(Scratch1x1 scratch, Scratch1x1::For(x, y));
    KILN_ASSIGN_OR_RETURN(float lt_ms, TimeLtProduct(scratch, y, res));
    return KeepTactic(res, key, graph_ms < lt_ms ? "graph" : "cublaslt") == "graph";
  }

  // A 1x1 convolution of few input channels: whether our kernel (conv1x1_small.h) beats cuBLASLt's product
  // plus the activation pass after it, both timed on the same scratch operands. The verdict is a tactic
  // entry, so a loaded plan does not time again.
  Expected<bool> SmallBeatsLt(const DevTensor& x, const DevTensor& y, GpuResources& res) {
    const std::string key = "conv1x1_small:" + std::string(DataTypeName(x.dtype)) + ":" +
                            std::to_string(small_.pixels) + "x" + std::to_string(small_.c) + "x" +
                            std::to_string(small_.k) + ":b" + std::to_string(has_bias_) + ":z" +
                            std::to_string(has_z_) + ":a" + std::to_string(static_cast<int>(epilogue_.kind));
    std::optional<Scratch1x1> scratch;
    std::vector<std::function<Expected<float>()>> timers = {
        [&]() -> Expected<float> {
          KILN_ASSIGN_OR_RETURN(scratch, Scratch1x1::For(x, y));
          Scratch1x1& sc = *scratch;
          return TimeOnPrivateStream(
              [&](cudaStream_t stream) {
                return LaunchSmallConv1x1(x.dtype, small_, sc.x.get(), sc.w.get(),
                                          has_bias_ ? sc.b.get() : nullptr, has_z_ ? sc.z.get() : nullptr,
                                          sc.y.get(), epilogue_, stream);
              },
              5);
        },
        [&]() { return TimeLtProduct(*scratch, y, res); }};
    KILN_ASSIGN_OR_RETURN(size_t pick, FastestTactic(res, key, {"small", "cublaslt"}, timers, node_.name));
    return pick == 0;
  }

  // A channels-last depthwise convolution more than one kernel can run (depthwise.h): the fastest, timed on
  // the same scratch operands (the pixel kernel first: it wins ties).
  Expected<DepthwiseKernel> PickDepthwise(const DevTensor& x, const DevTensor& y, GpuResources& res) {
    const DepthwiseShape& s = dw_;
    const std::string key = "depthwise:" + std::string(DataTypeName(x.dtype)) + ":" + DimsToString(x.dims) +
                            ":k" + std::to_string(s.kh) + "x" + std::to_string(s.kw) + ":s" +
                            std::to_string(s.stride_h) + "x" + std::to_string(s.stride_w) + ":p" +
                            std::to_string(s.pad_h) + "x" + std::to_string(s.pad_w) + ":d" +
                            std::to_string(s.dil_h) + "x" + std::to_string(s.dil_w) + ":o" +
                            DimsToString(y.dims) + ":b" + std::to_string(has_bias_) + ":z" +
                            std::to_string(has_z_) + ":a" + std::to_string(static_cast<int>(epilogue_.kind));
    const size_t es = ElementSize(x.dtype);
    DeviceBuffer sx, sw, sb, sz, sy;
    auto time = [&](DepthwiseKernel kernel) -> Expected<float> {
      if (!sy.get()) {
        KILN_RETURN_IF_ERROR(sx.Reserve(static_cast<size_t>(x.numel()) * es));
        KILN_RETURN_IF_ERROR(sw.Reserve(static_cast<size_t>(s.c * s.kh * s.kw) * es));
        KILN_RETURN_IF_ERROR(sb.Reserve(static_cast<size_t>(s.c) * es));
        KILN_RETURN_IF_ERROR(sz.Reserve(static_cast<size_t>(y.numel()) * es));
        KILN_RETURN_IF_ERROR(sy.Reserve(static_cast<size_t>(y.numel()) * es));
        KILN_RETURN_IF_ERROR(FillForTiming({&sx, &sw, &sb, &sz}));
      }
      return TimeOnPrivateStream(
          [&](cudaStream_t stream) {
            return LaunchDepthwiseNhwc(x.dtype, s, sx.get(), sw.get(), has_bias_ ? sb.get() : nullptr,
                                       has_z_ ? sz.get() : nullptr, sy.get(), epilogue_, kernel, res.sm_count,
                                       stream);
          },
          5);
    };
    std::vector<DepthwiseKernel> kernels = {DepthwiseKernel::kPixels};
    std::vector<std::string> names = {"pixels"};
    if (DepthwiseRowsFit(x.dtype, s)) {
      kernels.push_back(DepthwiseKernel::kRows), names.push_back("rows");
      kernels.push_back(DepthwiseKernel::kTile), names.push_back("tile");
      kernels.push_back(DepthwiseKernel::kTilePairs), names.push_back("tile2");
    }
    if (DepthwiseRegsFit(x.dtype, s)) kernels.push_back(DepthwiseKernel::kRegs), names.push_back("regs");
    std::vector<std::function<Expected<float>()>> timers;
    for (DepthwiseKernel k : kernels) timers.push_back([&time, k]() { return time(k); });
    KILN_ASSIGN_OR_RETURN(size_t pick, FastestTactic(res, key, names, timers, node_.name));
    return kernels[pick];
  }

  // Scratch operands of a channels-last 1x1 convolution X [.., C] → Y [.., K] for timing candidates (filled
  // by FillForTiming; Y is written).
  struct Scratch1x1 {
    DeviceBuffer x, w, b, z, y;
    static Expected<Scratch1x1> For(const DevTensor& x, const DevTensor& y) {
      const size_t es = ElementSize(x.dtype);
      const int64_t c = x.dims[3], k = y.dims[3];
      Scratch1x1 s;
      KILN_RETURN_IF_ERROR(s.x.Reserve(static_cast<size_t>(x.numel()) * es));
      KILN_RETURN_IF_ERROR(s.w.Reserve(static_cast<size_t>(k * c) * es));
      KILN_RETURN_IF_ERROR(s.b.Reserve(static_cast<size_t>(k) * es));
      KILN_RETURN_IF_ERROR(s.z.Reserve(static_cast<size_t>(y.numel()) * es));
      KILN_RETURN_IF_ERROR(s.y.Reserve(static_cast<size_t>(y.numel()) * es));
      KILN_RETURN_IF_ERROR(FillForTiming({&s.x, &s.w, &s.b, &s.z}));
      return s;
    }
  };

  // The 1x1 product as Enqueue runs it on cuBLASLt (product, then the
  // activation pass), timed on scratch operands: the fastest of 5 runs.
  Expected<float> TimeLtProduct(Scratch1x1& s, const DevTensor& y, GpuResources& res) {
    DeviceBuffer ws;
    KILN_RETURN_IF_ERROR(ws.Reserve(kLtWorkspace));
    return TimeOnPrivateStream(
        [&](cudaStream_t stream) -> Status {
          KILN_RETURN_IF_ERROR(gemm_.Run(s.x.get(), s.w.get(), has_z_ ? s.z.get() : nullptr,
                                         has_bias_ ? s.b.get() : nullptr, s.y.get(), 1.f, has_z_ ? 1.f : 0.f,
                                         ws.get(), res, stream));
          return LaunchActivation(y.dtype, s.y.get(), y.numel(), act_after_, stream);
        },
        5);
  }

  const Node& node_;
  const bool fused_;
  const bool relu_;                 // fused into cuDNN's call
  const ActivationSpec act_after_;  // any other activation: a pass after it
  const ActivationSpec epilogue_;   // the whole activation (depthwise kernel)
  const bool channels_last_;
  bool z_after_act_ = false;  // attribute residual_after_activation: act(conv + B) + Z
  bool depthwise_ = false;  // channels-last depthwise: our own kernel (depthwise.h)
  bool pointwise_ = false;  // channels-last 1x1: one cuBLASLt product
  bool use_graph_ = false;  // one cuDNN graph: conv, bias, residual, activation
  bool use_small_ = false;  // channels-last 1x1 of few input channels: our own kernel (conv1x1_small.h)
  bool use_im2col_ = false;  // im2col into the workspace, then gemm_ (Im2ColFits)
  Im2ColGeometry im2col_;
  Conv1x1Shape small_;
  ConvGraph graph_;
  LtGemm gemm_;  // the 1x1 product, or the im2col one
  DepthwiseShape dw_;
  DepthwiseKernel dw_kernel_ = DepthwiseKernel::kPixels;
  cudnnDataType_t dt_ = CUDNN_DATA_FLOAT;
  cudnnTensorDescriptor_t x_ = nullptr, y_ = nullptr, b_ = nullptr;
  cudnnFilterDescriptor_t w_ = nullptr;
  cudnnConvolutionDescriptor_t conv_ = nullptr;
  cudnnActivationDescriptor_t act_ = nullptr;
  cudnnConvolutionFwdAlgo_t algo_ = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  size_t workspace_ = 0;
  bool has_bias_ = false;
  bool has_z_ = false;
  bool fused_call_ = false;  // one cudnnConvolutionBiasActivationForward
  DeviceBuffer zero_bias_;
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeConvOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  if (n.num_inputs() < 2 || !n.input(1)) return InvalidArgument(n.Label() + ": Conv needs X and W");
  return std::unique_ptr<GpuOp>(new ConvOp(n, false, ActivationSpec{}, false));
}

Expected<ActivationSpec> ReadFusedActivation(const Node& n) {
  const Attribute* a = n.attr("activation");
  std::string act = a ? a->s : "";
  ActivationSpec spec;
  if (act.empty()) return spec;
  if (act == "Relu") spec.kind = Activation::kRelu;
  else if (act == "Sigmoid") spec.kind = Activation::kSigmoid;
  else if (act == "Swish") spec.kind = Activation::kSwish;
  else if (act == "HardSwish") spec.kind = Activation::kHardSwish;
  else if (act == "Gelu") spec.kind = Activation::kGelu;
  else if (act == "LeakyRelu") {
    spec.kind = Activation::kLeakyRelu;
    const Attribute* alpha = n.attr("activation_alpha");
    spec.alpha = alpha ? alpha->f : 0.01f;
  } else if (act == "HardSigmoid") {
    spec.kind = Activation::kHardSigmoid;
    const Attribute* alpha = n.attr("activation_alpha");
    const Attribute* beta = n.attr("activation_beta");
    spec.alpha = alpha ? alpha->f : 0.2f;
    spec.beta = beta ? beta->f : 0.5f;
  } else if (act == "Clip") {
    spec.kind = Activation::kClip;
    const Attribute* lo = n.attr("activation_min");
    const Attribute* hi = n.attr("activation_max");
    spec.lo = lo ? lo->f : -INFINITY;
    spec.hi = hi ? hi->f : INFINITY;
  } else {
    return Unsupported(n.Label() + ": activation '" + act + "' is not supported on the GPU");
  }
  return spec;
}

namespace {

Expected<std::unique_ptr<GpuOp>> MakeFused(const GpuOpInfo& info, bool channels_last) {
  const Node& n = *info.node;
  if (n.num_inputs() < 2 || n.num_inputs() > 4 || !n.input(0) || !n.input(1))
    return InvalidArgument(n.Label() + ": " + n.op_type + " needs X, W and optional B, Z");
  KILN_ASSIGN_OR_RETURN(ActivationSpec act, ReadFusedActivation(n));
  return std::unique_ptr<GpuOp>(new ConvOp(n, true, act, channels_last));
}

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeFusedConvOp(const GpuOpInfo& info) { return MakeFused(info, false); }

Expected<std::unique_ptr<GpuOp>> MakeFusedConvNhwcOp(const GpuOpInfo& info) { return MakeFused(info, true); }

}  // namespace kiln::cuda
