// Depthwise NHWC convolution with the FusedConv epilogue (see depthwise.h).
#include "backend/cuda/depthwise.h"

#include <algorithm>
#include <string>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/epilogue.cuh"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/launch.h"

namespace kiln::cuda {
namespace {

struct Params {
  int n, h, w, c, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw;
  ActivationSpec act;
  FastDiv ow_div, oh_div;  // of ow and oh: a pixel's coordinates without 32-bit divisions
  FastDiv runs_div;        // of a row's runs of pixels (the run and tile kernels; set by their launchers)
};

// acc[k] = Σ over the window of output pixel `px` (flat over [N, OH, OW]) of
// x[.., c0 + k] · w, with weights(tap, w) filling the VEC weights of a tap. K > 0: a K x K filter known at
// compile time (its taps unrolled); 0: p's.
template <class T, int VEC, int K = 0, class Weights>
__device__ inline void Accumulate(const T* __restrict__ x, const Params& p, int px, int c0, Weights weights,
                                  float acc[VEC]) {
  const int row = static_cast<int>(Divide(p.ow_div, px));  // n·OH + oy
  const int b = static_cast<int>(Divide(p.oh_div, row));
  const int ox = px - row * p.ow, oy = row - b * p.oh;
  const int kh = K ? K : p.kh, kw = K ? K : p.kw;
#pragma unroll
  for (int k = 0; k < VEC; ++k) acc[k] = 0.f;
#pragma unroll
  for (int ky = 0; ky < kh; ++ky) {
    const int iy = oy * p.sh - p.ph + ky * p.dh;
    if (iy < 0 || iy >= p.h) continue;
#pragma unroll
    for (int kx = 0; kx < kw; ++kx) {
      const int ix = ox * p.sw - p.pw + kx * p.dw;
      if (ix < 0 || ix >= p.w) continue;
      const Pack<T, VEC> in = *reinterpret_cast<const Pack<T, VEC>*>(
          x + ((static_cast<int64_t>(b) * p.h + iy) * p.w + ix) * p.c + c0);
      float w[VEC];
      weights(ky * kw + kx, w);
#pragma unroll
      for (int k = 0; k < VEC; ++k) acc[k] += ToFloat(in.v[k]) * w[k];
    }
  }
}

// y[px, c0 + k] = act(acc[k] + bias[c0 + k] + z[px, c0 + k]) ([N,OH,OW,C] flat = pixel * C + c).
template <class T, int VEC>
__device__ inline void Store(const T* __restrict__ bias, const T* __restrict__ z, T* __restrict__ y,
                             const Params& p, int px, int c0, const float acc[VEC]) {
  StoreEpilogue<T, VEC>(bias, z, y, static_cast<int64_t>(px) * p.c + c0, c0, acc, p.act);
}

// Larger filters (7x7 and up): one thread, VEC consecutive channels of one
// output pixel. W is [C, KH, KW] (the NHWC filter [C,KH,KW,1]); its reads hit
// the cache.
template <class T, int VEC>
__global__ void DepthwiseLargeKernel(const T* __restrict__ x, const T* __restrict__ wt,
                                     const T* __restrict__ bias, const T* __restrict__ z, T* __restrict__ y,
                                     Params p) {
  WaitForPriorKernels();
  const int cv = p.c / VEC;
  const int total = p.n * p.oh * p.ow * cv;
  const int taps = p.kh * p.kw;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    const int px = i / cv, c0 = (i % cv) * VEC;
    float acc[VEC];
    Accumulate<T, VEC>(
        x, p, px, c0,
        [&](int tap, float w[VEC]) {
#pragma unroll
          for (int k = 0; k < VEC; ++k) w[k] = ToFloat(wt[(c0 + k) * taps + tap]);
        },
        acc);
    Store<T, VEC>(bias, z, y, p, px, c0, acc);
  }
}

// Filters of at most kSmemTaps taps (3x3, 5x5): a block owns a tile of up to
// kTileGroups channel groups and stages their weights in shared memory, tap-major
// ([tap][channel], float), so a thread reads its VEC weights of a tap as 16-byte
// loads instead of VEC strided loads from the [C, KH, KW] filter (on MobileNetV2
// that was 8 weight loads per input load). The block then walks its pixels
// (grid-stride), one pixel of VEC channels per thread.
constexpr int kSmemTaps = 25;
constexpr int kTileGroups = 32;
constexpr int kBlock = 256;

template <int VEC>
__device__ inline void LoadWeights(const float* w, float out[VEC]) {
  if constexpr (VEC % 4 == 0) {
#pragma unroll
    for (int k = 0; k < VEC; k += 4) {
      const float4 f = *reinterpret_cast<const float4*>(w + k);
      out[k] = f.x, out[k + 1] = f.y, out[k + 2] = f.z, out[k + 3] = f.w;
    }
  } else {
#pragma unroll
    for (int k = 0; k < VEC; ++k) out[k] = w[k];
  }
}

// The weights of the block's channel tile [c_base, c_base + tile) into shared memory, tap-major
// ([tap][channel], float; channels past C are zeros), then a barrier. Consecutive threads read consecutive
// elements of W [C, KH·KW] (the tile is one contiguous stretch of it).
template <class T>
__device__ inline void StageWeights(const T* __restrict__ wt, const Params& p, int tile, int c_base,
                                    float* ws) {
  const int taps = p.kh * p.kw;
  const T* w = wt + static_cast<int64_t>(c_base) * taps;
  for (int i = threadIdx.x; i < taps * tile; i += blockDim.x) {
    const int c = i / taps, tap = i - c * taps;
    ws[tap * tile + c] = c_base + c < p.c ? ToFloat(w[i]) : 0.f;
  }
  __syncthreads();
}

template <class T, int VEC>
__global__ void DepthwiseSmemKernel(const T* __restrict__ x, const T* __restrict__ wt,
                                    const T* __restrict__ bias, const T* __restrict__ z, T* __restrict__ y,
                                    Params p, int groups) {
  WaitForPriorKernels();
  extern __shared__ float4 smem4[];
  float* ws = reinterpret_cast<float*>(smem4);
  const int cv = p.c / VEC;
  const int tile = groups * VEC;         // channels of this block's tile
  const int c_base = blockIdx.y * tile;  // first channel of the tile
  StageWeights(wt, p, tile, c_base, ws);
  const int g = threadIdx.x % groups, per_block = blockDim.x / groups;
  const int cg = blockIdx.y * groups + g;  // this thread's channel group
  if (threadIdx.x >= per_block * groups || cg >= cv) return;
  const int c0 = cg * VEC;
  const int pixels = p.n * p.oh * p.ow;
  for (int px = blockIdx.x * per_block + threadIdx.x / groups; px < pixels; px += gridDim.x * per_block) {
    float acc[VEC];
    Accumulate<T, VEC>(
        x, p, px, c0, [&](int tap, float w[VEC]) { LoadWeights<VEC>(ws + tap * tile + g * VEC, w); }, acc);
    Store<T, VEC>(bias, z, y, p, px, c0, acc);
  }
}

// One window row into a run of R output pixels S columns apart (the run and paired tile kernels): the row's K
// weight vectors (tap kx at w_row + kx·stride in shared memory), then each of the (R-1)·S + K input columns
// once, column(col, f) filling its VEC values as float, into every output whose window holds it. The FMAs of
// each output run in kx order, as the pixel kernel's do.
template <int VEC, int K, int S, int R, class Column>
__device__ inline void AccumulateRowRun(const float* w_row, int stride, Column column, float acc[R][VEC]) {
  float w[K][VEC];
#pragma unroll
  for (int kx = 0; kx < K; ++kx) LoadWeights<VEC>(w_row + kx * stride, w[kx]);
#pragma unroll
  for (int col = 0; col < (R - 1) * S + K; ++col) {
    float f[VEC];
    column(col, f);
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int kx = col - r * S;
      if (kx < 0 || kx >= K) continue;
#pragma unroll
      for (int k = 0; k < VEC; ++k) acc[r][k] += f[k] * w[kx][k];
    }
  }
}

