// kiln.QMatMul and kiln.QConv (ops/kiln_quant.cc) on the GPU: int8 inputs,
// int32 accumulation, FP32 scale epilogue (float output, or requantized to
// int8/uint8), per-tensor or per-channel weight scales.
//
// The product runs on cuBLASLt's INT8 tensor-core path (CUBLAS_COMPUTE_32I,
// int8 A/B, int32 D; its IMMA kernels want the "TN" form, K and the output
// channels multiples of 4, and zero zero points):
//   QMatMul  row-major Y[M, N] = A[M, K] · B[K, N]: column-major Yᵀ = Bᵀ·Aᵀ with
//            Bᵀ stored [N, K] (transposed into the workspace each run: B is a
//            constant, K·N bytes) so that the first operand is op T.
//   QConv    2-D, group 1: im2col of x into the workspace, col[P, C·kh·kw]
//            (P = N·OH·OW), then Yᵀ[M, P] = W[M, K] · colᵀ (W as stored is
//            op T, col is op N), int32 [P, M] (NHWC order).
//   QConvNhwc channels-last (passes/layout_nhwc.cc): x [N, H, W, C], w [M, R, S, C]; a 1x1 stride-1
//            convolution is the product of x itself ([P, C]) with W, other ones read an NHWC im2col
//            (rows of R·S·C bytes copied 16 or 4 bytes at a time); int32 [P, M] is y's own layout.
// Shapes the INT8 path cannot take (K or M not a multiple of 4, groups,
// non-zero zero points: uint8 activations with zero point 128) run kiln's own
// int32 kernel (one thread per output element): correct, not fast.
// The epilogue kernel then computes, per element, act(float(acc + bias[c]) · (x_scale·w_scale[c] [/
// y_scale])), or with a residual z or a Clip act(float(acc + bias[c]) · x_scale·w_scale[c] + z) [/ y_scale],
// in the same float operations as the CPU reference (ops/kiln_quant.cc), so that outputs match it bit for
// bit, and writes NCHW / row-major (z in y's layout), float32, float16 or requantized. Fusing the epilogue
// into cuBLASLt (alpha vector, int8 D) and cuDNN's INT8 convolution (NHWC int8x4) are the speed follow-ups
// once this runs on a GPU.
#include <cublasLt.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "backend/cuda/conv2d_geom.h"
#include "backend/cuda/conv_graph.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/lt_gemm.h"
#include "backend/cuda/node_context.h"
#include "backend/gpu_caps.h"
#include "ops/quant_slots.h"

namespace kiln::cuda {
namespace {

constexpr int kThreads = 256;
constexpr size_t kAlign = 256;

int Blocks(int64_t n) { return static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, 65535 * 8)); }
size_t RoundUp(size_t b) { return (b + kAlign - 1) / kAlign * kAlign; }

using namespace quant_slots;  // NOLINT: the INT8 layers' input slots (ops/quant_slots.h)

// The residual's element type in the epilogue.
enum class ZType : int { kNone, kFloat, kHalf, kInt8, kUInt8 };
// The epilogue's activation (ops/kiln_quant.cc QuantActivation).
enum class QAct : int { kNone, kRelu, kClip, kSwish };

template <class T>
__device__ inline int32_t Int(const void* p, int64_t i) {
  return static_cast<int32_t>(static_cast<const T*>(p)[i]);
}

__device__ inline int32_t Q8(const void* p, int64_t i, bool is_signed) {
  return is_signed ? Int<int8_t>(p, i) : Int<uint8_t>(p, i);
}

struct Quant {
  const float* x_scale = nullptr;
  const float* w_scale = nullptr;
  int w_scales = 1;  // 1 or channels
  const int32_t* bias = nullptr;
  const float* y_scale = nullptr;
  int32_t x_zp = 0;
  int32_t y_zp = 0;
  bool x_signed = true, w_signed = true;
  // The epilogue's tail: residual, activation; plain: 1 / y_scale folded into the multiplier (no z, no Clip).
  const void* z = nullptr;
  ZType z_type = ZType::kNone;
  const float* z_scale = nullptr;
  int32_t z_zp = 0;
  QAct act = QAct::kNone;
  float act_min = 0.f, act_max = 0.f;
  bool plain = true;
};

__device__ inline float Residual(const Quant& q, int64_t i) {
  switch (q.z_type) {
    case ZType::kFloat:
      return static_cast<const float*>(q.z)[i];
    case ZType::kHalf:
      return __half2float(static_cast<const __half*>(q.z)[i]);
    case ZType::kInt8:
    case ZType::kUInt8:
      return __fmul_rn(static_cast<float>(Q8(q.z, i, q.z_type == ZType::kInt8) - q.z_zp), *q.z_scale);
    default:
      return 0.f;
  }
}

__device__ inline float ApplyAct(const Quant& q, float v) {
  if (q.act == QAct::kRelu) return !(v > 0.f) && v == v ? 0.f : v;
  if (q.act == QAct::kClip) {
    if (v < q.act_min) v = q.act_min;
    if (v > q.act_max) v = q.act_max;
  }
  if (q.act ==
      QAct::kSwish) {  // the CPU reference's Sigmoid, then Mul (expf within an ulp or two of std::exp)
    float sig;
    if (v >= 0.f) {
      sig = __fdiv_rn(1.f, __fadd_rn(1.f, expf(-v)));
    } else {
      const float e = expf(v);
      sig = __fdiv_rn(e, __fadd_rn(1.f, e));
    }
    v = __fmul_rn(v, sig);
  }
  return v;
}

