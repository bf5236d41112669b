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
// An E4M3 y (passes/f8_epilogue.cc: the next product's quantization taken in)
// is cuBLASLt's D of type CUDA_R_8F_E4M3 with D_SCALE_POINTER = y_scale_inv,
// C float16 and null (beta 0), the epilogue (BIAS, RELU, GELU: the tanh form,
// "GeluTanh") in float16; where cuBLASLt has no kernel for that, D is float16
// in the workspace and the quantize kernel (times y_scale_inv) converts it.
// Capability: K and N multiples of 16 (backend/gpu_caps.h
// Fp8GemmShapeSupported); build/fp8.cc leaves other products float, and
// Prepare refuses them naming the node. Speed follow-up: the quantization in
// its producer's kernel (kiln.Pointwise, or this epilogue).
#include <cublasLt.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/e4m3.cuh"
#include "backend/cuda/lt_gemm.h"
#include "backend/cuda/node_context.h"
#include "backend/gpu_caps.h"

namespace kiln::cuda {
namespace {

constexpr int kThreads = 256;
constexpr size_t kA = 0, kAScale = 1, kB = 2, kBScale = 3, kBias = 4, kZ = 5,
                 kYScaleInv = 6;  // ops/kiln_f8.cc

__device__ inline float Load(const float* p, int64_t i) { return p[i]; }
__device__ inline float Load(const __half* p, int64_t i) { return __half2float(p[i]); }

// E4M3(v / s), or with kInverse E4M3(v · s) (s the reciprocal scale: QuantizeE4M3 of v · s at scale 1).
template <bool kInverse>
__device__ inline uint8_t Code(float v, float s) {
  return kInverse ? ToE4M3(v * s, 1.f) : ToE4M3(v, s);
}

template <class T, bool kInverse>
__global__ void QuantizeKernel(const T* x, const float* scale, uint8_t* q, int64_t n) {
  const float s = *scale;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    q[i] = Code<kInverse>(Load(x, i), s);
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
template <class T, bool kInverse>
__global__ void QuantizeKernel8(const T* x, const float* scale, uint2* q, int64_t n8) {
  const float s = *scale;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n8;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v[8];
    Load8(x + i * 8, v);
    uint32_t w[2] = {0, 0};
    for (int j = 0; j < 8; ++j) w[j / 4] |= static_cast<uint32_t>(Code<kInverse>(v[j], s)) << (8 * (j % 4));
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

// q = E4M3(x / *scale), or with kInverse E4M3(x · *scale) (an F8MatMul's E4M3 y staged as float16, scaled
// by y_scale_inv): eight elements a thread when n and the pointers allow (16-byte loads), else one.
template <class T, bool kInverse>
void LaunchQuantize(const T* x, const float* scale, uint8_t* q, int64_t n, cudaStream_t stream) {
  if (n % 8 == 0 && Aligned(x, 16) && Aligned(q, 8))
    QuantizeKernel8<T, kInverse>
        <<<Blocks(n / 8), kThreads, 0, stream>>>(x, scale, reinterpret_cast<uint2*>(q), n / 8);
  else
    QuantizeKernel<T, kInverse><<<Blocks(n), kThreads, 0, stream>>>(x, scale, q, n);
}

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
    uint8_t* q = static_cast<uint8_t*>(out[0].data);
    if (in[0].dtype == DataType::kFloat16)
      LaunchQuantize<__half, false>(static_cast<const __half*>(in[0].data), scale, q, total, stream);
    else
      LaunchQuantize<float, false>(static_cast<const float*>(in[0].data), scale, q, total, stream);
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
    if (in.size() < 4 || in.size() > 7)
      return ctx.Error("expects a, a_scale, b, b_scale, bias?, z?, y_scale_inv?");
    const auto& a = in[kA].dims;
    const auto& b = in[kB].dims;
    if (in[kA].dtype != DataType::kFloat8E4M3FN || in[kB].dtype != DataType::kFloat8E4M3FN || b.size() != 2 ||
        a.empty() || a.back() != b[1])
      return ctx.Error("expects a float8e4m3fn [..., K] and b float8e4m3fn [N, K]");
    if (in[kAScale].numel() != 1 || in[kBScale].numel() != 1) return ctx.Error("a_scale and b_scale must be scalars");
    const DataType yt = out[0].dtype;
    if (yt != DataType::kFloat && yt != DataType::kFloat16 && yt != DataType::kFloat8E4M3FN)
      return ctx.Error("y must be float32, float16 or float8e4m3fn");
    e4m3_ = yt == DataType::kFloat8E4M3FN;
    const bool has_inv = in.size() > kYScaleInv && Present(in[kYScaleInv]);
    if (e4m3_ != has_inv ||
        (has_inv && (in[kYScaleInv].dtype != DataType::kFloat || in[kYScaleInv].numel() != 1)))
      return ctx.Error("a float8e4m3fn y needs y_scale_inv, a float32 scalar (and only it does)");
    n_ = b[0];
    k_ = b[1];
    rows_ = k_ > 0 ? in[kA].numel() / k_ : 0;
    if (!Fp8GemmShapeSupported(k_, n_))
      return ctx.UnsupportedError("cuBLASLt FP8 needs K and N multiples of " + std::to_string(kFp8GemmAlign) +
                                  ", got K " + std::to_string(k_) + ", N " + std::to_string(n_));
    half_ = yt != DataType::kFloat;  // the epilogue's type: float16 for an E4M3 y
    const DataType et = half_ ? DataType::kFloat16 : DataType::kFloat;
    const Attribute* act = node_.attr("activation");
    const std::string act_name = act ? act->s : "";
    if (!act_name.empty() && act_name != "Relu" && !(act_name == "GeluTanh" && half_))
      return ctx.UnsupportedError("activation '" + act_name + "'" + (half_ ? "" : " with a float32 output"));
    relu_ = act_name == "Relu";
    gelu_ = act_name == "GeluTanh";
    has_bias_ = in.size() > kBias && Present(in[kBias]);
    if (has_bias_ && (in[kBias].dtype != et || in[kBias].dims != std::vector<int64_t>{n_}))
      return ctx.Error("bias " + DimsToString(in[kBias].dims) + " must be [N] = [" + std::to_string(n_) +
                       "] of " + std::string(DataTypeName(et)));
    has_z_ = in.size() > kZ && Present(in[kZ]);
    if (has_z_ && (e4m3_ || in[kZ].dtype != yt || in[kZ].dims != out[0].dims))
      return ctx.Error("z " + DimsToString(in[kZ].dims) + " must have y's type and shape " +
                       DimsToString(out[0].dims) + " (and y must not be E4M3)");
    staged_ = false;
    if (rows_ == 0) return Status::Ok();
    // An E4M3 y straight from cuBLASLt's epilogue (D scale = y_scale_inv); where cuBLASLt has no such kernel,
    // a float16 D in the workspace and one quantizing pass over it.
    Status direct = PrepareLt(res);
    if (direct.ok() || !e4m3_) return direct.WithPrefix(node_.Label());
    staged_ = true;
    return PrepareLt(res).WithPrefix(node_.Label() + " (E4M3 output through float16: " + direct.message() +
                                     ")");
  }

  size_t WorkspaceBytes() const override { return kLtWorkspace + (staged_ ? StageBytes() : 0); }

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
    const void* y_inv = e4m3_ ? in[kYScaleInv].data : nullptr;
    if (e4m3_ && !staged_)
      KILN_LT_RETURN_IF_ERROR(
          cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_D_SCALE_POINTER, &y_inv, sizeof(y_inv)));
    if (has_bias_ && half_) {
      const void* bias = in[kBias].data;
      KILN_LT_RETURN_IF_ERROR(
          cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    }
    void* stage = static_cast<char*>(ws) + kLtWorkspace;
    void* d = staged_ ? stage : out[0].data;
    const float alpha = 1.f, beta = has_z_ ? 1.f : 0.f;
    // An E4M3 D takes no C (beta 0; cuBLASLt wants its pointer null).
    const void* c = has_z_ ? in[kZ].data : (e4m3_ && !staged_) ? nullptr : d;
    KILN_RETURN_IF_ERROR(
        LtStatus(cublasLtMatmul(static_cast<cublasLtHandle_t>(res.cublaslt), desc_, &alpha, in[kB].data, a_,
                                aq, b_, &beta, c, c_ ? c_ : d_, d, d_, &algo_, ws, kLtWorkspace, stream),
                 "cublasLtMatmul (fp8)")
            .WithPrefix(node_.Label()));
    const int64_t size = rows_ * n_;
    if (staged_) {
      LaunchQuantize<__half, true>(static_cast<const __half*>(stage), static_cast<const float*>(y_inv),
                                   static_cast<uint8_t*>(out[0].data), size, stream);
      KILN_CUDA_CHECK_LAUNCH("QuantizeKernel (staged E4M3 y)");
      return Status::Ok();
    }
    if (half_ || (!has_bias_ && !relu_)) return Status::Ok();
    BiasActKernel<<<Blocks(size), kThreads, 0, stream>>>(
        static_cast<float*>(out[0].data), has_bias_ ? static_cast<const float*>(in[kBias].data) : nullptr, n_,
        size, relu_);
    KILN_CUDA_CHECK_LAUNCH("BiasActKernel");
    return Status::Ok();
  }

