// The CPU reference's one matrix-multiply kernel: C = A * B on plain arrays,
// cache-blocked and split over up to two threads. Every matrix product of the
// reference (MatMul, Gemm, Einsum contractions, Attention, RNNs) goes through
// it, computing in float (float/float16/bfloat16), double or int64 (integers).
#pragma once

#include <cstdint>

namespace kiln {

// A read-only matrix operand: element (r, c) is data[r * row_stride + c * col_stride].
// Transposing is swapping the strides.
template <class T>
struct MatrixView {
  const T* data = nullptr;
  int64_t row_stride = 0;
  int64_t col_stride = 1;
  T at(int64_t r, int64_t c) const { return data[r * row_stride + c * col_stride]; }
};

// Row-major view of a contiguous rows x cols matrix, optionally transposed
// (then the view is cols x rows).
template <class T>
MatrixView<T> RowMajor(const T* data, int64_t cols, bool transposed = false) {
  return transposed ? MatrixView<T>{data, 1, cols} : MatrixView<T>{data, cols, 1};
}

// C[M,N] = A[M,K] * B[K,N], C row-major with leading dimension ldc. C is
// overwritten (K == 0 gives zeros). Implemented for float, double and int64_t
// (integers wrap around like numpy's fixed-width arithmetic once narrowed).
template <class T>
void GemmKernel(int64_t M, int64_t N, int64_t K, MatrixView<T> a, MatrixView<T> b, T* c, int64_t ldc);

extern template void GemmKernel<float>(int64_t, int64_t, int64_t, MatrixView<float>, MatrixView<float>, float*,
                                       int64_t);
extern template void GemmKernel<double>(int64_t, int64_t, int64_t, MatrixView<double>, MatrixView<double>,
                                        double*, int64_t);
extern template void GemmKernel<int64_t>(int64_t, int64_t, int64_t, MatrixView<int64_t>, MatrixView<int64_t>,
                                         int64_t*, int64_t);

}  // namespace kiln