// row-major [K, N] int8 → [N, K].
__global__ void TransposeKernel(const int8_t* __restrict__ b, int8_t* __restrict__ bt, int64_t k, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < k * n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t kk = i / n, j = i % n;
    bt[j * k + kk] = b[i];
  }
}

// col[p, (c·kh + i)·kw + j] for p = (b·OH + y)·OW + x; padding reads zero.
// I: the index type, int32_t when every index fits (int64 divisions cost
// several times the byte copied: 12.7 of 16 ms of INT8 ResNet-50 at batch 32
// on an H200 went to these kernels and the epilogue's).
template <class I>
__global__ void Im2ColKernel(const int8_t* __restrict__ x, int8_t* __restrict__ col, Conv2d g64) {
  const I c = I(g64.c), h = I(g64.h), w = I(g64.w), oh = I(g64.oh), ow = I(g64.ow), kh = I(g64.kh), kw = I(g64.kw);
  const I kdim = c * kh * kw, total = I(g64.n) * oh * ow * kdim;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    const I i = I(k);
    const I p = i / kdim, r = i % kdim;
    const I ch = r / (kh * kw), ki = (r / kw) % kh, kj = r % kw;
    const I b = p / (oh * ow), oy = (p / ow) % oh, ox = p % ow;
    const I iy = oy * I(g64.sh) - I(g64.ph) + ki * I(g64.dh), ix = ox * I(g64.sw) - I(g64.pw) + kj * I(g64.dw);
    col[i] = iy >= 0 && iy < h && ix >= 0 && ix < w ? x[((b * c + ch) * h + iy) * w + ix] : int8_t(0);
  }
}

// The fallback: acc[p, m] (P-major, like the cuBLASLt path) of the direct
// convolution with zero points and groups.
__global__ void DirectConvKernel(const void* __restrict__ x, const void* __restrict__ w, const void* w_zp,
                                 int w_zps, int32_t* __restrict__ acc, Conv2d g, Quant q) {
  const int64_t total = g.n * g.oh * g.ow * g.m;
  const int64_t cg = g.c / g.group, mg = g.m / g.group;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = i / g.m, m = i % g.m;
    const int64_t b = p / (g.oh * g.ow), oy = (p / g.ow) % g.oh, ox = p % g.ow;
    const int64_t grp = m / mg;
    const int32_t wz = w_zp ? Q8(w_zp, w_zps == 1 ? 0 : m, q.w_signed) : 0;
    int32_t s = 0;
    for (int64_t c = 0; c < cg; ++c)
      for (int64_t ki = 0; ki < g.kh; ++ki)
        for (int64_t kj = 0; kj < g.kw; ++kj) {
          const int64_t iy = oy * g.sh - g.ph + ki * g.dh, ix = ox * g.sw - g.pw + kj * g.dw;
          if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;  // padding: x - zp = 0
          const int32_t xv = Q8(x, ((b * g.c + grp * cg + c) * g.h + iy) * g.w + ix, q.x_signed) - q.x_zp;
          const int32_t wv = Q8(w, ((m * cg + c) * g.kh + ki) * g.kw + kj, q.w_signed) - wz;
          s += xv * wv;
        }
    acc[i] = s;
  }
}

// NHWC im2col for group 1: col[p, (ki·kw + kj)·C + c] = x[b, iy, ix, c] (zero in the padding), in chunks of
// Chunk (int4: 16 bytes, int: 4) along C, which Chunk's size divides.
template <class I, class Chunk>
__global__ void Im2ColNhwcKernel(const int8_t* __restrict__ x, int8_t* __restrict__ col, Conv2d g64) {
  constexpr I kBytes = I(sizeof(Chunk));
  const I cc = I(g64.c) / kBytes, h = I(g64.h), w = I(g64.w), oh = I(g64.oh), ow = I(g64.ow), kw = I(g64.kw);
  const I row = I(g64.kh) * kw * cc, total = I(g64.n) * oh * ow * row;
  const Chunk* xs = reinterpret_cast<const Chunk*>(x);
  Chunk* cols = reinterpret_cast<Chunk*>(col);
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < total;
       k += int64_t(gridDim.x) * blockDim.x) {
    const I i = I(k);
    const I p = i / row, r = i % row;
    const I c = r % cc, kk = r / cc, kj = kk % kw, ki = kk / kw;
    const I b = p / (oh * ow), oy = (p / ow) % oh, ox = p % ow;
    const I iy = oy * I(g64.sh) - I(g64.ph) + ki * I(g64.dh),
            ix = ox * I(g64.sw) - I(g64.pw) + kj * I(g64.dw);
    Chunk v{};
    if (iy >= 0 && iy < h && ix >= 0 && ix < w) v = xs[((b * h + iy) * w + ix) * cc + c];
    cols[i] = v;
  }
}