// Square 3x3 / 5x5 filters of stride 1 or 2 without dilation (DepthwiseRowsFit): a thread computes kRun
// consecutive output pixels of a row for its VEC channels. Each input column of a window row is loaded and
// converted once for all the run's outputs that read it ((kRun - 1)·S + K loads instead of kRun·K), a tap's
// weights come from shared memory once per run instead of once per pixel, and the bias is read once per
// thread. The FMAs run in the order DepthwiseSmemKernel's do (ky, then kx), so both give the same bits;
// a padding tap adds 0·w.
constexpr int kRun = 4;

template <class T, int VEC, int K, int S>
__global__ void __launch_bounds__(kBlock)
    DepthwiseRowsKernel(const T* __restrict__ x, const T* __restrict__ wt, const T* __restrict__ bias,
                        const T* __restrict__ z, T* __restrict__ y, Params p, int groups) {
  WaitForPriorKernels();
  extern __shared__ float4 smem4[];
  float* ws = reinterpret_cast<float*>(smem4);
  const int cv = p.c / VEC;
  const int tile = groups * VEC;
  StageWeights(wt, p, tile, blockIdx.y * tile, ws);
  const int g = threadIdx.x % groups, per_block = blockDim.x / groups;
  const int cg = blockIdx.y * groups + g;
  if (threadIdx.x >= per_block * groups || cg >= cv) return;
  const int c0 = cg * VEC;
  float b[VEC];
#pragma unroll
  for (int k = 0; k < VEC; ++k) b[k] = bias ? ToFloat(bias[c0 + k]) : 0.f;
  const int row_runs = (p.ow + kRun - 1) / kRun;
  const int runs = p.n * p.oh * row_runs;
  for (int run = blockIdx.x * per_block + threadIdx.x / groups; run < runs; run += gridDim.x * per_block) {
    const int row = static_cast<int>(Divide(p.runs_div, run));  // n · OH + oy
    const int n = static_cast<int>(Divide(p.oh_div, row));
    const int ox0 = (run - row * row_runs) * kRun, oy = row - n * p.oh;
    const int ix0 = ox0 * S - p.pw;
    float acc[kRun][VEC];
#pragma unroll
    for (int r = 0; r < kRun; ++r)
#pragma unroll
      for (int k = 0; k < VEC; ++k) acc[r][k] = 0.f;
#pragma unroll
    for (int ky = 0; ky < K; ++ky) {
      const int iy = oy * S - p.ph + ky;
      if (iy < 0 || iy >= p.h) continue;
      const T* xrow = x + (static_cast<int64_t>(n) * p.h + iy) * p.w * p.c + c0;
      AccumulateRowRun<VEC, K, S, kRun>(
          ws + ky * K * tile + g * VEC, tile,
          [&](int col, float in[VEC]) {
            const int ix = ix0 + col;
            if (ix >= 0 && ix < p.w) {
              const Pack<T, VEC> v =
                  *reinterpret_cast<const Pack<T, VEC>*>(xrow + static_cast<int64_t>(ix) * p.c);
#pragma unroll
              for (int k = 0; k < VEC; ++k) in[k] = ToFloat(v.v[k]);
            } else {
#pragma unroll
              for (int k = 0; k < VEC; ++k) in[k] = 0.f;
            }
          },
          acc);
    }
#pragma unroll
    for (int r = 0; r < kRun; ++r) {
      if (ox0 + r >= p.ow) break;
#pragma unroll
      for (int k = 0; k < VEC; ++k) acc[r][k] += b[k];
      Store<T, VEC>(nullptr, z, y, p, row * p.ow + ox0 + r, c0, acc[r]);
    }
  }
}

