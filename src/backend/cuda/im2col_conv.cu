// kiln.Im2ColConv on the GPU (src/ops/kiln_im2col_conv.cc): a convolution of few input channels (an RGB
// stem) as an implicit matrix product that never writes its windows. A block takes a segment of up to kRows
// output pixels of one output row and kCols output channels:
//  1. the input rows its windows cover (C x R rows of TileWidth columns) into shared memory as float16,
//     coalesced along X's fastest axis (float32 converted as Cast converts, or float16; NCHW or NHWC), and
//     W's kCols rows (float16, `columns` taps each, zero-padded to a multiple of 16);
//  2. the windows built from that tile in shared memory (a thread per pixel, a per-tap offset table),
//  tap-major;
//  3. tensor-core products (WMMA 16x16x16, FP32 accumulation), each warp 16 pixels by kCols channels;
//  4. FusedConv's epilogue (bias, activation; epilogue.cuh) on the accumulators, 16-byte stores.
// The windows of ResNet-50's stem at batch 32 are 122 MB of float16 that the pair (kiln.Im2Col, then a GEMM)
// wrote and read back: 0.099 + 0.072 ms on an H100 (2026-12-07). A first version that gathered each tap from
// global memory (no tile) took 0.194 ms.
#include <cuda_fp16.h>
#include <mma.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/epilogue.cuh"
#include "backend/cuda/node_context.h"
#include "ops/im2col_plan.h"

namespace kiln::cuda {
namespace {

constexpr int kRows = 128;  // output pixels of a block
constexpr int kCols = 64;   // output channels of a block
constexpr int kWarps = kRows / 16;
constexpr int kThreads = kWarps * 32;
constexpr int kVec = 8;  // channels per epilogue store (16 bytes of float16)
constexpr int kPad = 8;  // float16 padding of shared-memory rows (WMMA wants ldm % 8 == 0)
constexpr int kMaxColumns = 256;
constexpr size_t kMaxSharedBytes = 160 << 10;  // of an H100's 227 KB a block
static_assert(kThreads % kRows == 0, "a thread gathers one pixel's taps");

struct Geometry {
  int32_t c, h, w, oh, ow, kh, kw, sh, sw, pt, pl, dh, dw, taps, columns, k;
  int64_t pixels;
  bool channels_last;
};

// Input columns of a block's tile: its kRows pixels' windows along one input row.
__host__ __device__ inline int TileWidth(const Geometry& g) {
  return (kRows - 1) * g.sw + (g.kw - 1) * g.dw + 1;
}

// Shared memory: the windows tap-major [kp][kRows + kPad] (kp: columns rounded up to 16; pixel-fastest stores
// without bank conflicts; the FP32 results [kRows][kCols + 4] reuse them), W's rows [kCols][kp + kPad], the
// taps' offsets into the tile [kp], then the tile: the input rows the windows cover, [C][R][TileWidth]
// float16.
constexpr int kLdWindows = kRows + kPad;
__host__ __device__ inline size_t WindowsBytes(int kp) {
  const size_t windows = size_t(kp) * kLdWindows * 2, results = size_t(kRows) * (kCols + 4) * 4;
  return windows > results ? windows : results;
}
__host__ __device__ inline size_t TileOffset(int kp) {
  return WindowsBytes(kp) + size_t(kCols) * (kp + kPad) * 2 + size_t(kp) * 4;
}
size_t SharedBytes(const Geometry& g, int kp) {
  return TileOffset(kp) + size_t(g.c) * g.kh * TileWidth(g) * 2;
}

template <class In>
__device__ inline __half ToHalf(In v) {
  if constexpr (std::is_same<In, __half>::value)
    return v;
  else
    return __float2half_rn(v);
}

// One block per segment of kRows output pixels of one output row (`segments` per row), kCols channels.
template <class In>
__global__ void __launch_bounds__(kThreads)
    Im2ColConvKernel(const In* __restrict__ x, const __half* __restrict__ w, const __half* __restrict__ bias,
                     __half* __restrict__ y, Geometry g, int kp, int segments, ActivationSpec act) {
  extern __shared__ __align__(128) unsigned char smem[];
  const int ld = kp + kPad;
  __half* windows = reinterpret_cast<__half*>(smem);
  __half* rows = reinterpret_cast<__half*>(smem + WindowsBytes(kp));
  int32_t* tap_at = reinterpret_cast<int32_t*>(rows + size_t(kCols) * ld);
  __half* tile = reinterpret_cast<__half*>(smem + TileOffset(kp));

  const int tid = threadIdx.x;
  const int64_t row = blockIdx.x / segments;  // b · OH + oy
  const int ox0 = (blockIdx.x % segments) * kRows;
  const int pixels = min(kRows, g.ow - ox0);
  const int oy = static_cast<int>(row % g.oh);
  const int64_t b = row / g.oh;
  const int n0 = blockIdx.y * kCols;
  const int width = TileWidth(g);
  const int iy0 = oy * g.sh - g.pt, ix0 = ox0 * g.sw - g.pl;

  // The tile, coalesced along X's fastest axis, converted as Cast converts, zeros in the padding.
  const int tile_elems = g.c * g.kh * width;
  for (int i = tid; i < tile_elems; i += kThreads) {
    int ch, r, t;
    if (g.channels_last) {
      ch = i % g.c;
      t = (i / g.c) % width;
      r = i / (g.c * width);
    } else {
      t = i % width;
      r = (i / width) % g.kh;
      ch = i / (width * g.kh);
    }
    const int iy = iy0 + r * g.dh, ix = ix0 + t;
    __half v = __float2half_rn(0.f);
    if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w)
      v = ToHalf(x[g.channels_last ? ((b * g.h + iy) * g.w + ix) * g.c + ch
                                   : ((b * g.c + ch) * g.h + iy) * g.w + ix]);
    tile[(ch * g.kh + r) * width + t] = v;
  }
  // Tap j = (r·S + s)·C + ch of a window: its offset in the tile from the pixel's first column (-1: a zero).
  for (int j = tid; j < kp; j += kThreads) {
    const int ch = j % g.c, tap = j / g.c;
    tap_at[j] = j < g.taps ? (ch * g.kh + tap / g.kw) * width + (tap % g.kw) * g.dw : -1;
  }
  // W's rows n0.., zero beyond K and beyond `columns` (16-byte chunks: columns % 8 == 0).
  const int chunks = kp / 8;
  for (int q = tid; q < kCols * chunks; q += kThreads) {
    const int n = q / chunks, k8 = q % chunks;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (n0 + n < g.k && k8 * 8 < g.columns)
      v = *reinterpret_cast<const uint4*>(w + static_cast<int64_t>(n0 + n) * g.columns + k8 * 8);
    *reinterpret_cast<uint4*>(rows + n * ld + k8 * 8) = v;
  }
  __syncthreads();
  // The windows from the tile: a thread takes one pixel's taps (kThreads is a multiple of kRows).
  const int p = tid % kRows;
  for (int j = tid / kRows; j < kp; j += kThreads / kRows) {
    const int at = tap_at[j];
    windows[j * kLdWindows + p] = at >= 0 && p < pixels ? tile[at + p * g.sw] : __float2half_rn(0.f);
  }
  __syncthreads();

