// Blocked GEMM and ParallelFor (see nn_gemm.h).
#include "ops/nn_gemm.h"

#include <algorithm>
#include <functional>
#include <thread>
#include <type_traits>
#include <vector>

namespace kiln {
namespace {

// Micro-tile of C held in registers: kMR rows x NR columns. NR spans 32 bytes
// of T (8 floats / int32s, 4 doubles / int64s).
constexpr int64_t kMR = 4;
template <class T>
constexpr int64_t kNR = 32 / sizeof(T);

// Cache blocks: a packed A block (kMC x kKC) stays in L2, a packed B panel
// (kKC x kNC) in L2/L3, one B micro-panel (kKC x NR) in L1.
constexpr int64_t kKC = 256;
constexpr int64_t kMC = 96;
constexpr int64_t kNC = 1024;

// Below this many multiply-adds per thread, another thread costs more than it saves.
constexpr int64_t kMinParallelWork = int64_t{1} << 20;
constexpr int64_t kMaxWorkers = 16;

// Set on the threads RunWorkers runs parts on (this one included, while it
// does): a part's own products (a convolution's per-image GEMMs) stay on its
// thread instead of multiplying the threads.
thread_local bool in_worker = false;

// Threads worth starting for `work` multiply-adds split into at most `chunks`
// parts: one per kMinParallelWork, at most the machine's cores (and 16).
int64_t Workers(int64_t work, int64_t chunks) {
  if (in_worker) return 1;
  const int64_t cores = std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()));
  return std::max<int64_t>(1, std::min({work / kMinParallelWork, chunks, cores, kMaxWorkers}));
}

// Calls part(w) for w in [0, workers): w = 0 on this thread, the others on their own.
void RunWorkers(int64_t workers, const std::function<void(int64_t)>& part) {
  auto run = [&part](int64_t w) {
    in_worker = true;
    part(w);
    in_worker = false;
  };
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(workers - 1));
  for (int64_t w = 1; w < workers; ++w) threads.emplace_back(run, w);
  run(0);
  for (std::thread& t : threads) t.join();
}

// Packs rows [i0, i0+mc) x cols [p0, p0+kc) of A as micro-panels of kMR rows:
// panel r holds A(i0 + r*kMR + i, p0 + p) at [r*kc*kMR + p*kMR + i]; rows past
// the matrix are zero.
template <class T>
void PackA(MatrixRef<T> a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, T* out) {
  for (int64_t r = 0; r < mc; r += kMR) {
    const int64_t rows = std::min(kMR, mc - r);
    for (int64_t p = 0; p < kc; ++p) {
      for (int64_t i = 0; i < kMR; ++i) *out++ = i < rows ? a.at(i0 + r + i, p0 + p) : T(0);
    }
  }
}

// Packs rows [p0, p0+kc) x cols [j0, j0+nc) of B as micro-panels of NR
// columns, zero beyond the matrix.
template <class T>
void PackB(MatrixRef<T> b, int64_t p0, int64_t kc, int64_t j0, int64_t nc, T* out) {
  constexpr int64_t nr = kNR<T>;
  for (int64_t s = 0; s < nc; s += nr) {
    const int64_t cols = std::min(nr, nc - s);
    for (int64_t p = 0; p < kc; ++p) {
      const T* row = b.data + (p0 + p) * b.row_stride + (j0 + s) * b.col_stride;
      if (b.col_stride == 1 && cols == nr) {
        for (int64_t j = 0; j < nr; ++j) out[j] = row[j];
      } else {
        for (int64_t j = 0; j < nr; ++j) out[j] = j < cols ? row[j * b.col_stride] : T(0);
      }
      out += nr;
    }
  }
}

// Accumulator type: float products are summed in double. The CPU reference is
// the oracle; float sums over K in the thousands (resnet50's 3x3x512 convs)
// drift by ~1e-4 relative, too much to compare other engines against.
template <class T>
using Acc = std::conditional_t<std::is_same_v<T, float>, double, T>;

// C tile (rows x cols of it valid) = [C +] packed A panel * packed B panel.
template <class T>
void MicroKernel(int64_t kc, const T* ap, const T* bp, T* c, int64_t ldc, int64_t rows, int64_t cols,
                 bool overwrite) {
  constexpr int64_t nr = kNR<T>;
  Acc<T> acc[kMR][nr] = {};
  for (int64_t p = 0; p < kc; ++p) {
    const T* a = ap + p * kMR;
    const T* b = bp + p * nr;
    for (int64_t i = 0; i < kMR; ++i) {
      for (int64_t j = 0; j < nr; ++j) acc[i][j] += static_cast<Acc<T>>(a[i]) * static_cast<Acc<T>>(b[j]);
    }
  }
  for (int64_t i = 0; i < rows; ++i) {
    T* crow = c + i * ldc;
    if (overwrite) {
      for (int64_t j = 0; j < cols; ++j) crow[j] = static_cast<T>(acc[i][j]);
    } else {
      for (int64_t j = 0; j < cols; ++j) crow[j] = static_cast<T>(crow[j] + acc[i][j]);
    }
  }
}