// 3x3 filters (any stride, padding, dilation): the pixel kernel with the thread's weights in registers
// instead of shared memory. A thread keeps one channel group for all its pixels, so it loads its 9·VEC
// weights once, straight from W (the group's rows of W [C, 3·3] are 9·VEC consecutive elements: 16-byte
// loads), and a pixel then costs only its nine input loads. On EfficientNetV2-S's 14x14x960 layers at batch
// 32 the shared-memory weights were two thirds of the pixel kernel's L1 traffic (ncu, H100). No shared
// memory, no barrier; same FMA order as the pixel kernel.
template <class T, int VEC>
__global__ void __launch_bounds__(kBlock)
    Depthwise3x3RegsKernel(const T* __restrict__ x, const T* __restrict__ wt, const T* __restrict__ bias,
                           const T* __restrict__ z, T* __restrict__ y, Params p, int groups) {
  WaitForPriorKernels();
  constexpr int kTaps = 9;
  const int cv = p.c / VEC;
  const int g = threadIdx.x % groups, per_block = blockDim.x / groups;
  const int cg = blockIdx.y * groups + g;
  if (threadIdx.x >= per_block * groups || cg >= cv) return;
  const int c0 = cg * VEC;
  float w[kTaps][VEC];
  const Pack<T, VEC>* wp = reinterpret_cast<const Pack<T, VEC>*>(wt + static_cast<int64_t>(c0) * kTaps);
#pragma unroll
  for (int j = 0; j < kTaps; ++j) {
    const Pack<T, VEC> v = wp[j];
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      const int e = j * VEC + k;  // element e of the group's rows: channel e / 9, tap e % 9
      w[e % kTaps][e / kTaps] = ToFloat(v.v[k]);
    }
  }
  float b[VEC];