// The NHWC fallback: acc[p, m] of the direct convolution with zero points and groups; x [N, H, W, C],
// w [M, kh, kw, C/group].
__global__ void DirectConvNhwcKernel(const void* __restrict__ x, const void* __restrict__ w, const void* w_zp,
                                     int w_zps, int32_t* __restrict__ acc, Conv2d g, Quant q) {
  const int64_t total = g.n * g.oh * g.ow * g.m;
  const int64_t cg = g.c / g.group, mg = g.m / g.group;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = i / g.m, m = i % g.m;
    const int64_t b = p / (g.oh * g.ow), oy = (p / g.ow) % g.oh, ox = p % g.ow;
    const int64_t grp = m / mg;
    const int32_t wz = w_zp ? Q8(w_zp, w_zps == 1 ? 0 : m, q.w_signed) : 0;
    int32_t s = 0;
    for (int64_t ki = 0; ki < g.kh; ++ki)
      for (int64_t kj = 0; kj < g.kw; ++kj) {
        const int64_t iy = oy * g.sh - g.ph + ki * g.dh, ix = ox * g.sw - g.pw + kj * g.dw;
        if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;  // padding: x - zp = 0
        const int64_t xrow = ((b * g.h + iy) * g.w + ix) * g.c + grp * cg,
                      wrow = ((m * g.kh + ki) * g.kw + kj) * cg;
        for (int64_t c = 0; c < cg; ++c)
          s += (Q8(x, xrow + c, q.x_signed) - q.x_zp) * (Q8(w, wrow + c, q.w_signed) - wz);
      }
    acc[i] = s;
  }
}

// The fallback GEMM: acc[r, j] = Σ (a[r, k] - a_zp)(b[k, j] - b_zp[j]).
__global__ void DirectGemmKernel(const void* __restrict__ a, const void* __restrict__ b, const void* b_zp, int b_zps,
                                 int32_t* __restrict__ acc, int64_t rows, int64_t k, int64_t n, Quant q) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < rows * n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / n, j = i % n;
    const int32_t bz = b_zp ? Q8(b_zp, b_zps == 1 ? 0 : j, q.w_signed) : 0;
    int32_t s = 0;
    for (int64_t kk = 0; kk < k; ++kk) s += (Q8(a, r * k + kk, q.x_signed) - q.x_zp) * (Q8(b, kk * n + j, q.w_signed) - bz);
    acc[i] = s;
  }
}

// acc is [outer, inner, channels] (channels fastest); y (and z) is [outer, channels, inner].
template <class I, class Y>
__global__ void EpilogueKernel(const int32_t* __restrict__ acc, Y* __restrict__ y, int64_t outer64, int64_t channels64,
                               int64_t inner64, Quant q, float lo, float hi) {
  const I channels = I(channels64), inner = I(inner64), total = I(outer64) * channels * inner;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    const I i = I(k);
    const I o = i / (channels * inner), c = (i / inner) % channels, s = i % inner;
    int32_t a = acc[(o * inner + s) * channels + c];
    if (q.bias) a += q.bias[c];
    float mult = __fmul_rn(*q.x_scale, q.w_scale[q.w_scales == 1 ? 0 : c]);
    if (q.y_scale && q.plain) mult = __fdiv_rn(mult, *q.y_scale);
    float v = __fmul_rn(static_cast<float>(a), mult);
    if (q.z_type != ZType::kNone) v = __fadd_rn(v, Residual(q, i));
    v = ApplyAct(q, v);
    if constexpr (std::is_same_v<Y, float>) {
      y[i] = v;
    } else if constexpr (std::is_same_v<Y, __half>) {
      y[i] = __float2half_rn(v);
    } else {
      if (!q.plain) v = __fdiv_rn(v, *q.y_scale);
      y[i] = static_cast<Y>(fminf(hi, fmaxf(lo, __fadd_rn(rintf(v), static_cast<float>(q.y_zp)))));
    }
  }
}

// Launches kernel<int32_t> when `elements` (the largest index + 1) fits, else kernel<int64_t>.
bool Fits32(int64_t elements) { return elements < (int64_t{1} << 31); }

// An int8 TN product on cuBLASLt: column-major D[rows_d, cols_d] (int32) = op_T(first[k, rows_d]) · second[k, cols_d].
class LtInt8 {
 public:
  ~LtInt8() { Reset(); }
  void Reset() { LtDestroy(&desc_, {&a_, &b_, &d_}); }
  // D (rows × cols, int32) = Aᵀ · B with A stored k × rows (ld k), B stored k × cols (ld k).
  Status Prepare(int64_t rows, int64_t cols, int64_t k, GpuResources& res) {
    Reset();
    KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&desc_, CUBLAS_COMPUTE_32I, CUDA_R_32I));
    cublasOperation_t t = CUBLAS_OP_T, n = CUBLAS_OP_N;
    KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof(t)));
    KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &n, sizeof(n)));
    KILN_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&a_, CUDA_R_8I, k, rows, k));
    KILN_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&b_, CUDA_R_8I, k, cols, k));
    KILN_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&d_, CUDA_R_32I, rows, cols, rows));
    return LtChooseAlgo(res, desc_, a_, b_, d_, d_, "INT8", &algo_);
  }
  Status Run(const void* a, const void* b, int32_t* d, void* ws, GpuResources& res, cudaStream_t stream) {
    const int32_t alpha = 1, beta = 0;
    return LtStatus(cublasLtMatmul(static_cast<cublasLtHandle_t>(res.cublaslt), desc_, &alpha, a, a_, b, b_, &beta, d,
                                   d_, d, d_, &algo_, ws, kLtWorkspace, stream),
                    "cublasLtMatmul (int8)");
  }

 private:
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, d_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
};

