// GemmKernel: C = A * B with a cache-blocked loop nest. The inner loop updates
// four rows of C from one row of B, so it vectorises well without intrinsics.
// Large products are split by rows over two threads.
#include "ops/linalg_gemm.h"

#include <algorithm>
#include <thread>
#include <vector>

namespace kiln {
namespace {

constexpr int64_t kBlockK = 128;  // rows of B kept hot in cache
constexpr int64_t kBlockN = 512;  // columns of B and C per block
constexpr int64_t kMinWorkForThreads = int64_t{1} << 20;  // multiply-adds

// Rows [m0, m1) of C = A * B, with B contiguous row-major (leading dim ldb).
template <class T>
void GemmRows(int64_t m0, int64_t m1, int64_t N, int64_t K, MatrixView<T> a, const T* b, int64_t ldb, T* c,
              int64_t ldc) {
  for (int64_t i = m0; i < m1; ++i) std::fill(c + i * ldc, c + i * ldc + N, T(0));
  for (int64_t j0 = 0; j0 < N; j0 += kBlockN) {
    const int64_t nb = std::min(kBlockN, N - j0);
    for (int64_t k0 = 0; k0 < K; k0 += kBlockK) {
      const int64_t k1 = std::min(K, k0 + kBlockK);
      int64_t i = m0;
      for (; i + 4 <= m1; i += 4) {
        T* __restrict c0 = c + i * ldc + j0;
        T* __restrict c1 = c0 + ldc;
        T* __restrict c2 = c1 + ldc;
        T* __restrict c3 = c2 + ldc;
        for (int64_t k = k0; k < k1; ++k) {
          const T a0 = a.at(i, k), a1 = a.at(i + 1, k), a2 = a.at(i + 2, k), a3 = a.at(i + 3, k);
          const T* __restrict bk = b + k * ldb + j0;
          for (int64_t j = 0; j < nb; ++j) {
            const T bv = bk[j];
            c0[j] += a0 * bv;
            c1[j] += a1 * bv;
            c2[j] += a2 * bv;
            c3[j] += a3 * bv;
          }
        }
      }
      for (; i < m1; ++i) {
        T* __restrict c0 = c + i * ldc + j0;
        for (int64_t k = k0; k < k1; ++k) {
          const T a0 = a.at(i, k);
          const T* __restrict bk = b + k * ldb + j0;
          for (int64_t j = 0; j < nb; ++j) c0[j] += a0 * bk[j];
        }
      }
    }
  }
}

}  // namespace

template <class T>
void GemmKernel(int64_t M, int64_t N, int64_t K, MatrixView<T> a, MatrixView<T> b, T* c, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  // The kernel streams rows of B: make B contiguous row-major when it is not.
  std::vector<T> packed;
  const T* bdata = b.data;
  int64_t ldb = b.row_stride;
  if (b.col_stride != 1 && K > 0) {
    packed.resize(static_cast<size_t>(K * N));
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < N; ++j) packed[static_cast<size_t>(k * N + j)] = b.at(k, j);
    bdata = packed.data();
    ldb = N;
  }
  if (M >= 8 && M * N * K >= kMinWorkForThreads) {
    const int64_t half = (M / 2 + 3) / 4 * 4;  // keep the four-row blocks whole
    std::thread worker([&] { GemmRows<T>(0, half, N, K, a, bdata, ldb, c, ldc); });
    GemmRows<T>(half, M, N, K, a, bdata, ldb, c, ldc);
    worker.join();
  } else {
    GemmRows<T>(0, M, N, K, a, bdata, ldb, c, ldc);
  }
}

template void GemmKernel<float>(int64_t, int64_t, int64_t, MatrixView<float>, MatrixView<float>, float*, int64_t);
template void GemmKernel<double>(int64_t, int64_t, int64_t, MatrixView<double>, MatrixView<double>, double*,
                                 int64_t);
template void GemmKernel<int64_t>(int64_t, int64_t, int64_t, MatrixView<int64_t>, MatrixView<int64_t>, int64_t*,
                                  int64_t);

}  // namespace kiln