#pragma unroll
  for (int k = 0; k < VEC; ++k) b[k] = bias ? ToFloat(bias[c0 + k]) : 0.f;
  const int pixels = p.n * p.oh * p.ow;
  for (int px = blockIdx.x * per_block + threadIdx.x / groups; px < pixels; px += gridDim.x * per_block) {
    float acc[VEC];
    Accumulate<T, VEC, 3>(
        x, p, px, c0,
        [&](int tap, float wk[VEC]) {
#pragma unroll
          for (int k = 0; k < VEC; ++k) wk[k] = w[tap][k];
        },
        acc);
#pragma unroll
    for (int k = 0; k < VEC; ++k) acc[k] += b[k];
    Store<T, VEC>(nullptr, z, y, p, px, c0, acc);
  }
}

// Square 3x3 / 5x5 filters of stride 1 or 2 without dilation (DepthwiseRowsFit), a block per (image,
// output tile of th x tw pixels, slice of `groups` channel groups): the block copies the input window of
// its tile ((th-1)·S + K by (tw-1)·S + K pixels of its channels, zeros where padding) into shared memory
// with cp.async (every load of the block in flight at once, no registers held, out-of-bounds rows filled
// by the copy itself), stages the slice's weights, and each thread then computes output pixels of the tile
// for one channel group from shared memory (the other kernels read each input pixel 9-25 times from L1/L2).
// Same FMA order as the pixel kernel (a padding tap adds 0·w). H100, FP16 (docs/GPU.md, 22nd session): the
// fastest on 11 of 16 suite layers (MobileNetV3's 7x7x960 5x5 at batch 1: 5.9 us against 14.1 for the pixel
// kernel), slower on EfficientNetV2-S's 14x14x960 at batch 32 (52.9 against 47.2 us). ncu on that layer puts
// this kernel and the pixel kernel alike at ~1300 instructions per thread-pixel, 5% of DRAM bandwidth:
// instruction-bound, not memory-bound.
//
// P > 1 (tactic `tile2`): a thread computes P horizontally adjacent output pixels, as the run kernel does
// from registers: each input column of a window row is read from shared memory and converted once for every
// one of the P windows that holds it, and each tap's weights are read once for the P pixels ((P-1)·S + K
// input reads and K weight reads per window row instead of P·K each). The tile's width is rounded up to a
// multiple of P in the window (its extra outputs are computed and dropped). Same FMA order.
template <class T, int VEC, int K, int S, int P>
__global__ void DepthwiseTileKernel(const T* __restrict__ x, const T* __restrict__ wt,
                                    const T* __restrict__ bias, const T* __restrict__ z, T* __restrict__ y,
                                    Params p, int groups, int th, int tw) {
  WaitForPriorKernels();
  extern __shared__ float4 smem4[];
  const int tw_runs = (tw + P - 1) / P;  // P-pixel runs across the tile (p.runs_div divides by it)
  const int ih = (th - 1) * S + K, iw = (tw_runs * P - 1) * S + K;  // the tile's input window
  const int tiles_w = (p.ow + tw - 1) / tw, tiles = ((p.oh + th - 1) / th) * tiles_w;
  const int n = blockIdx.x / tiles, t = blockIdx.x - n * tiles;
  const int oy0 = (t / tiles_w) * th, ox0 = (t % tiles_w) * tw;
  const int iy0 = oy0 * S - p.ph, ix0 = ox0 * S - p.pw;
  const int tile = groups * VEC, c_base = blockIdx.y * tile, cv = p.c / VEC;
  const int live = min(groups, cv - static_cast<int>(blockIdx.y) * groups);  // groups of this slice
  Pack<T, VEC>* in = reinterpret_cast<Pack<T, VEC>*>(smem4);  // [ih][iw][groups]
  float* ws = reinterpret_cast<float*>(in + ih * iw * groups);
  const T* xn = x + static_cast<int64_t>(n) * p.h * p.w * p.c + c_base;
  for (int i = threadIdx.x; i < ih * iw * groups; i += blockDim.x) {
    const int g = i % groups, pix = i / groups, r = pix / iw, col = pix - r * iw;
    const int iy = iy0 + r, ix = ix0 + col;
    const bool inside = g < live && iy >= 0 && iy < p.h && ix >= 0 && ix < p.w;
    const T* src = inside ? xn + (static_cast<int64_t>(iy) * p.w + ix) * p.c + g * VEC : x;
    const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(in + i));
    const int bytes = inside ? 16 : 0;  // 0: the copy writes zeros
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes));
  }
  asm volatile("cp.async.commit_group;\n" ::);
  StageWeights(wt, p, tile, c_base, ws);
  asm volatile("cp.async.wait_all;\n" ::);
  __syncthreads();
  const int g = threadIdx.x % groups, slots = blockDim.x / groups;
  if (threadIdx.x >= slots * groups || g >= live) return;
  const int c0 = c_base + g * VEC;
  float b[VEC];  // the thread's bias, read once for all its pixels