template <class T>
void GemmSerial(int64_t m, int64_t n, int64_t k, MatrixRef<T> a, MatrixRef<T> b, T* c, int64_t ldc,
                bool accumulate) {
  constexpr int64_t nr = kNR<T>;
  if (k == 0) {
    if (!accumulate) {
      for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, T(0));
    }
    return;
  }
  const int64_t kc_max = std::min(k, kKC);
  std::vector<T> apack(static_cast<size_t>(((std::min(m, kMC) + kMR - 1) / kMR) * kMR * kc_max));
  std::vector<T> bpack(static_cast<size_t>(((std::min(n, kNC) + nr - 1) / nr) * nr * kc_max));
  for (int64_t j0 = 0; j0 < n; j0 += kNC) {
    const int64_t nc = std::min(kNC, n - j0);
    for (int64_t p0 = 0; p0 < k; p0 += kKC) {
      const int64_t kc = std::min(kKC, k - p0);
      const bool overwrite = p0 == 0 && !accumulate;
      PackB(b, p0, kc, j0, nc, bpack.data());
      for (int64_t i0 = 0; i0 < m; i0 += kMC) {
        const int64_t mc = std::min(kMC, m - i0);
        PackA(a, i0, mc, p0, kc, apack.data());
        for (int64_t js = 0; js < nc; js += nr) {
          const T* bp = bpack.data() + (js / nr) * nr * kc;
          for (int64_t is = 0; is < mc; is += kMR) {
            const T* ap = apack.data() + (is / kMR) * kMR * kc;
            MicroKernel(kc, ap, bp, c + (i0 + is) * ldc + j0 + js, ldc, std::min(kMR, mc - is),
                        std::min(nr, nc - js), overwrite);
          }
        }
      }
    }
  }
}

// Fewer rows than a micro-tile (matrix-vector like): packing B would cost
// more than the product, so stream B once, for columns [j0, j1).
template <class T>
void GemmFewRows(int64_t m, int64_t j0, int64_t j1, int64_t k, MatrixRef<T> a, MatrixRef<T> b, T* c,
                 int64_t ldc, bool accumulate) {
  for (int64_t i = 0; i < m; ++i) {
    T* crow = c + i * ldc;
    if (b.col_stride == 1) {  // rows of B are contiguous: axpy per k into an Acc row
      std::vector<Acc<T>> row(static_cast<size_t>(j1 - j0), Acc<T>(0));
      for (int64_t p = 0; p < k; ++p) {
        const Acc<T> av = a.at(i, p);
        const T* brow = b.data + p * b.row_stride;
        for (int64_t j = j0; j < j1; ++j) row[static_cast<size_t>(j - j0)] += av * static_cast<Acc<T>>(brow[j]);
      }
      for (int64_t j = j0; j < j1; ++j)
        crow[j] = static_cast<T>(accumulate ? crow[j] + row[static_cast<size_t>(j - j0)] : row[static_cast<size_t>(j - j0)]);
    } else {  // columns of B are contiguous (B transposed): dot per column
      for (int64_t j = j0; j < j1; ++j) {
        Acc<T> s = 0;
        for (int64_t p = 0; p < k; ++p) s += static_cast<Acc<T>>(a.at(i, p)) * static_cast<Acc<T>>(b.at(p, j));
        crow[j] = static_cast<T>(accumulate ? crow[j] + s : s);
      }
    }
  }
}

}  // namespace

template <class T>
void Gemm(int64_t m, int64_t n, int64_t k, MatrixRef<T> a, MatrixRef<T> b, T* c, int64_t ldc,
          bool accumulate) {
  if (m <= 0 || n <= 0) return;
  const int64_t work = m * n * k;
  if (m < kMR) {
    ParallelFor(n, work,
                [&](int64_t j0, int64_t j1) { GemmFewRows(m, j0, j1, k, a, b, c, ldc, accumulate); });
    return;
  }
  // Rows split on micro-tile boundaries; few rows (a batch-1 fully connected layer): columns.
  const bool by_rows = m >= 4 * kMR;
  const int64_t tile = by_rows ? kMR : kNR<T>;
  const int64_t tiles = ((by_rows ? m : n) + tile - 1) / tile;
  const int64_t workers = Workers(work, by_rows || n >= 4 * kNR<T> ? tiles : 1);
  if (workers < 2) {
    GemmSerial(m, n, k, a, b, c, ldc, accumulate);
    return;
  }
  auto part = [&](int64_t w) {
    const int64_t t0 = tiles * w / workers, t1 = tiles * (w + 1) / workers;
    const int64_t extent = by_rows ? m : n, begin = std::min(t0 * tile, extent), end = std::min(t1 * tile, extent);
    if (begin >= end) return;
    if (by_rows) {
      MatrixRef<T> ar{a.data + begin * a.row_stride, a.row_stride, a.col_stride};
      GemmSerial(end - begin, n, k, ar, b, c + begin * ldc, ldc, accumulate);
    } else {
      MatrixRef<T> br{b.data + begin * b.col_stride, b.row_stride, b.col_stride};
      GemmSerial(m, end - begin, k, a, br, c + begin, ldc, accumulate);
    }
  };
  RunWorkers(workers, part);
}

template void Gemm<float>(int64_t, int64_t, int64_t, MatrixRef<float>, MatrixRef<float>, float*, int64_t,
                          bool);
template void Gemm<double>(int64_t, int64_t, int64_t, MatrixRef<double>, MatrixRef<double>, double*, int64_t,
                           bool);
template void Gemm<int32_t>(int64_t, int64_t, int64_t, MatrixRef<int32_t>, MatrixRef<int32_t>, int32_t*,
                            int64_t, bool);
template void Gemm<int64_t>(int64_t, int64_t, int64_t, MatrixRef<int64_t>, MatrixRef<int64_t>, int64_t*,
                            int64_t, bool);

void ParallelFor(int64_t n, int64_t work, const std::function<void(int64_t, int64_t)>& f) {
  if (n <= 0) return;
  const int64_t workers = Workers(work, n);
  if (workers < 2) {
    f(0, n);
    return;
  }
  RunWorkers(workers, [&](int64_t w) { f(n * w / workers, n * (w + 1) / workers); });
}

}  // namespace kiln