// The INT8 product with its epilogue in cuBLASLt (int8 D): D = act(alpha[r] · (Aᵀ·B)[r, c] + beta · C[r, c] +
// bias[r]), alpha a device vector (per output channel), beta a host scalar, C the int8 residual (or D, beta
// 0), bias float, act ReLU or none. Rounds once, as the requantization does, but in cuBLASLt's order of float
// operations: within one step of the CPU reference's (acc + bias) · mult.
class LtInt8Fused {
 public:
  ~LtInt8Fused() { Reset(); }
  void Reset() { LtDestroy(&desc_, {&a_, &b_, &d_}); }
  Status Prepare(int64_t rows, int64_t cols, int64_t k, bool relu, const float* bias, GpuResources& res,
                 const std::string& node) {
    Reset();
    KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&desc_, CUBLAS_COMPUTE_32I, CUDA_R_32F));
    cublasOperation_t t = CUBLAS_OP_T, n = CUBLAS_OP_N;
    KILN_LT_RETURN_IF_ERROR(
        cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof(t)));
    KILN_LT_RETURN_IF_ERROR(
        cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &n, sizeof(n)));
    const cublasLtPointerMode_t mode = CUBLASLT_POINTER_MODE_ALPHA_DEVICE_VECTOR_BETA_HOST;
    KILN_LT_RETURN_IF_ERROR(
        cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_POINTER_MODE, &mode, sizeof(mode)));
    const cublasLtEpilogue_t epi = relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
    KILN_LT_RETURN_IF_ERROR(
        cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
    const cudaDataType_t bias_type = CUDA_R_32F;
    KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                                                           &bias_type, sizeof(bias_type)));
    KILN_LT_RETURN_IF_ERROR(
        cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    KILN_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&a_, CUDA_R_8I, k, rows, k));
    KILN_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&b_, CUDA_R_8I, k, cols, k));
    KILN_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&d_, CUDA_R_8I, rows, cols, rows));
    return LtChooseAlgo(res, desc_, a_, b_, d_, d_, "INT8 (fused epilogue)", &algo_, node);
  }
  Status Run(const void* a, const void* b, const void* c, void* d, const float* alpha, float beta, void* ws,
             GpuResources& res, cudaStream_t stream) {
    return LtStatus(cublasLtMatmul(static_cast<cublasLtHandle_t>(res.cublaslt), desc_, alpha, a, a_, b, b_,
                                   &beta, c ? c : d, d_, d, d_, &algo_, ws, kLtWorkspace, stream),
                    "cublasLtMatmul (int8, fused epilogue)");
  }

 private:
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, d_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
};

bool Int8Type(DataType t) { return t == DataType::kInt8 || t == DataType::kUInt8; }

// Reads the host-known zero point(s) of input i: true when all are zero (or omitted).
bool ZeroPoints(const std::vector<DevTensor>& in, size_t i, int32_t* first) {
  *first = 0;
  if (in.size() <= i || !Present(in[i])) return true;
  const Tensor* t = in[i].host;
  if (!t) return false;
  bool zero = true;
  for (int64_t k = 0; k < t->numel(); ++k) {
    const int32_t v = static_cast<int32_t>(t->ScalarAt(k));
    if (k == 0) *first = v;
    zero = zero && v == 0;
  }
  return zero;
}

// Shared by both ops: parameter checks and the epilogue.
class QuantOpBase : public GpuOp {
 public:
  QuantOpBase(const Node& n, int64_t opset) : node_(n), opset_(opset) {}

 protected:
  Status PrepareParams(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, int64_t channels) {
    GpuNodeContext ctx(node_, opset_, &in);
    if (!Int8Type(in[kX].dtype) || !Int8Type(in[kW].dtype)) return ctx.Error("x and w must be int8 or uint8");
    if (in[kXScale].numel() != 1 || (in[kWScale].numel() != 1 && in[kWScale].numel() != channels))
      return ctx.Error("x_scale must be a scalar and w_scale a scalar or one per output channel");
    int32_t x_zp = 0, w_zp = 0, y_zp = 0;
    x_zero_ = ZeroPoints(in, kXZp, &x_zp);
    w_zero_ = ZeroPoints(in, kWZp, &w_zp);
    if (in.size() > kXZp && Present(in[kXZp]) && !in[kXZp].host)
      return ctx.UnsupportedError("x_zero_point must be a constant on the GPU");
    if (in.size() > kWZp && Present(in[kWZp]) && !in[kWZp].host)
      return ctx.UnsupportedError("w_zero_point must be a constant on the GPU");
    ZeroPoints(in, kYZp, &y_zp);
    if (in.size() > kYZp && Present(in[kYZp]) && !in[kYZp].host)
      return ctx.UnsupportedError("y_zero_point must be a constant on the GPU");
    q_ = Quant{};
    q_.x_zp = x_zp;
    q_.y_zp = y_zp;
    q_.x_signed = in[kX].dtype == DataType::kInt8;
    q_.w_signed = in[kW].dtype == DataType::kInt8;
    q_.w_scales = static_cast<int>(in[kWScale].numel());
    has_bias_ = in.size() > kBias && Present(in[kBias]);
    if (has_bias_ && (in[kBias].dtype != DataType::kInt32 || in[kBias].numel() != channels))
      return ctx.Error("bias must be int32 with one value per output channel");
    quantized_ = in.size() > kYScale && Present(in[kYScale]);
    const bool float_out = out[0].dtype == DataType::kFloat || out[0].dtype == DataType::kFloat16;
    if (quantized_ == float_out) return ctx.Error("output type does not match y_scale");
    return PrepareTail(ctx, in, out);
  }