#pragma unroll
  for (int k = 0; k < VEC; ++k) b[k] = bias ? ToFloat(bias[c0 + k]) : 0.f;
  for (int q = threadIdx.x / groups; q < th * tw_runs; q += slots) {
    const int ty = static_cast<int>(Divide(p.runs_div, q)), tx = (q - ty * tw_runs) * P;
    const int oy = oy0 + ty, ox = ox0 + tx;
    if (oy >= p.oh || ox >= p.ow) continue;
    float acc[P][VEC];
#pragma unroll
    for (int r = 0; r < P; ++r)
#pragma unroll
      for (int k = 0; k < VEC; ++k) acc[r][k] = 0.f;
#pragma unroll
    for (int ky = 0; ky < K; ++ky) {
      const Pack<T, VEC>* row = in + ((ty * S + ky) * iw + tx * S) * groups + g;
      AccumulateRowRun<VEC, K, S, P>(
          ws + ky * K * tile + g * VEC, tile,
          [&](int col, float f[VEC]) {
            const Pack<T, VEC> v = row[col * groups];
#pragma unroll
            for (int k = 0; k < VEC; ++k) f[k] = ToFloat(v.v[k]);
          },
          acc);
    }
#pragma unroll
    for (int r = 0; r < P; ++r) {
      if (tx + r >= tw || ox + r >= p.ow) break;
      if (bias) {  // (without one, adding 0 would turn a -0 sum into +0)
#pragma unroll
        for (int k = 0; k < VEC; ++k) acc[r][k] += b[k];
      }
      Store<T, VEC>(nullptr, z, y, p, (n * p.oh + oy) * p.ow + ox + r, c0, acc[r]);
    }
  }
}

