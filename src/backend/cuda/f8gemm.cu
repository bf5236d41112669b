// kiln's FP8 ops (ops/kiln_f8.cc) on the GPU (Hopper, sm_89+).
//
// kiln.QuantizeE4M3: x / scale in float, then the hardware conversion
// (__nv_cvt_float_to_fp8, __NV_SATFINITE: round to nearest even, saturate to
// ±448, NaN stays NaN), the bits of core/float8.h QuantizeE4M3 (the CPU
// reference's function). Eight elements a thread with 16-byte loads when the
// storage is aligned; one a thread otherwise.
//
// kiln.F8MatMul: cuBLASLt computes the row-major Y[rows, N] = A·Bᵀ as the
// column-major D[N, rows] = op_T(W stored [N, K] = column-major K×N) · (A
// stored [rows, K] = column-major K×rows): the "TN" form, the only one its FP8
// kernels take. A and B are CUDA_R_8F_E4M3, compute CUBLAS_COMPUTE_32F with
// FAST_ACCUM (the tensor cores' own accumulator, about 14 bits kept on Hopper
// even without it: see tests/op_cases/cuda_cases_kiln.cc; the periodic
// promotion to FP32 registers costs time and buys little at the K of inference
// layers), D float32 or float16 (attribute "to"). The per-tensor scales reach
// it as device pointers (CUBLASLT_MATMUL_DESC_A_SCALE_POINTER: b_scale,
// B_SCALE_POINTER: a_scale), so D = a_scale·b_scale·Σ + beta·C. The epilogue
// (ops/fused_epilogue.h): z is cuBLASLt's C with beta 1; with float16 output
// the bias and ReLU are cuBLASLt's BIAS / RELU_BIAS / RELU epilogue (bias
// float16, D's type). FP8 kernels with float32 output take only a BF16 bias,
// so there BiasActKernel adds the float32 bias and applies the ReLU after the
// product.
// Capability: K and N multiples of 16 (backend/gpu_caps.h
// Fp8GemmShapeSupported); build/fp8.cc leaves other products float, and
// Prepare refuses them naming the node. Speed follow-up: the quantization in
// its producer's kernel (kiln.Pointwise).
#include <cublasLt.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/lt_gemm.h"
#include "backend/cuda/node_context.h"
#include "backend/gpu_caps.h"

namespace kiln::cuda {
namespace {

constexpr int kThreads = 256;
constexpr size_t kA = 0, kAScale = 1, kB = 2, kBScale = 3, kBias = 4, kZ = 5;  // ops/kiln_f8.cc

__device__ inline float Load(const float* p, int64_t i) { return p[i]; }
__device__ inline float Load(const __half* p, int64_t i) { return __half2float(p[i]); }

__device__ inline uint8_t ToE4M3(float v, float s) {
  return __nv_cvt_float_to_fp8(v / s, __NV_SATFINITE, __NV_E4M3);
}

template <class T>
__global__ void QuantizeKernel(const T* x, const float* scale, uint8_t* q, int64_t n) {
  const float s = *scale;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    q[i] = ToE4M3(Load(x, i), s);
}

// Eight floats from 16-byte-aligned storage (two loads for float32, one for float16).
__device__ inline void Load8(const float* p, float v[8]) {
  const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
  v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}
__device__ inline void Load8(const __half* p, float v[8]) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const __half2* h = reinterpret_cast<const __half2*>(&raw);
  for (int j = 0; j < 4; ++j) {
    const float2 f = __half22float2(h[j]);
    v[2 * j] = f.x;
    v[2 * j + 1] = f.y;
  }
}

// n8 groups of eight: x 16-byte aligned, q 8-byte aligned.
template <class T>
__global__ void QuantizeKernel8(const T* x, const float* scale, uint2* q, int64_t n8) {
  const float s = *scale;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n8;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v[8];
    Load8(x + i * 8, v);
    uint32_t w[2] = {0, 0};
    for (int j = 0; j < 8; ++j) w[j / 4] |= static_cast<uint32_t>(ToE4M3(v[j], s)) << (8 * (j % 4));
    q[i] = make_uint2(w[0], w[1]);
  }
}

// y[r, c] = act(y[r, c] + bias[c]) for float32 output (see the file comment).
__global__ void BiasActKernel(float* y, const float* bias, int64_t n, int64_t total, bool relu) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = y[i];
    if (bias) v += bias[i % n];
    y[i] = relu && v < 0.f ? 0.f : v;  // NaN passes, as in the CPU reference's Relu
  }
}