  // The residual and activation (ops/kiln_quant.cc).
  Status PrepareTail(GpuNodeContext& ctx, const std::vector<DevTensor>& in,
                     const std::vector<DevTensor>& out) {
    const std::string act = ctx.attr_string("activation", "");
    q_.act = act == "Relu"    ? QAct::kRelu
             : act == "Clip"  ? QAct::kClip
             : act == "Swish" ? QAct::kSwish
                              : QAct::kNone;
    if (q_.act == QAct::kNone && !act.empty())
      return ctx.UnsupportedError("unknown activation '" + act + "'");
    q_.act_min = ctx.attr_float("activation_min", -std::numeric_limits<float>::infinity());
    q_.act_max = ctx.attr_float("activation_max", std::numeric_limits<float>::infinity());
    has_z_ = in.size() > kZ && Present(in[kZ]);
    q_.plain = !has_z_ && (q_.act == QAct::kNone || q_.act == QAct::kRelu);  // ReLU commutes with 1 / y_scale
    if (!has_z_) return Status::Ok();
    const DevTensor& z = in[kZ];
    if (z.dims != out[0].dims) return ctx.Error("z must have y's shape");
    switch (z.dtype) {
      case DataType::kFloat:
        q_.z_type = ZType::kFloat;
        break;
      case DataType::kFloat16:
        q_.z_type = ZType::kHalf;
        break;
      case DataType::kInt8:
        q_.z_type = ZType::kInt8;
        break;
      case DataType::kUInt8:
        q_.z_type = ZType::kUInt8;
        break;
      default:
        return ctx.Error("z must be float32, float16, int8 or uint8");
    }
    if (Int8Type(z.dtype)) {
      if (!(in.size() > kZScale && Present(in[kZScale]) && in[kZScale].numel() == 1))
        return ctx.Error("an int8/uint8 z needs a scalar z_scale");
      if (in.size() > kZZp && Present(in[kZZp]) && !in[kZZp].host)
        return ctx.UnsupportedError("z_zero_point must be a constant on the GPU");
      ZeroPoints(in, kZZp, &q_.z_zp);
    }
    return Status::Ok();
  }

  Quant DeviceParams(const std::vector<DevTensor>& in) const {
    Quant q = q_;
    q.x_scale = static_cast<const float*>(in[kXScale].data);
    q.w_scale = static_cast<const float*>(in[kWScale].data);
    q.bias = has_bias_ ? static_cast<const int32_t*>(in[kBias].data) : nullptr;
    q.y_scale = quantized_ ? static_cast<const float*>(in[kYScale].data) : nullptr;
    if (has_z_) {
      q.z = in[kZ].data;
      q.z_scale = Int8Type(in[kZ].dtype) ? static_cast<const float*>(in[kZScale].data) : nullptr;
    }
    return q;
  }

  Status Epilogue(const std::vector<DevTensor>& in, const DevTensor& y, const int32_t* acc, int64_t outer,
                  int64_t channels, int64_t inner, cudaStream_t stream) const {
    const Quant q = DeviceParams(in);
    const int64_t total = outer * channels * inner;
    if (total == 0) return Status::Ok();
    auto launch = [&](auto* out, float lo, float hi) {
      using Y = std::remove_pointer_t<decltype(out)>;
      if (Fits32(total))
        EpilogueKernel<int32_t, Y><<<Blocks(total), kThreads, 0, stream>>>(acc, out, outer, channels, inner, q, lo, hi);
      else
        EpilogueKernel<int64_t, Y><<<Blocks(total), kThreads, 0, stream>>>(acc, out, outer, channels, inner, q, lo, hi);
    };
    if (y.dtype == DataType::kFloat)
      launch(static_cast<float*>(y.data), 0.f, 0.f);
    else if (y.dtype == DataType::kFloat16)
      launch(static_cast<__half*>(y.data), 0.f, 0.f);
    else if (y.dtype == DataType::kInt8)
      launch(static_cast<int8_t*>(y.data), -128.f, 127.f);
    else
      launch(static_cast<uint8_t*>(y.data), 0.f, 255.f);
    KILN_CUDA_CHECK_LAUNCH("EpilogueKernel");
    return Status::Ok();
  }

  const Node& node_;
  int64_t opset_;
  Quant q_;
  bool x_zero_ = true, w_zero_ = true, has_bias_ = false, quantized_ = false, has_z_ = false;
};

