// One cuBLASLt matrix product with its descriptors and timed-heuristic
// algorithm, shared by MatMul/Gemm (matmul.cc) and the 1x1 channels-last
// convolutions (conv.cc), which are exactly [N*H*W, C] x [C, K] products.
// Row-major C = A·B is computed as the column-major product Cᵀ = Bᵀ·Aᵀ.
#pragma once

#include <cublasLt.h>

#include <initializer_list>
#include <string>
#include <utility>

#include "backend/cuda/gpu_op.h"

namespace kiln::cuda {

inline Status LtStatus(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return Status::Ok();
  return Internal(std::string(what) + ": cuBLAS status " + std::to_string(static_cast<int>(s)));
}
#define KILN_LT_RETURN_IF_ERROR(call) KILN_RETURN_IF_ERROR(LtStatus((call), #call))

constexpr size_t kLtWorkspace = 32u << 20;

// Destroys a product's descriptor and layouts (those not null) and nulls them.
inline void LtDestroy(cublasLtMatmulDesc_t* desc, std::initializer_list<cublasLtMatrixLayout_t*> layouts) {
  if (*desc) cublasLtMatmulDescDestroy(*desc);
  *desc = nullptr;
  for (cublasLtMatrixLayout_t* l : layouts) {
    if (*l) cublasLtMatrixLayoutDestroy(*l);
    *l = nullptr;
  }
}

// The algorithm for `desc` with layouts a, b, c and d within kLtWorkspace: the
// one the engine's tactic cache holds for this product when cuBLASLt accepts
// it, else the fastest of the heuristic's first candidates timed on scratch
// operands (kept in the cache, so the plan carries it), or the heuristic's
// first without a cache. Unsupported naming `what` when cuBLASLt has none.
// `node`, when given, is recorded as using the entry (`kiln inspect PLAN`).
// lt_algo.cc.
Status LtChooseAlgo(GpuResources& res, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
                    cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                    const char* what, cublasLtMatmulAlgo_t* algo, const std::string& node = "");

struct GemmShape {
  int64_t m = 0, n = 0, k = 0, batch = 1;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  bool trans_a = false, trans_b = false;  // of the row-major operands
};

// The activation of LtGemm's epilogue (after the bias): cuBLASLt's GELU is the tanh form.
enum class LtActivation { kNone, kRelu, kGeluTanh };

class LtGemm {
 public:
  ~LtGemm() { Reset(); }
  void Reset() { LtDestroy(&desc_, {&a_, &b_, &c_}); }

  // bias: a device vector of n elements is passed to Run; act: the epilogue's
  // activation (after the bias).
  Status Prepare(const GemmShape& s, cudaDataType_t dt, bool tf32, bool bias, GpuResources& res,
                 LtActivation act = LtActivation::kNone, const std::string& node = "") {
    Reset();
    shape_ = s;
    cublasComputeType_t compute = dt == CUDA_R_64F ? CUBLAS_COMPUTE_64F
                                  : (dt == CUDA_R_32F && tf32) ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                               : CUBLAS_COMPUTE_32F;
    scale_type_ = dt == CUDA_R_64F ? CUDA_R_64F : CUDA_R_32F;
    KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&desc_, compute, scale_type_));
    // Column-major view: D(n×m) = op(B)(n×k) · op(A)(k×m).
    cublasOperation_t ta = s.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;  // first operand is B
    cublasOperation_t tb = s.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    if (bias || act != LtActivation::kNone) {
      cublasLtEpilogue_t epi =
          act == LtActivation::kRelu       ? (bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU)
          : act == LtActivation::kGeluTanh ? (bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU)
                                           : CUBLASLT_EPILOGUE_BIAS;
      KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
    }
    if (bias) {
      bias_type_ = dt;
      KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type_,
                                                             sizeof(bias_type_)));
      // One bias for every product of a strided batch.
      const int64_t bias_stride = 0;
      if (s.batch > 1)
        KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE,
                                                               &bias_stride, sizeof(bias_stride)));
    }
    // Row-major B (k×n, or n×k when transposed) is column-major (n×k)ᵀ...
    int64_t b_rows = s.trans_b ? s.k : s.n, b_cols = s.trans_b ? s.n : s.k;
    int64_t a_rows = s.trans_a ? s.m : s.k, a_cols = s.trans_a ? s.k : s.m;
    KILN_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&b_, dt, b_rows, b_cols, b_rows));
    KILN_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&a_, dt, a_rows, a_cols, a_rows));
    KILN_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&c_, dt, s.n, s.m, s.n));
    if (s.batch > 1) {
      int32_t count = static_cast<int32_t>(s.batch);
      for (auto [layout, stride] : {std::pair{b_, s.stride_b}, std::pair{a_, s.stride_a}, std::pair{c_, s.stride_c}}) {
        KILN_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                                                                 sizeof(count)));
        KILN_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                                 &stride, sizeof(stride)));
      }
    }
    return LtChooseAlgo(res, desc_, b_, a_, c_, c_, "float", &algo_, node);
  }

  Status Run(const void* a, const void* b, const void* c, const void* bias, void* d, float alpha, float beta,
             void* ws, GpuResources& res, cudaStream_t stream) {
    if (bias)
      KILN_LT_RETURN_IF_ERROR(
          cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    double alpha_d = alpha, beta_d = beta;
    const void* pa = scale_type_ == CUDA_R_64F ? static_cast<const void*>(&alpha_d) : &alpha;
    const void* pb = scale_type_ == CUDA_R_64F ? static_cast<const void*>(&beta_d) : &beta;
    return LtStatus(cublasLtMatmul(static_cast<cublasLtHandle_t>(res.cublaslt), desc_, pa, b, b_, a, a_, pb,
                                   c ? c : d, c_, d, c_, &algo_, ws, kLtWorkspace, stream),
                    "cublasLtMatmul");
  }

 private:
  GemmShape shape_;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
  cudaDataType_t scale_type_ = CUDA_R_32F;
  cudaDataType_t bias_type_ = CUDA_R_32F;
};

inline Expected<cudaDataType_t> LtType(DataType dt, const Node& n) {
  switch (dt) {
    case DataType::kFloat: return CUDA_R_32F;
    case DataType::kFloat16: return CUDA_R_16F;
    case DataType::kBFloat16: return CUDA_R_16BF;
    case DataType::kDouble: return CUDA_R_64F;
    default: return Unsupported(n.Label() + ": " + std::string(DataTypeName(dt)) + " matrix products are not supported on the GPU");
  }
}

}  // namespace kiln::cuda
