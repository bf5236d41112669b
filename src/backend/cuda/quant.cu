// Linear quantization on the GPU: QuantizeLinear, DequantizeLinear (per
// tensor or per axis, int8 / uint8; DequantizeLinear also int32) and
// DynamicQuantizeLinear (uint8). Own kernels: each is one elementwise pass (the
// scale and zero point read on the device, so they work inside CUDA graphs
// with any scale input), and DynamicQuantizeLinear one block-wide min/max
// reduction that writes its scale and zero point on the device before the
// elementwise pass reads them. Arithmetic as the CPU reference
// (ops/reduce_quant.cc): float32 x / scale, round half to even, + zero point,
// saturate; (float(q) - zp) * scale.
#include <cfloat>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/node_context.h"
#include "ops/op_util.h"

namespace kiln::cuda {
namespace {

constexpr int kThreads = 256;

int Blocks(int64_t n) { return static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, 65535 * 8)); }

// Element i's parameter index: 0 per tensor; (i / inner) % axis_n per axis.
struct ParamIndex {
  int64_t inner = 1, axis_n = 1;
  bool per_axis = false;
  __device__ int64_t operator()(int64_t i) const { return per_axis ? (i / inner) % axis_n : 0; }
};

template <class T>
__device__ inline float LoadF(const T* p, int64_t i) {
  return ToFloat(p[i]);
}

template <class X, class Q>
__global__ void QuantizeKernel(const X* __restrict__ x, const float* __restrict__ scale, const Q* __restrict__ zp,
                               Q* __restrict__ y, int64_t n, ParamIndex pi, float lo, float hi) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = pi(i);
    float q = rintf(__fdiv_rn(LoadF(x, i), scale[p]));
    if (zp) q += static_cast<float>(zp[p]);
    if (q != q) q = 0.f;  // NaN
    y[i] = static_cast<Q>(fminf(hi, fmaxf(lo, q)));
  }
}

template <class Q>
__global__ void DequantizeKernel(const Q* __restrict__ x, const float* __restrict__ scale, const Q* __restrict__ zp,
                                 float* __restrict__ y, int64_t n, ParamIndex pi) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = pi(i);
    float d = static_cast<float>(x[i]);
    if (zp) d -= static_cast<float>(zp[p]);
    y[i] = __fmul_rn(d, scale[p]);
  }
}

// One block: min/max over x (including 0, as the reference), then scale and zero point.
__global__ void MinMaxScaleKernel(const float* __restrict__ x, int64_t n, float* scale, uint8_t* zp) {
  __shared__ float smin[kThreads], smax[kThreads];
  float mn = 0.f, mx = 0.f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    mn = fminf(mn, x[i]);
    mx = fmaxf(mx, x[i]);
  }
  smin[threadIdx.x] = mn;
  smax[threadIdx.x] = mx;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      smin[threadIdx.x] = fminf(smin[threadIdx.x], smin[threadIdx.x + s]);
      smax[threadIdx.x] = fmaxf(smax[threadIdx.x], smax[threadIdx.x + s]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const float lo = smin[0], hi = smax[0];
    const float s = __fdiv_rn(hi == lo ? 1.f : __fsub_rn(hi, lo), 255.f);
    const float z = rintf(fminf(255.f, fmaxf(0.f, __fsub_rn(0.f, __fdiv_rn(lo, s)))));
    *scale = s;
    *zp = static_cast<uint8_t>(z);
  }
}

__global__ void DynamicQuantizeKernel(const float* __restrict__ x, const float* __restrict__ scale,
                                      const uint8_t* __restrict__ zp, uint8_t* __restrict__ y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float q = __fadd_rn(rintf(__fdiv_rn(x[i], *scale)), static_cast<float>(*zp));
    if (q != q) q = 0.f;
    y[i] = static_cast<uint8_t>(fminf(255.f, fmaxf(0.f, q)));
  }
}

// Per-tensor or per-axis parameters of x (axis attribute, default 1); blocked scales are not supported.
Expected<ParamIndex> MakeParamIndex(const Node& node, int64_t opset, const std::vector<DevTensor>& in) {
  GpuNodeContext ctx(node, opset, &in);
  if (ctx.attr_int("block_size", 0) != 0) return ctx.UnsupportedError("blocked quantization is not supported on the GPU");
  ParamIndex pi;
  const int64_t ns = in[1].numel();
  if (ns == 1) return pi;
  const int64_t rank = static_cast<int64_t>(in[0].dims.size());
  int64_t axis = ctx.attr_int("axis", 1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank || in[0].dims[axis] != ns || in[1].dims.size() != 1)
    return ctx.Error("per-axis scale must be 1-D of the axis size");
  pi.per_axis = true;
  pi.axis_n = ns;
  for (int64_t d = axis + 1; d < rank; ++d) pi.inner *= in[0].dims[d];
  return pi;
}

