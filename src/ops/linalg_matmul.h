// Matrix-product building blocks shared by the linalg ops (MatMul, Einsum,
// Attention, ...): symbolic MatMul shapes and numpy-style batched products.
#pragma once

#include <vector>

#include "core/tensor.h"
#include "ops/op_context.h"

namespace kiln {
namespace linalg {

// numpy.matmul result shape of a and b (1-D operands promoted and dropped),
// symbolic batch dims broadcast; unknown rank in gives unknown rank out.
Expected<Shape> MatMulShape(const NodeContext& ctx, const Shape& a, const Shape& b);

// numpy.matmul on contiguous row-major Acc arrays (Acc = float, double or
// int64_t): fills *out_dims and *out.
template <class Acc>
Status BatchedMatMul(const NodeContext& ctx, const std::vector<int64_t>& a_dims, const Acc* a,
                     const std::vector<int64_t>& b_dims, const Acc* b, std::vector<int64_t>* out_dims,
                     std::vector<Acc>* out);

// numpy.matmul of two tensors of one numeric type; the result has that type
// (float16/bfloat16 computed in float, rounded per output element).
Expected<Tensor> MatMulTensors(const NodeContext& ctx, const Tensor& a, const Tensor& b);

}  // namespace linalg
}  // namespace kiln
