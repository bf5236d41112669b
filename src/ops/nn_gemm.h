// Cache-blocked matrix multiply for the CPU reference, shared by the nn family
// (Conv through im2col, ConvTranspose, ConvInteger, ...) and usable by linalg
// (MatMul, Gemm). Readable first, but fast enough to run small-batch CNNs and
// transformers in CI: Goto-style packing of A and B into micro-panels and a
// 4 x NR register-blocked micro-kernel that the compiler vectorises.
//
//   C[m x n] = A[m x k] * B[k x n]           (accumulate == false)
//   C[m x n] = C + A[m x k] * B[k x n]       (accumulate == true)
//
// A and B are read through row/column strides (MatrixRef), so transposed
// operands need no copy: MatrixRef<T>::Transposed(w, ld) reads the transpose
// of a row-major matrix w with leading dimension ld. C is row-major with
// leading dimension ldc. Sums are in T (use float for float16/bfloat16 inputs
// and int32_t for the integer ops).
//
// Work is split over threads (std::thread; one per 2^20 multiply-adds, at most
// the machine's cores and 16) when the product is large enough to pay for
// them: over rows of C when m is large, else over columns. Results do not
// depend on the split (each C element is summed over k in the same order
// either way). The builder's calibration runs whole models on the reference,
// so its speed there follows the cores.
#pragma once

#include <cstdint>
#include <functional>

namespace kiln {

template <class T>
struct MatrixRef {
  const T* data = nullptr;
  int64_t row_stride = 0;
  int64_t col_stride = 1;

  // Row-major matrix with leading dimension ld.
  static MatrixRef RowMajor(const T* d, int64_t ld) { return {d, ld, 1}; }
  // The transpose of the row-major matrix d (leading dimension ld).
  static MatrixRef Transposed(const T* d, int64_t ld) { return {d, 1, ld}; }
  T at(int64_t r, int64_t c) const { return data[r * row_stride + c * col_stride]; }
};

// Instantiated for float, double, int32_t and int64_t.
template <class T>
void Gemm(int64_t m, int64_t n, int64_t k, MatrixRef<T> a, MatrixRef<T> b, T* c, int64_t ldc,
          bool accumulate = false);

// Calls f(begin, end) over contiguous parts of [0, n), on as many threads as
// `work` (a rough count of multiply-adds) pays for (as Gemm), else once on this thread.
void ParallelFor(int64_t n, int64_t work, const std::function<void(int64_t, int64_t)>& f);

}  // namespace kiln
