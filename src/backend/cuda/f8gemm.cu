// kiln.F8MatMul (ops/kiln_f8.cc) on the GPU: cuBLASLt's FP8 tensor-core path
// (Hopper, sm_89+).
//
//   1. a [rows, K] (float32 or float16) is quantized to E4M3 into the
//      workspace by QuantizeKernel: a / a_scale in float, then the hardware
//      conversion (__nv_cvt_float_to_fp8, __NV_SATFINITE: round to nearest
//      even, saturate to ±448, NaN stays NaN), the bits of core/float8.h
//      QuantizeE4M3 (the CPU reference's function; its double-precision
//      encoder ran here per element until 2026-12-06);
//   2. cuBLASLt computes the row-major Y[rows, N] = A·Bᵀ as the column-major
//      D[N, rows] = op_T(W stored [N, K] = column-major K×N) · (A_q stored
//      [rows, K] = column-major K×rows): the "TN" form, the only one its FP8
//      kernels take. A and B are CUDA_R_8F_E4M3, compute CUBLAS_COMPUTE_32F
//      (FP32 accumulation, no fast accumulation), D float32 or float16 (a's
//      type). The per-tensor scales reach it as device pointers
//      (CUBLASLT_MATMUL_DESC_A_SCALE_POINTER: b_scale, B_SCALE_POINTER:
//      a_scale), so D = a_scale·b_scale·Σ; alpha 1, beta 0.
// Capability: K and N multiples of 16 (backend/gpu_caps.h
// Fp8GemmShapeSupported); build/fp8.cc leaves other products float, and
// Prepare refuses them naming the node. Speed follow-ups once this runs on a
// GPU: fusing the quantization into the producer's epilogue, and the
// timed algorithm choice of lt_gemm.h.
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
constexpr size_t kAlign = 256;
constexpr size_t kA = 0, kAScale = 1, kB = 2, kBScale = 3;  // ops/kiln_f8.cc

size_t RoundUp(size_t b) { return (b + kAlign - 1) / kAlign * kAlign; }

__device__ inline float Load(const float* p, int64_t i) { return p[i]; }
__device__ inline float Load(const __half* p, int64_t i) { return __half2float(p[i]); }

template <class T>
__global__ void QuantizeKernel(const T* x, const float* scale, uint8_t* q, int64_t n) {
  const float s = *scale;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    q[i] = __nv_cvt_float_to_fp8(Load(x, i) / s, __NV_SATFINITE, __NV_E4M3);
}

class F8MatMulOp final : public GpuOp {
 public:
  F8MatMulOp(const Node& n, int64_t opset) : node_(n), opset_(opset) {}
  ~F8MatMulOp() override { Reset(); }

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources& res) override {
    GpuNodeContext ctx(node_, opset_, &in);
    if (in.size() != 4) return ctx.Error("expects a, a_scale, b, b_scale");
    const auto& a = in[kA].dims;
    const auto& b = in[kB].dims;
    if (in[kA].dtype != DataType::kFloat && in[kA].dtype != DataType::kFloat16)
      return ctx.Error("a must be float32 or float16");
    if (in[kB].dtype != DataType::kFloat8E4M3FN || b.size() != 2 || a.empty() || a.back() != b[1])
      return ctx.Error("expects a [..., K] and b float8e4m3fn [N, K]");
    if (in[kAScale].numel() != 1 || in[kBScale].numel() != 1) return ctx.Error("a_scale and b_scale must be scalars");
    if (out[0].dtype != in[kA].dtype) return ctx.Error("y must have a's type");
    n_ = b[0];
    k_ = b[1];
    rows_ = k_ > 0 ? in[kA].numel() / k_ : 0;
    if (!Fp8GemmShapeSupported(k_, n_))
      return ctx.UnsupportedError("cuBLASLt FP8 needs K and N multiples of " + std::to_string(kFp8GemmAlign) +
                                  ", got K " + std::to_string(k_) + ", N " + std::to_string(n_));
    half_ = in[kA].dtype == DataType::kFloat16;
    if (rows_ == 0) return Status::Ok();
    return PrepareLt(res).WithPrefix(node_.Label());
  }

  size_t WorkspaceBytes() const override { return RoundUp(static_cast<size_t>(rows_ * k_)) + kLtWorkspace; }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void* ws, GpuResources& res,
                 cudaStream_t stream) override {
    if (out[0].numel() == 0) return Status::Ok();
    uint8_t* aq = static_cast<uint8_t*>(ws);
    void* lt_ws = static_cast<char*>(ws) + RoundUp(static_cast<size_t>(rows_ * k_));
    const int64_t total = rows_ * k_;
    const int blocks = static_cast<int>(std::min<int64_t>((total + kThreads - 1) / kThreads, 65535 * 8));
    const float* a_scale = static_cast<const float*>(in[kAScale].data);
    if (half_)
      QuantizeKernel<<<blocks, kThreads, 0, stream>>>(static_cast<const __half*>(in[kA].data), a_scale, aq, total);
    else
      QuantizeKernel<<<blocks, kThreads, 0, stream>>>(static_cast<const float*>(in[kA].data), a_scale, aq, total);
    KILN_CUDA_CHECK_LAUNCH("QuantizeKernel");
    // The scale pointers are the node's inputs: set per run (the arena may move them).
    const void* w_scale = in[kBScale].data;
    KILN_LT_RETURN_IF_ERROR(
        cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &w_scale, sizeof(w_scale)));
    const void* x_scale = in[kAScale].data;
    KILN_LT_RETURN_IF_ERROR(
        cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &x_scale, sizeof(x_scale)));
    const float alpha = 1.f, beta = 0.f;
    return LtStatus(cublasLtMatmul(static_cast<cublasLtHandle_t>(res.cublaslt), desc_, &alpha, in[kB].data, a_, aq,
                                   b_, &beta, out[0].data, d_, out[0].data, d_, &algo_, lt_ws, kLtWorkspace, stream),
                    "cublasLtMatmul (fp8)")
        .WithPrefix(node_.Label());
  }

 private:
  void Reset() { LtDestroy(&desc_, {&a_, &b_, &d_}); }

  Status PrepareLt(GpuResources& res) {
    Reset();
    KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&desc_, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t t = CUBLAS_OP_T, n = CUBLAS_OP_N;
    KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof(t)));
    KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &n, sizeof(n)));
    const cudaDataType_t dt = half_ ? CUDA_R_16F : CUDA_R_32F;
    KILN_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&a_, CUDA_R_8F_E4M3, k_, n_, k_));
    KILN_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&b_, CUDA_R_8F_E4M3, k_, rows_, k_));
    KILN_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&d_, dt, n_, rows_, n_));
    return LtHeuristicAlgo(res, desc_, a_, b_, d_, "FP8", &algo_);
  }

  const Node& node_;
  int64_t opset_;
  int64_t n_ = 0, k_ = 0, rows_ = 0;
  bool half_ = false;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, d_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeF8MatMulOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(new F8MatMulOp(*info.node, info.opset));
}

}  // namespace kiln::cuda