class QMatMulOp final : public QuantOpBase {
 public:
  using QuantOpBase::QuantOpBase;
  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources& res) override {
    const auto& a = in[kX].dims;
    const auto& b = in[kW].dims;
    GpuNodeContext ctx(node_, opset_, &in);
    if (a.empty() || b.size() != 2 || a.back() != b[0]) return ctx.Error("expects a [..., K] and b [K, N]");
    k_ = b[0];
    n_ = b[1];
    rows_ = k_ > 0 ? in[kX].numel() / k_ : 0;
    KILN_RETURN_IF_ERROR(PrepareParams(in, out, n_));
    lt_ = in[kX].dtype == DataType::kInt8 && in[kW].dtype == DataType::kInt8 && x_zero_ && w_zero_ &&
          Int8GemmShapeSupported(k_, n_) && rows_ > 0;
    if (lt_) {
      // D[N, rows] (column-major) = (Bᵀ stored [N, K] = column-major K×N)ᵀ · (A = column-major K×rows).
      Status st = gemm_.Prepare(n_, rows_, k_, res);
      if (!st.ok()) lt_ = false;  // no IMMA algorithm: the direct kernel
    }
    // Constant weights are transposed once here; others every run (ResNet-50's fc at batch 32: the per-run
    // transpose made the layer 0.064 ms against 0.009 for the FP16 Gemm, H100).
    weights_ready_ = false;
    if (lt_ && in[kW].host) {
      const int8_t* w = in[kW].host->data<int8_t>();
      std::vector<int8_t> t(static_cast<size_t>(k_ * n_));
      for (int64_t k = 0; k < k_; ++k)
        for (int64_t j = 0; j < n_; ++j) t[static_cast<size_t>(j * k_ + k)] = w[k * n_ + j];
      KILN_RETURN_IF_ERROR(weights_t_.Reserve(t.size()));
      KILN_CUDA_RETURN_IF_ERROR(cudaMemcpy(weights_t_.get(), t.data(), t.size(), cudaMemcpyHostToDevice));
      weights_ready_ = true;
    }
    return Status::Ok();
  }
  size_t WorkspaceBytes() const override {
    return RoundUp(static_cast<size_t>(rows_ * n_) * 4) +
           (weights_ready_ ? 0 : RoundUp(static_cast<size_t>(k_ * n_))) + kLtWorkspace;
  }
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void* ws, GpuResources& res,
                 cudaStream_t stream) override {
    if (out[0].numel() == 0) return Status::Ok();
    char* base = static_cast<char*>(ws);
    int32_t* acc = reinterpret_cast<int32_t*>(base);
    char* rest = base + RoundUp(static_cast<size_t>(rows_ * n_) * 4);
    if (lt_) {
      const int8_t* bt = static_cast<const int8_t*>(weights_t_.get());
      if (!weights_ready_) {
        int8_t* buf = reinterpret_cast<int8_t*>(rest);
        rest += RoundUp(static_cast<size_t>(k_ * n_));
        TransposeKernel<<<Blocks(k_ * n_), kThreads, 0, stream>>>(static_cast<const int8_t*>(in[kW].data), buf,
                                                                  k_, n_);
        KILN_CUDA_CHECK_LAUNCH("TransposeKernel");
        bt = buf;
      }
      KILN_RETURN_IF_ERROR(gemm_.Run(bt, in[kX].data, acc, rest, res, stream).WithPrefix(node_.Label()));
    } else {
      const bool has_wzp = in.size() > kWZp && Present(in[kWZp]);
      DirectGemmKernel<<<Blocks(rows_ * n_), kThreads, 0, stream>>>(
          in[kX].data, in[kW].data, has_wzp ? in[kWZp].data : nullptr, has_wzp ? static_cast<int>(in[kWZp].numel()) : 1,
          acc, rows_, k_, n_, DeviceParams(in));
      KILN_CUDA_CHECK_LAUNCH("DirectGemmKernel");
    }
    return Epilogue(in, out[0], acc, rows_, n_, 1, stream);
  }

 private:
  int64_t k_ = 0, n_ = 0, rows_ = 0;
  bool lt_ = false, weights_ready_ = false;
  LtInt8 gemm_;
  DeviceBuffer weights_t_;  // constant weights [N, K], when weights_ready_
};

class QConvOp final : public QuantOpBase {
 public:
  using QuantOpBase::QuantOpBase;
  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources& res) override {
    GpuNodeContext ctx(node_, opset_, &in);
    if (in[kX].dims.size() != 4) return ctx.UnsupportedError("only 2-D convolutions (NCHW) run INT8 on the GPU");
    KILN_RETURN_IF_ERROR(Conv2dOf(ctx, in[kX], in[kW], &g_));
    KILN_RETURN_IF_ERROR(PrepareParams(in, out, g_.m));
    p_ = g_.n * g_.oh * g_.ow;
    kdim_ = g_.c / g_.group * g_.kh * g_.kw;
    lt_ = in[kX].dtype == DataType::kInt8 && in[kW].dtype == DataType::kInt8 && x_zero_ && w_zero_ &&
          Int8ConvShapeSupported(2, g_.group, kdim_, g_.m) && p_ > 0;
    if (lt_) {
      // D[M, P] (column-major) = (W stored [M, K] = column-major K×M)ᵀ · (col [P, K] = column-major K×P).
      Status st = gemm_.Prepare(g_.m, p_, kdim_, res);
      if (!st.ok()) lt_ = false;
    }
    return Status::Ok();
  }
  size_t WorkspaceBytes() const override {
    return RoundUp(static_cast<size_t>(p_ * g_.m) * 4) + (lt_ ? RoundUp(static_cast<size_t>(p_ * kdim_)) + kLtWorkspace : 0);
  }
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void* ws, GpuResources& res,
                 cudaStream_t stream) override {
    if (out[0].numel() == 0) return Status::Ok();
    char* base = static_cast<char*>(ws);
    int32_t* acc = reinterpret_cast<int32_t*>(base);  // [P, M]
    if (lt_) {
      int8_t* col = reinterpret_cast<int8_t*>(base + RoundUp(static_cast<size_t>(p_ * g_.m) * 4));
      void* lt_ws = base + RoundUp(static_cast<size_t>(p_ * g_.m) * 4) + RoundUp(static_cast<size_t>(p_ * kdim_));
      const auto* x = static_cast<const int8_t*>(in[kX].data);
      if (Fits32(std::max(p_ * kdim_, g_.n * g_.c * g_.h * g_.w)))
        Im2ColKernel<int32_t><<<Blocks(p_ * kdim_), kThreads, 0, stream>>>(x, col, g_);
      else
        Im2ColKernel<int64_t><<<Blocks(p_ * kdim_), kThreads, 0, stream>>>(x, col, g_);
      KILN_CUDA_CHECK_LAUNCH("Im2ColKernel");
      KILN_RETURN_IF_ERROR(gemm_.Run(in[kW].data, col, acc, lt_ws, res, stream).WithPrefix(node_.Label()));
    } else {
      const bool has_wzp = in.size() > kWZp && Present(in[kWZp]);
      DirectConvKernel<<<Blocks(p_ * g_.m), kThreads, 0, stream>>>(
          in[kX].data, in[kW].data, has_wzp ? in[kWZp].data : nullptr, has_wzp ? static_cast<int>(in[kWZp].numel()) : 1,
          acc, g_, DeviceParams(in));
      KILN_CUDA_CHECK_LAUNCH("DirectConvKernel");
    }
    // acc [N, OH·OW, M] → y [N, M, OH·OW].
    return Epilogue(in, out[0], acc, g_.n, g_.m, g_.oh * g_.ow, stream);
  }

 private:
  Conv2d g_{};
  int64_t p_ = 0, kdim_ = 0;
  bool lt_ = false;
  LtInt8 gemm_;
};