 private:
  void Reset() { LtDestroy(&desc_, {&a_, &b_, &c_, &d_}); }

  // The float16 staging buffer of an E4M3 y, after cuBLASLt's workspace (256-byte aligned).
  size_t StageBytes() const { return (static_cast<size_t>(rows_ * n_) * sizeof(__half) + 255) / 256 * 256; }

  Status PrepareLt(GpuResources& res) {
    Reset();
    KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&desc_, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t t = CUBLAS_OP_T, n = CUBLAS_OP_N;
    KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof(t)));
    KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &n, sizeof(n)));
    const int8_t fast = 1;
    KILN_LT_RETURN_IF_ERROR(
        cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof(fast)));
    const cudaDataType_t et = half_ ? CUDA_R_16F : CUDA_R_32F;  // the epilogue's (and C's) type
    if (half_ && (has_bias_ || relu_ || gelu_)) {
      const cublasLtEpilogue_t epi =
          gelu_   ? (has_bias_ ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU)
          : relu_ ? (has_bias_ ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU)
                  : CUBLASLT_EPILOGUE_BIAS;
      KILN_LT_RETURN_IF_ERROR(
          cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
      if (has_bias_)
        KILN_LT_RETURN_IF_ERROR(
            cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &et, sizeof(et)));
    }
    KILN_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&a_, CUDA_R_8F_E4M3, k_, n_, k_));
    KILN_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&b_, CUDA_R_8F_E4M3, k_, rows_, k_));
    const bool direct_e4m3 = e4m3_ && !staged_;
    KILN_LT_RETURN_IF_ERROR(
        cublasLtMatrixLayoutCreate(&d_, direct_e4m3 ? CUDA_R_8F_E4M3 : et, n_, rows_, n_));
    if (direct_e4m3) KILN_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&c_, et, n_, rows_, n_));
    return LtChooseAlgo(res, desc_, a_, b_, c_ ? c_ : d_, d_, direct_e4m3 ? "FP8 (E4M3 output)" : "FP8",
                        &algo_, node_.name);
  }

  const Node& node_;
  int64_t opset_;
  int64_t n_ = 0, k_ = 0, rows_ = 0;
  bool half_ = false, e4m3_ = false, staged_ = false;
  bool relu_ = false, gelu_ = false, has_bias_ = false, has_z_ = false;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr, d_ = nullptr;
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