int Blocks(int64_t work) {
  return static_cast<int>(std::min<int64_t>((work + kThreads - 1) / kThreads, 65535 * 8));
}

bool Aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

class QuantizeE4M3Op final : public GpuOp {
 public:
  QuantizeE4M3Op(const Node& n, int64_t opset) : node_(n), opset_(opset) {}

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out,
                 GpuResources&) override {
    GpuNodeContext ctx(node_, opset_, &in);
    if (in.size() != 2 || (in[0].dtype != DataType::kFloat && in[0].dtype != DataType::kFloat16) ||
        in[1].dtype != DataType::kFloat || in[1].numel() != 1 || out[0].dtype != DataType::kFloat8E4M3FN)
      return ctx.Error("expects x float32 or float16 and a float32 scalar scale, y float8e4m3fn");
    return Status::Ok();
  }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    const int64_t total = in[0].numel();
    if (total == 0) return Status::Ok();
    const float* scale = static_cast<const float*>(in[1].data);
    const bool half = in[0].dtype == DataType::kFloat16;
    const void* x = in[0].data;
    uint8_t* q = static_cast<uint8_t*>(out[0].data);
    if (total % 8 == 0 && Aligned(x, 16) && Aligned(q, 8)) {
      uint2* q8 = reinterpret_cast<uint2*>(q);
      if (half)
        QuantizeKernel8<<<Blocks(total / 8), kThreads, 0, stream>>>(static_cast<const __half*>(x), scale, q8,
                                                                    total / 8);
      else
        QuantizeKernel8<<<Blocks(total / 8), kThreads, 0, stream>>>(static_cast<const float*>(x), scale, q8,
                                                                    total / 8);
    } else if (half) {
      QuantizeKernel<<<Blocks(total), kThreads, 0, stream>>>(static_cast<const __half*>(x), scale, q, total);
    } else {
      QuantizeKernel<<<Blocks(total), kThreads, 0, stream>>>(static_cast<const float*>(x), scale, q, total);
    }
    KILN_CUDA_CHECK_LAUNCH("QuantizeKernel");
    return Status::Ok();
  }

 private:
  const Node& node_;
  int64_t opset_;
};