// kiln.QConvNhwc: x [N, H, W, C] int8, w [M, R, S, C/group]; y and z [N, OH, OW, M]. The int32 product
// acc [P, M] is already y's layout: the epilogue runs with one output row per position.
class QConvNhwcOp final : public QuantOpBase {
 public:
  using QuantOpBase::QuantOpBase;
  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out,
                 GpuResources& res) override {
    GpuNodeContext ctx(node_, opset_, &in);
    if (in[kX].dims.size() != 4 || in[kW].dims.size() != 4)
      return ctx.UnsupportedError("only 2-D convolutions (NHWC) run INT8 on the GPU");
    DevTensor x = in[kX], w = in[kW];  // the NCHW geometry of the same convolution
    x.dims = {x.dims[0], x.dims[3], x.dims[1], x.dims[2]};
    w.dims = {w.dims[0], w.dims[3], w.dims[1], w.dims[2]};
    KILN_RETURN_IF_ERROR(Conv2dOf(ctx, x, w, &g_));
    KILN_RETURN_IF_ERROR(PrepareParams(in, out, g_.m));
    p_ = g_.n * g_.oh * g_.ow;
    kdim_ = g_.c / g_.group * g_.kh * g_.kw;
    pointwise_ = g_.kh == 1 && g_.kw == 1 && g_.sh == 1 && g_.sw == 1 && g_.ph == 0 && g_.pw == 0;
    lt_ = in[kX].dtype == DataType::kInt8 && in[kW].dtype == DataType::kInt8 && x_zero_ && w_zero_ &&
          g_.c % 4 == 0 && Int8ConvShapeSupported(2, g_.group, kdim_, g_.m) && p_ > 0;
    graph_ = false;
    fused_ = lt_ && PrepareFused(in, out, res).ok();
    if (lt_ && !fused_) {
      // D[M, P] (column-major) = (W stored [M, K] = column-major K×M)ᵀ · (col [P, K] = column-major K×P).
      Status st = gemm_.Prepare(g_.m, p_, kdim_, res);
      if (!st.ok()) lt_ = false;
    }
    return Status::Ok();
  }
  size_t WorkspaceBytes() const override {
    if (graph_) return graph_conv_.WorkspaceBytes();
    const size_t col = lt_ && !pointwise_ ? RoundUp(static_cast<size_t>(p_ * kdim_)) : 0;
    const size_t acc = fused_ ? 0 : RoundUp(static_cast<size_t>(p_ * g_.m) * 4);
    return acc + col + (lt_ ? kLtWorkspace : 0);
  }
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void* ws,
                 GpuResources& res, cudaStream_t stream) override {
    if (out[0].numel() == 0) return Status::Ok();
    char* base = static_cast<char*>(ws);
    int32_t* acc = reinterpret_cast<int32_t*>(base);  // [P, M]
    char* rest = fused_ ? base : base + RoundUp(static_cast<size_t>(p_ * g_.m) * 4);
    if (graph_)
      return graph_conv_
          .RunInt8(in[kX].data, in[kW].data, Alpha(), Bias(), has_z_ ? in[kZ].data : nullptr, Beta(),
                   out[0].data, ws, res, stream)
          .WithPrefix(node_.Label());
    if (lt_) {
      const auto* x = static_cast<const int8_t*>(in[kX].data);
      const int8_t* col = x;
      if (!pointwise_) {
        int8_t* buf = reinterpret_cast<int8_t*>(rest);
        rest += RoundUp(static_cast<size_t>(p_ * kdim_));
        const int64_t chunks16 = p_ * kdim_ / 16, chunks4 = p_ * kdim_ / 4;
        const bool wide = g_.c % 16 == 0;
        const int64_t chunks = wide ? chunks16 : chunks4;
        if (Fits32(std::max(chunks, g_.n * g_.h * g_.w * g_.c))) {
          if (wide)
            Im2ColNhwcKernel<int32_t, int4><<<Blocks(chunks), kThreads, 0, stream>>>(x, buf, g_);
          else
            Im2ColNhwcKernel<int32_t, int><<<Blocks(chunks), kThreads, 0, stream>>>(x, buf, g_);
        } else {
          if (wide)
            Im2ColNhwcKernel<int64_t, int4><<<Blocks(chunks), kThreads, 0, stream>>>(x, buf, g_);
          else
            Im2ColNhwcKernel<int64_t, int><<<Blocks(chunks), kThreads, 0, stream>>>(x, buf, g_);
        }
        KILN_CUDA_CHECK_LAUNCH("Im2ColNhwcKernel");
        col = buf;
      }
      if (fused_)
        return fused_gemm_
            .Run(in[kW].data, col, has_z_ ? in[kZ].data : nullptr, out[0].data, Alpha(), beta_, rest, res,
                 stream)
            .WithPrefix(node_.Label());
      KILN_RETURN_IF_ERROR(gemm_.Run(in[kW].data, col, acc, rest, res, stream).WithPrefix(node_.Label()));
    } else {
      const bool has_wzp = in.size() > kWZp && Present(in[kWZp]);
      DirectConvNhwcKernel<<<Blocks(p_ * g_.m), kThreads, 0, stream>>>(
          in[kX].data, in[kW].data, has_wzp ? in[kWZp].data : nullptr,
          has_wzp ? static_cast<int>(in[kWZp].numel()) : 1, acc, g_, DeviceParams(in));
      KILN_CUDA_CHECK_LAUNCH("DirectConvNhwcKernel");
    }
    return Epilogue(in, out[0], acc, p_, g_.m, 1, stream);
  }

 private:
  // The epilogue in the library's kernel where it can compute it: an int8 output at zero point 0, an int8
  // residual at zero point 0 or none, ReLU or no activation, scales and bias known on the host. Computes the
  // per-channel alpha = x_scale·w_scale[m] / y_scale, bias·alpha and beta = z_scale / y_scale on the host.
  // A layer that needs an im2col first tries cuDNN's graph API (an implicit GEMM with the same epilogue),
  // then cuBLASLt's fused epilogue (LtInt8Fused); a 1x1 stride-1 layer is cuBLASLt's product of x itself.
  Status PrepareFused(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out,
                      GpuResources& res) {
    if (!quantized_ || out[0].dtype != DataType::kInt8 || q_.y_zp != 0 || q_.act == QAct::kClip)
      return Unsupported("epilogue not in the libraries' terms");
    if (q_.act == QAct::kSwish && (pointwise_ || g_.group != 1))
      return Unsupported("SiLU: cuDNN's graph only (cuBLASLt has no SiLU epilogue)");
    if (has_z_ && (in[kZ].dtype != DataType::kInt8 || q_.z_zp != 0)) return Unsupported("residual not int8");
    auto scalar = [&](size_t i) { return in[i].host ? in[i].host->data<float>()[0] : 0.f; };
    const Tensor* ws = in[kWScale].host;
    const Tensor* bias = has_bias_ ? in[kBias].host : nullptr;
    if (!in[kXScale].host || !ws || !in[kYScale].host || (has_bias_ && !bias) ||
        (has_z_ && !in[kZScale].host))
      return Unsupported("scales not known on the host");
    const float xs = scalar(kXScale), ys = scalar(kYScale);
    std::vector<float> host(static_cast<size_t>(2 * g_.m + 1));
    for (int64_t m = 0; m < g_.m; ++m) {
      const float alpha = xs * ws->data<float>()[ws->numel() == 1 ? 0 : m] / ys;
      host[m] = alpha;
      host[g_.m + m] = bias ? static_cast<float>(bias->data<int32_t>()[m]) * alpha : 0.f;
    }
    beta_ = has_z_ ? scalar(kZScale) / ys : 0.f;
    host[2 * g_.m] = beta_;
    KILN_RETURN_IF_ERROR(alpha_.Reserve(host.size() * sizeof(float)));
    KILN_CUDA_RETURN_IF_ERROR(
        cudaMemcpy(alpha_.get(), host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
    if (!pointwise_ && g_.group == 1) {
      ConvGraphShape gs;
      gs.x = {g_.n, g_.c, g_.h, g_.w};
      gs.w = {g_.m, g_.c, g_.kh, g_.kw};
      gs.y = {g_.n, g_.m, g_.oh, g_.ow};
      gs.pads = {g_.ph, g_.pw};
      gs.strides = {g_.sh, g_.sw};
      gs.dilations = {g_.dh, g_.dw};
      gs.dtype = DataType::kInt8;
      gs.bias = true;
      gs.z = has_z_;
      if (q_.act == QAct::kRelu) gs.act.kind = Activation::kRelu;
      if (q_.act == QAct::kSwish) gs.act.kind = Activation::kSwish;
      float ms = 0.f;
      graph_ = graph_conv_.Prepare(gs, res, &ms).ok();
      if (graph_) {
        if (res.tactics) res.tactics->Use(node_.name, graph_conv_.key());
        return Status::Ok();
      }
    }
    if (q_.act == QAct::kSwish) return Unsupported("SiLU: no cuDNN engine");
    return fused_gemm_.Prepare(g_.m, p_, kdim_, q_.act == QAct::kRelu, Bias(), res, node_.name);
  }

  const float* Alpha() const { return static_cast<const float*>(alpha_.get()); }
  const float* Bias() const { return Alpha() + g_.m; }
  const float* Beta() const { return Alpha() + 2 * g_.m; }

  Conv2d g_{};
  int64_t p_ = 0, kdim_ = 0;
  // fused_: the epilogue in a library kernel; graph_: that kernel is cuDNN's (else cuBLASLt's).
  bool lt_ = false, pointwise_ = false, fused_ = false, graph_ = false;
  LtInt8 gemm_;
  LtInt8Fused fused_gemm_;
  ConvGraph graph_conv_;
  DeviceBuffer alpha_;  // alpha [M], bias · alpha [M], beta
  float beta_ = 0.f;
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeQMatMulOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(new QMatMulOp(*info.node, info.opset));
}

Expected<std::unique_ptr<GpuOp>> MakeQConvOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(new QConvOp(*info.node, info.opset));
}

Expected<std::unique_ptr<GpuOp>> MakeQConvNhwcOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(new QConvNhwcOp(*info.node, info.opset));
}

}  // namespace kiln::cuda