// One launch of a channel-tiled kernel: blockIdx.y walks tiles of up to kTileGroups channel groups (their
// weights staged in shared memory), blockIdx.x the work items (pixels or runs) a block's threads share.
template <class T, int VEC, class Kernel>
void LaunchTiled(Kernel kernel, const DepthwiseShape& s, int64_t items, const T* x, const T* w, const T* b,
                 const T* z, T* y, const Params& p, int sms, cudaStream_t stream, bool staged = true) {
  const int64_t cv = s.c / VEC;
  const int groups = static_cast<int>(cv < kTileGroups ? cv : kTileGroups);
  const int per_block = kBlock / groups;
  const unsigned tiles = static_cast<unsigned>((cv + groups - 1) / groups);
  // About one full wave of blocks (8 of 256 threads per SM), each walking its share of the items: a block
  // stages its tile's weights once for all of them.
  const int64_t want = (items + per_block - 1) / per_block;
  const int64_t cap = std::max<int64_t>(1, (int64_t{8} * sms + tiles - 1) / tiles);
  const unsigned grid_x = static_cast<unsigned>(std::min(want, cap));
  const size_t smem = staged ? static_cast<size_t>(s.kh * s.kw) * groups * VEC * sizeof(float) : 0;
  LaunchKernel(kernel, dim3(grid_x, tiles), kBlock, smem, stream, x, w, b, z, y, p, groups);
}

template <class T, int VEC, int K, int S>
void LaunchRows(const DepthwiseShape& s, const T* x, const T* w, const T* b, const T* z, T* y,
                const Params& p, int sms, cudaStream_t stream) {
  const int64_t items = s.n * s.oh * ((s.ow + kRun - 1) / kRun);
  Params q = p;
  q.runs_div = MakeFastDiv(static_cast<uint32_t>((s.ow + kRun - 1) / kRun));
  LaunchTiled<T, VEC>(DepthwiseRowsKernel<T, VEC, K, S>, s, items, x, w, b, z, y, q, sms, stream);
}

// Output tiles of at most 8x8 pixels, as even as the output size allows (14 → 2 tiles of 7), shrunk
// until the window and weights fit in 48 KB of shared memory; channel slices of at most 8 groups (128
// bytes a pixel), as even as C allows (18 groups → 3 slices of 6), halved while the grid has fewer than
// two blocks per SM (batch 1 on 7x7 or 14x14 maps). P: output pixels per thread (DepthwiseTileKernel).
template <class T, int VEC, int K, int S, int P>
void LaunchTile(const DepthwiseShape& s, const T* x, const T* w, const T* b, const T* z, T* y,
                const Params& p, int sms, cudaStream_t stream) {
  auto even = [](int64_t extent, int64_t most) {
    const int64_t count = (extent + most - 1) / most;
    return static_cast<int>((extent + count - 1) / count);
  };
  int most = 8, th = 0, tw = 0, groups = 8;
  auto runs = [&] { return (tw + P - 1) / P; };
  auto smem = [&] {
    return static_cast<size_t>(((th - 1) * S + K) * ((runs() * P - 1) * S + K)) * groups * 16 +
           static_cast<size_t>(K * K) * groups * VEC * sizeof(float);
  };
  do {
    th = even(s.oh, most), tw = even(s.ow, most);
  } while (smem() > 48 * 1024 && --most > 1);
  const int64_t cv = s.c / VEC;
  const int64_t tiles = s.n * ((s.oh + th - 1) / th) * ((s.ow + tw - 1) / tw);
  groups = even(cv, groups);
  while (groups > 1 && tiles * ((cv + groups - 1) / groups) < 2 * sms) groups /= 2;
  const int threads = std::min(512, (groups * th * runs() + 31) / 32 * 32);
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>((cv + groups - 1) / groups));
  Params q = p;
  q.runs_div = MakeFastDiv(static_cast<uint32_t>(runs()));
  LaunchKernel(DepthwiseTileKernel<T, VEC, K, S, P>, grid, threads, smem(), stream, x, w, b, z, y, q, groups,
               th, tw);
}