class F8MatMulOp final : public GpuOp {
 public:
  F8MatMulOp(const Node& n, int64_t opset) : node_(n), opset_(opset) {}
  ~F8MatMulOp() override { Reset(); }

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources& res) override {
    GpuNodeContext ctx(node_, opset_, &in);
    if (in.size() < 4 || in.size() > 6) return ctx.Error("expects a, a_scale, b, b_scale, bias?, z?");
    const auto& a = in[kA].dims;
    const auto& b = in[kB].dims;
    if (in[kA].dtype != DataType::kFloat8E4M3FN || in[kB].dtype != DataType::kFloat8E4M3FN || b.size() != 2 ||
        a.empty() || a.back() != b[1])
      return ctx.Error("expects a float8e4m3fn [..., K] and b float8e4m3fn [N, K]");
    if (in[kAScale].numel() != 1 || in[kBScale].numel() != 1) return ctx.Error("a_scale and b_scale must be scalars");
    if (out[0].dtype != DataType::kFloat && out[0].dtype != DataType::kFloat16)
      return ctx.Error("y must be float32 or float16");
    n_ = b[0];
    k_ = b[1];
    rows_ = k_ > 0 ? in[kA].numel() / k_ : 0;
    if (!Fp8GemmShapeSupported(k_, n_))
      return ctx.UnsupportedError("cuBLASLt FP8 needs K and N multiples of " + std::to_string(kFp8GemmAlign) +
                                  ", got K " + std::to_string(k_) + ", N " + std::to_string(n_));
    half_ = out[0].dtype == DataType::kFloat16;
    const Attribute* act = node_.attr("activation");
    const std::string act_name = act ? act->s : "";
    if (!act_name.empty() && act_name != "Relu") return ctx.UnsupportedError("activation '" + act_name + "'");
    relu_ = act_name == "Relu";
    has_bias_ = in.size() > kBias && Present(in[kBias]);
    if (has_bias_ && (in[kBias].dtype != out[0].dtype || in[kBias].dims != std::vector<int64_t>{n_}))
      return ctx.Error("bias " + DimsToString(in[kBias].dims) + " must be [N] = [" + std::to_string(n_) +
                       "] of y's type");
    has_z_ = in.size() > kZ && Present(in[kZ]);
    if (has_z_ && (in[kZ].dtype != out[0].dtype || in[kZ].dims != out[0].dims))
      return ctx.Error("z " + DimsToString(in[kZ].dims) + " must have y's type and shape " +
                       DimsToString(out[0].dims));
    if (rows_ == 0) return Status::Ok();
    return PrepareLt(res).WithPrefix(node_.Label());
  }

  size_t WorkspaceBytes() const override { return kLtWorkspace; }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void* ws, GpuResources& res,
                 cudaStream_t stream) override {
    if (out[0].numel() == 0) return Status::Ok();
    const void* aq = in[kA].data;
    // The scale and bias pointers are the node's inputs: set per run (the arena may move them).
    const void* w_scale = in[kBScale].data;
    KILN_LT_RETURN_IF_ERROR(
        cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &w_scale, sizeof(w_scale)));
    const void* x_scale = in[kAScale].data;
    KILN_LT_RETURN_IF_ERROR(
        cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &x_scale, sizeof(x_scale)));
    if (has_bias_ && half_) {
      const void* bias = in[kBias].data;
      KILN_LT_RETURN_IF_ERROR(
          cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    }
    const float alpha = 1.f, beta = has_z_ ? 1.f : 0.f;
    const void* c = has_z_ ? in[kZ].data : out[0].data;
    KILN_RETURN_IF_ERROR(
        LtStatus(cublasLtMatmul(static_cast<cublasLtHandle_t>(res.cublaslt), desc_, &alpha, in[kB].data, a_,
                                aq, b_, &beta, c, d_, out[0].data, d_, &algo_, ws, kLtWorkspace, stream),
                 "cublasLtMatmul (fp8)")
            .WithPrefix(node_.Label()));
    if (half_ || (!has_bias_ && !relu_)) return Status::Ok();
    const int64_t size = rows_ * n_;
    BiasActKernel<<<Blocks(size), kThreads, 0, stream>>>(
        static_cast<float*>(out[0].data), has_bias_ ? static_cast<const float*>(in[kBias].data) : nullptr, n_,
        size, relu_);
    KILN_CUDA_CHECK_LAUNCH("BiasActKernel");
    return Status::Ok();
  }

 private:
  void Reset() { LtDestroy(&desc_, {&a_, &b_, &d_}); }

  Status PrepareLt(GpuResources& res) {
    Reset();
    KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&desc_, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t t = CUBLAS_OP_T, n = CUBLAS_OP_N;
    KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof(t)));
    KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &n, sizeof(n)));
    const int8_t fast = 1;
    KILN_LT_RETURN_IF_ERROR(
        cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof(fast)));
    const cudaDataType_t dt = half_ ? CUDA_R_16F : CUDA_R_32F;
    if (half_ && (has_bias_ || relu_)) {
      const cublasLtEpilogue_t epi = !relu_      ? CUBLASLT_EPILOGUE_BIAS
                                     : has_bias_ ? CUBLASLT_EPILOGUE_RELU_BIAS
                                                 : CUBLASLT_EPILOGUE_RELU;
      KILN_LT_RETURN_IF_ERROR(
          cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
      if (has_bias_)
        KILN_LT_RETURN_IF_ERROR(
            cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &dt, sizeof(dt)));
    }
    KILN_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&a_, CUDA_R_8F_E4M3, k_, n_, k_));
    KILN_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&b_, CUDA_R_8F_E4M3, k_, rows_, k_));
    KILN_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&d_, dt, n_, rows_, n_));
    return LtChooseAlgo(res, desc_, a_, b_, d_, d_, "FP8", &algo_, node_.name);
  }

  const Node& node_;
  int64_t opset_;
  int64_t n_ = 0, k_ = 0, rows_ = 0;
  bool half_ = false;
  bool relu_ = false, has_bias_ = false, has_z_ = false;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, d_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeQuantizeE4M3Op(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(new QuantizeE4M3Op(*info.node, info.opset));
}

Expected<std::unique_ptr<GpuOp>> MakeF8MatMulOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(new F8MatMulOp(*info.node, info.opset));
}

}  // namespace kiln::cuda