class QuantizeOp final : public GpuOp {
 public:
  QuantizeOp(const Node& n, int64_t opset) : node_(n), opset_(opset) {}
  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources&) override {
    GpuNodeContext ctx(node_, opset_, &in);
    if (in[1].dtype != DataType::kFloat) return ctx.UnsupportedError("only float32 scales are supported on the GPU");
    if (out[0].dtype != DataType::kInt8 && out[0].dtype != DataType::kUInt8)
      return ctx.UnsupportedError("only int8 / uint8 outputs are supported on the GPU");
    if (ctx.attr_int("saturate", 1) != 1 || ctx.attr_int("precision", 0) != 0)
      return ctx.UnsupportedError("saturate/precision attributes are not supported on the GPU");
    KILN_ASSIGN_OR_RETURN(pi_, MakeParamIndex(node_, opset_, in));
    return Status::Ok();
  }
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    const int64_t n = in[0].numel();
    if (n == 0) return Status::Ok();
    const bool has_zp = in.size() > 2 && Present(in[2]);
    const float* scale = static_cast<const float*>(in[1].data);
    auto launch = [&](auto q_tag, float lo, float hi) {
      using Q = decltype(q_tag);
      const Q* zp = has_zp ? static_cast<const Q*>(in[2].data) : nullptr;
      Q* y = static_cast<Q*>(out[0].data);
      if (in[0].dtype == DataType::kFloat16)
        QuantizeKernel<<<Blocks(n), kThreads, 0, stream>>>(static_cast<const __half*>(in[0].data), scale, zp, y, n,
                                                             pi_, lo, hi);
      else
        QuantizeKernel<<<Blocks(n), kThreads, 0, stream>>>(static_cast<const float*>(in[0].data), scale, zp, y, n,
                                                             pi_, lo, hi);
    };
    if (out[0].dtype == DataType::kInt8)
      launch(int8_t{}, -128.f, 127.f);
    else
      launch(uint8_t{}, 0.f, 255.f);
    KILN_CUDA_CHECK_LAUNCH("QuantizeKernel");
    return Status::Ok();
  }

 private:
  const Node& node_;
  int64_t opset_;
  ParamIndex pi_;
};

class DequantizeOp final : public GpuOp {
 public:
  DequantizeOp(const Node& n, int64_t opset) : node_(n), opset_(opset) {}
  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources&) override {
    GpuNodeContext ctx(node_, opset_, &in);
    if (in[1].dtype != DataType::kFloat || out[0].dtype != DataType::kFloat)
      return ctx.UnsupportedError("only float32 scales and outputs are supported on the GPU");
    if (in.size() > 2 && Present(in[2]) && in[2].dtype != in[0].dtype)
      return ctx.Error("zero point must have x's type");
    KILN_ASSIGN_OR_RETURN(pi_, MakeParamIndex(node_, opset_, in));
    return Status::Ok();
  }
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    const int64_t n = in[0].numel();
    if (n == 0) return Status::Ok();
    const bool has_zp = in.size() > 2 && Present(in[2]);
    const float* scale = static_cast<const float*>(in[1].data);
    float* y = static_cast<float*>(out[0].data);
    auto launch = [&](auto q_tag) {
      using Q = decltype(q_tag);
      DequantizeKernel<<<Blocks(n), kThreads, 0, stream>>>(static_cast<const Q*>(in[0].data), scale,
                                                           has_zp ? static_cast<const Q*>(in[2].data) : nullptr, y, n,
                                                           pi_);
    };
    if (in[0].dtype == DataType::kInt8)
      launch(int8_t{});
    else if (in[0].dtype == DataType::kUInt8)
      launch(uint8_t{});
    else
      launch(int32_t{});
    KILN_CUDA_CHECK_LAUNCH("DequantizeKernel");
    return Status::Ok();
  }

 private:
  const Node& node_;
  int64_t opset_;
  ParamIndex pi_;
};

class DynamicQuantizeOp final : public GpuOp {
 public:
  explicit DynamicQuantizeOp(const Node& n) : node_(n) {}
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    const int64_t n = in[0].numel();
    const float* x = static_cast<const float*>(in[0].data);
    float* scale = static_cast<float*>(out[1].data);
    uint8_t* zp = static_cast<uint8_t*>(out[2].data);
    MinMaxScaleKernel<<<1, kThreads, 0, stream>>>(x, n, scale, zp);
    KILN_CUDA_CHECK_LAUNCH("MinMaxScaleKernel");
    if (n == 0) return Status::Ok();
    DynamicQuantizeKernel<<<Blocks(n), kThreads, 0, stream>>>(x, scale, zp, static_cast<uint8_t*>(out[0].data), n);
    KILN_CUDA_CHECK_LAUNCH("DynamicQuantizeKernel");
    return Status::Ok();
  }

 private:
  const Node& node_;
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeQuantizeLinearOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(new QuantizeOp(*info.node, info.opset));
}

Expected<std::unique_ptr<GpuOp>> MakeDequantizeLinearOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(new DequantizeOp(*info.node, info.opset));
}

Expected<std::unique_ptr<GpuOp>> MakeDynamicQuantizeLinearOp(const GpuOpInfo& info) {
  if (info.node->num_outputs() != 3 || !info.node->output(1) || !info.node->output(2))
    return Unsupported(info.node->Label() + ": DynamicQuantizeLinear on the GPU needs all three outputs");
  return std::unique_ptr<GpuOp>(new DynamicQuantizeOp(*info.node));
}

}  // namespace kiln::cuda