template <class T, int VEC>
void LaunchRegs(const DepthwiseShape& s, const T* x, const T* w, const T* b, const T* z, T* y,
                const Params& p, int sms, cudaStream_t stream) {
  LaunchTiled<T, VEC>(Depthwise3x3RegsKernel<T, VEC>, s, s.n * s.oh * s.ow, x, w, b, z, y, p, sms, stream,
                      false);
}

template <class T, int VEC>
void LaunchSmem(const DepthwiseShape& s, const T* x, const T* w, const T* b, const T* z, T* y,
                const Params& p, int sms, cudaStream_t stream) {
  LaunchTiled<T, VEC>(DepthwiseSmemKernel<T, VEC>, s, s.n * s.oh * s.ow, x, w, b, z, y, p, sms, stream);
}

// f(K, S) with the shape's filter size and stride as std::integral_constants (DepthwiseRowsFit: 3x3 or
// 5x5, stride 1 or 2), for the kernels templated on them.
template <class F>
void ForFilter(const DepthwiseShape& s, F f) {
  using Three = std::integral_constant<int, 3>;
  using Five = std::integral_constant<int, 5>;
  using One = std::integral_constant<int, 1>;
  using Two = std::integral_constant<int, 2>;
  if (s.kh == 3)
    s.stride_h == 1 ? f(Three{}, One{}) : f(Three{}, Two{});
  else
    s.stride_h == 1 ? f(Five{}, One{}) : f(Five{}, Two{});
}

template <class T>
Status Launch(const DepthwiseShape& s, const void* x, const void* w, const void* b, const void* z, void* y,
              const Params& p, DepthwiseKernel kernel, int sms, cudaStream_t stream) {
  constexpr int kWide = 16 / sizeof(T);
  auto aligned = [](const void* ptr) { return ptr == nullptr || Aligned16(ptr); };
  bool wide = s.c % kWide == 0 && aligned(x) && aligned(z) && aligned(y);
  const T* xt = static_cast<const T*>(x);
  const T* wt = static_cast<const T*>(w);
  const T* bt = static_cast<const T*>(b);
  const T* zt = static_cast<const T*>(z);
  T* yt = static_cast<T*>(y);
  if (kernel == DepthwiseKernel::kRegs && wide && aligned(w)) {
    LaunchRegs<T, kWide>(s, xt, wt, bt, zt, yt, p, sms, stream);
    return CudaStatus(cudaGetLastError(), "depthwise conv kernel");
  }
  if (kernel == DepthwiseKernel::kRows && wide) {
    ForFilter(s, [&](auto k, auto stride) {
      LaunchRows<T, kWide, decltype(k)::value, decltype(stride)::value>(s, xt, wt, bt, zt, yt, p, sms,
                                                                        stream);
    });
    return CudaStatus(cudaGetLastError(), "depthwise conv kernel");
  }
  if ((kernel == DepthwiseKernel::kTile || kernel == DepthwiseKernel::kTilePairs) && wide) {
    ForFilter(s, [&](auto k, auto stride) {
      constexpr int kK = decltype(k)::value, kS = decltype(stride)::value;
      if (kernel == DepthwiseKernel::kTile)
        LaunchTile<T, kWide, kK, kS, 1>(s, xt, wt, bt, zt, yt, p, sms, stream);
      else
        LaunchTile<T, kWide, kK, kS, 2>(s, xt, wt, bt, zt, yt, p, sms, stream);
    });
    return CudaStatus(cudaGetLastError(), "depthwise conv kernel");
  }
  if (s.kh * s.kw <= kSmemTaps) {
    if (wide)
      LaunchSmem<T, kWide>(s, xt, wt, bt, zt, yt, p, sms, stream);
    else
      LaunchSmem<T, 1>(s, xt, wt, bt, zt, yt, p, sms, stream);
    return CudaStatus(cudaGetLastError(), "depthwise conv kernel");
  }
  const int vec = wide ? kWide : 1;
  int64_t total = s.n * s.oh * s.ow * (s.c / vec);
  unsigned grid = GridFor(total, 256);
  if (wide)
    LaunchKernel(DepthwiseLargeKernel<T, kWide>, grid, 256, 0, stream, xt, wt, bt, zt, yt, p);
  else
    LaunchKernel(DepthwiseLargeKernel<T, 1>, grid, 256, 0, stream, xt, wt, bt, zt, yt, p);
  return CudaStatus(cudaGetLastError(), "depthwise conv kernel");
}

}  // namespace