  namespace wmma = nvcuda::wmma;
  const int warp = tid / 32;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kCols / 16];
#pragma unroll
  for (int t = 0; t < kCols / 16; ++t) wmma::fill_fragment(acc[t], 0.f);
  for (int k = 0; k < kp; k += 16) {
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::col_major> a;
    wmma::load_matrix_sync(a, windows + k * kLdWindows + warp * 16, kLdWindows);
#pragma unroll
    for (int t = 0; t < kCols / 16; ++t) {
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> b;
      wmma::load_matrix_sync(b, rows + t * 16 * ld + k, ld);
      wmma::mma_sync(acc[t], a, b, acc[t]);
    }
  }
  __syncthreads();  // the windows' memory now holds the results
  float* results = reinterpret_cast<float*>(smem);
  constexpr int ldc = kCols + 4;
#pragma unroll
  for (int t = 0; t < kCols / 16; ++t)
    wmma::store_matrix_sync(results + warp * 16 * ldc + t * 16, acc[t], ldc, wmma::mem_row_major);
  __syncthreads();

  constexpr int per_pixel = kCols / kVec;
  for (int q = tid; q < kRows * per_pixel; q += kThreads) {
    const int r = q / per_pixel, c = (q % per_pixel) * kVec;
    if (r >= pixels || n0 + c >= g.k) continue;
    const int64_t out = row * g.ow + ox0 + r;
    float v[kVec];
#pragma unroll
    for (int e = 0; e < kVec; ++e) v[e] = results[r * ldc + c + e];
    StoreEpilogue<__half, kVec>(bias, nullptr, y, out * g.k + n0 + c, n0 + c, v, act);
  }
}

