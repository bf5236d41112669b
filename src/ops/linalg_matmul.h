// Matrix-product building blocks shared by the linalg ops (MatMul, Einsum,
// Attention, ...): symbolic MatMul shapes and numpy-style batched products.
#pragma once

#include <type_traits>
#include <vector>

#include "core/tensor.h"
#include "ops/nn_gemm.h"
#include "ops/op_context.h"

namespace kiln {
namespace linalg {

// numpy.matmul result shape of a and b (1-D operands promoted and dropped),
// symbolic batch dims broadcast; unknown rank in gives unknown rank out.
Expected<Shape> MatMulShape(const NodeContext& ctx, const Shape& a, const Shape& b);

// C[M,N] = A[M,K] * B[K,N] (C row-major, leading dim N): the shared blocked
// Gemm (nn_gemm.h) for float, double and int64_t; a plain loop for uint64_t
// (wrap-around integer products, rare and small).
template <class Acc>
void Product(int64_t M, int64_t N, int64_t K, MatrixRef<Acc> a, MatrixRef<Acc> b, Acc* c) {
  if constexpr (std::is_same_v<Acc, uint64_t>) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        uint64_t s = 0;
        for (int64_t k = 0; k < K; ++k) s += a.at(i, k) * b.at(k, j);
        c[i * N + j] = s;
      }
  } else {
    Gemm<Acc>(M, N, K, a, b, c, N);
  }
}

// numpy.matmul on contiguous row-major Acc arrays (Acc = float, double or
// int64_t, uint64_t): fills *out_dims and *out.
template <class Acc>
Status BatchedMatMul(const NodeContext& ctx, const std::vector<int64_t>& a_dims, const Acc* a,
                     const std::vector<int64_t>& b_dims, const Acc* b, std::vector<int64_t>* out_dims,
                     std::vector<Acc>* out);

// numpy.matmul of two tensors of one numeric type; the result has that type
// (float16/bfloat16 computed in float, rounded per output element).
Expected<Tensor> MatMulTensors(const NodeContext& ctx, const Tensor& a, const Tensor& b);

}  // namespace linalg
}  // namespace kiln