bool DepthwiseRowsFit(DataType dt, const DepthwiseShape& s) {
  const bool wide_type = dt == DataType::kFloat || dt == DataType::kFloat16 || dt == DataType::kBFloat16;
  return wide_type && s.c % (16 / static_cast<int64_t>(ElementSize(dt))) == 0 && s.kh == s.kw &&
         (s.kh == 3 || s.kh == 5) && s.stride_h == s.stride_w && (s.stride_h == 1 || s.stride_h == 2) &&
         s.dil_h == 1 && s.dil_w == 1;
}

bool DepthwiseRegsFit(DataType dt, const DepthwiseShape& s) {
  const bool wide_type = dt == DataType::kFloat || dt == DataType::kFloat16 || dt == DataType::kBFloat16;
  return wide_type && s.c % (16 / static_cast<int64_t>(ElementSize(dt))) == 0 && s.kh == 3 && s.kw == 3;
}

Status LaunchDepthwiseNhwc(DataType dt, const DepthwiseShape& s, const void* x, const void* w, const void* b,
                           const void* z, void* y, const ActivationSpec& act, DepthwiseKernel kernel,
                           int sm_count, cudaStream_t stream) {
  int64_t in_elems = s.n * s.h * s.w * s.c, out_elems = s.n * s.oh * s.ow * s.c;
  if (in_elems >= (int64_t{1} << 30) || out_elems >= (int64_t{1} << 30))
    return Unsupported("depthwise conv: tensors of 2^30 elements or more are not supported on the GPU yet");
  if (out_elems == 0) return Status::Ok();
  const bool rows_like = kernel == DepthwiseKernel::kRows || kernel == DepthwiseKernel::kTile ||
                         kernel == DepthwiseKernel::kTilePairs;
  if ((rows_like && !DepthwiseRowsFit(dt, s)) ||
      (kernel == DepthwiseKernel::kRegs && !DepthwiseRegsFit(dt, s)))
    kernel = DepthwiseKernel::kPixels;
  const int sms = sm_count > 0 ? sm_count : 132;  // (an H100's, should the caller not know)
  auto i32 = [](int64_t v) { return static_cast<int>(v); };
  Params p{i32(s.n),     i32(s.h),     i32(s.w),     i32(s.c),        i32(s.oh),
           i32(s.ow),    i32(s.kh),    i32(s.kw),    i32(s.stride_h), i32(s.stride_w),
           i32(s.pad_h), i32(s.pad_w), i32(s.dil_h), i32(s.dil_w),    act};
  p.ow_div = MakeFastDiv(static_cast<uint32_t>(s.ow));
  p.oh_div = MakeFastDiv(static_cast<uint32_t>(s.oh));
  switch (dt) {
    case DataType::kFloat:
      return Launch<float>(s, x, w, b, z, y, p, kernel, sms, stream);
    case DataType::kFloat16:
      return Launch<__half>(s, x, w, b, z, y, p, kernel, sms, stream);
    case DataType::kBFloat16:
      return Launch<__nv_bfloat16>(s, x, w, b, z, y, p, kernel, sms, stream);
    default: return Unsupported("depthwise conv on " + std::string(DataTypeName(dt)) + " is not supported on the GPU");
  }
}

}  // namespace kiln::cuda