class Im2ColConvOp final : public GpuOp {
 public:
  Im2ColConvOp(const Node& n, int64_t opset, ActivationSpec act) : node_(n), opset_(opset), act_(act) {}

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out,
                 GpuResources&) override {
    GpuNodeContext ctx(node_, opset_, &in);
    KILN_ASSIGN_OR_RETURN(Im2ColGeometry ig, Im2ColGeometryOf(ctx, in[0].dims));
    const auto& wd = in[1].dims;
    if (wd.size() != 4 || wd[1] != 1 || wd[2] != 1 || wd[3] != ig.columns)
      return ctx.Error("W must be [K, 1, 1, " + std::to_string(ig.columns) + "], got " + DimsToString(wd));
    const int64_t k = wd[0];
    if (out[0].dims != std::vector<int64_t>{ig.n, ig.oh, ig.ow, k})
      return ctx.Error("output dims " + DimsToString(out[0].dims) + " disagree with the windows and W");
    if (in[1].dtype != DataType::kFloat16 || out[0].dtype != DataType::kFloat16 ||
        (in.size() > 2 && Present(in[2]) && in[2].dtype != DataType::kFloat16) ||
        (in[0].dtype != DataType::kFloat && in[0].dtype != DataType::kFloat16))
      return ctx.UnsupportedError("runs float32/float16 X, float16 W, B and Y");
    constexpr int64_t k31 = int64_t{1} << 31;
    if (ig.columns % 8 != 0 || ig.columns > kMaxColumns || k % kVec != 0 || ig.c * ig.h * ig.w >= k31 ||
        ig.h + ig.pt + ig.kh * ig.dh >= k31 || ig.w + ig.pl + ig.kw * ig.dw >= k31)
      return ctx.UnsupportedError("columns " + std::to_string(ig.columns) + " (a multiple of 8, at most " +
                                  std::to_string(kMaxColumns) + ") and K " + std::to_string(k) +
                                  " (a multiple of 8) outside the kernel's range");
    g_ = Geometry{int32_t(ig.c),        int32_t(ig.h),      int32_t(ig.w),       int32_t(ig.oh),
                  int32_t(ig.ow),       int32_t(ig.kh),     int32_t(ig.kw),      int32_t(ig.sh),
                  int32_t(ig.sw),       int32_t(ig.pt),     int32_t(ig.pl),      int32_t(ig.dh),
                  int32_t(ig.dw),       int32_t(ig.taps()), int32_t(ig.columns), int32_t(k),
                  ig.n * ig.oh * ig.ow, ig.channels_last};
    kp_ = static_cast<int>((ig.columns + 15) / 16 * 16);
    half_input_ = in[0].dtype == DataType::kFloat16;
    const size_t smem = SharedBytes(g_, kp_);
    if (smem > kMaxSharedBytes)
      return ctx.UnsupportedError("the windows' input rows (" + std::to_string(smem) +
                                  " bytes of shared memory with the rest) exceed the kernel's " +
                                  std::to_string(kMaxSharedBytes));
    const void* kernel = half_input_ ? reinterpret_cast<const void*>(Im2ColConvKernel<__half>)
                                     : reinterpret_cast<const void*>(Im2ColConvKernel<float>);
    KILN_CUDA_RETURN_IF_ERROR(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    return Status::Ok();
  }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    if (g_.pixels == 0 || g_.k == 0) return Status::Ok();
    const int segments = (g_.ow + kRows - 1) / kRows;
    const int64_t blocks = g_.pixels / g_.ow * segments;
    if (blocks >= (int64_t{1} << 31))
      return Unsupported(node_.Label() + ": too many output rows for one grid");
    const dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>((g_.k + kCols - 1) / kCols));
    const auto* w = static_cast<const __half*>(in[1].data);
    const auto* b = in.size() > 2 && Present(in[2]) ? static_cast<const __half*>(in[2].data) : nullptr;
    auto* y = static_cast<__half*>(out[0].data);
    const size_t smem = SharedBytes(g_, kp_);
    if (half_input_)
      Im2ColConvKernel<__half><<<grid, kThreads, smem, stream>>>(static_cast<const __half*>(in[0].data), w, b,
                                                                 y, g_, kp_, segments, act_);
    else
      Im2ColConvKernel<float><<<grid, kThreads, smem, stream>>>(static_cast<const float*>(in[0].data), w, b,
                                                                y, g_, kp_, segments, act_);
    KILN_CUDA_CHECK_LAUNCH("Im2ColConvKernel");
    return Status::Ok();
  }

 private:
  const Node& node_;
  const int64_t opset_;
  const ActivationSpec act_;
  Geometry g_{};
  int kp_ = 16;
  bool half_input_ = false;
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeIm2ColConvOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  if (n.num_inputs() < 2 || n.num_inputs() > 3 || !n.input(0) || !n.input(1))
    return InvalidArgument(n.Label() + ": Im2ColConv needs X, W and an optional B");
  KILN_ASSIGN_OR_RETURN(ActivationSpec act, ReadFusedActivation(n));
  return std::unique_ptr<GpuOp>(new Im2ColConvOp(n, info.opset, act));
}

}  // namespace kiln::cuda
