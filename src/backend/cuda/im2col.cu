// kiln.Im2Col on the GPU (src/ops/im2col_plan.h). Elements are moved as
// 1/2/4/8-byte words, so any type runs; with attribute `to`, float32/float16/
// bfloat16 X is converted to A's float type as it is gathered (the Cast that
// src/passes/cast_into_im2col.cc folds in).
//  - Tiles (A's rows of 16-byte chunks, the window's input rows fit 48 KB of
//    shared memory: every stem): one block per output row, or per part of one
//    (up to 128 pixels). It loads the input rows their windows cover, all
//    channels, once and coalesced (converted, zeros in the padding; several
//    loads in flight a thread), then writes the pixels' rows of A, one
//    contiguous range, 16 bytes a thread, through a column → tile offset table.
//  - Otherwise, rows of 16-byte chunks: one thread per chunk gathers its words
//    (the window's taps in order, stepping channel → column → row without
//    dividing) from global memory.
//  - Otherwise one thread per element, copying (converting) what
//    Im2ColSourceAt (the CPU reference's own map) names.
// 32-bit index arithmetic when every index fits. ResNet-50's stem windows at
// batch 32 on an H100 (122 MB written): 0.55 ms one thread per element, 0.136
// ms by chunks, plus 0.058 ms for the FP16 Cast of the input before it.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/im2col.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/launch.h"
#include "backend/cuda/node_context.h"
#include "ops/im2col_plan.h"

namespace kiln::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxTilePixels = 128;      // output pixels of one row per tile block, at most
constexpr int64_t kMinTilePixels = 8;        // fewer: the chunked gather
constexpr int64_t kMaxTileBytes = 48 << 10;  // the default dynamic shared memory limit

// The geometry of im2col_plan.h in 32-bit arithmetic (its field names, for Im2ColTap/Im2ColSourceAt).
struct Geometry32 {
  int32_t c, h, w, oh, ow, kh, kw, sh, sw, pt, pl, dh, dw, columns;
  bool channels_last;
};

// X's element as A's: the word itself when the types are the same, else Cast's conversion.
template <class In, class Out>
__device__ inline Out Convert(In v) {
  if constexpr (std::is_same<In, Out>::value) return v;
  else return FromFloat<Out>(ToFloat(v));
}

// One thread per element of A; I the index type, G the geometry in it.
template <class I, class In, class Out, class G>
__global__ void Im2ColKernel(const In* __restrict__ x, Out* __restrict__ a, G g, int64_t total) {
  WaitForPriorKernels();
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    const I from = Im2ColSourceAt<I>(g, static_cast<I>(k));
    a[k] = from >= 0 ? Convert<In, Out>(x[from]) : Out{};
  }
}

template <class Word>
__global__ void Im2ColChunkKernel(const Word* __restrict__ x, uint4* __restrict__ a, Geometry32 g, int64_t chunks) {
  WaitForPriorKernels();
  constexpr int kVec = 16 / sizeof(Word);
  const int32_t per_row = g.columns / kVec, taps = g.kh * g.kw * g.c;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < chunks; k += int64_t(gridDim.x) * blockDim.x) {
    const int32_t i = static_cast<int32_t>(k);
    const int32_t pixel = i / per_row, j0 = (i % per_row) * kVec;
    const int32_t ox = pixel % g.ow, rest = pixel / g.ow, oy = rest % g.oh, b = rest / g.oh;
    int32_t ch = j0 % g.c, tap = j0 / g.c;
    int32_t s = tap % g.kw, r = tap / g.kw;
    union {
      uint4 v;
      Word w[kVec];
    } out;
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
      const int32_t from = j0 + e < taps ? Im2ColTap<int32_t>(g, b, oy, ox, r, s, ch) : -1;
      out.w[e] = from >= 0 ? x[from] : Word(0);
      if (++ch == g.c) {
        ch = 0;
        if (++s == g.kw) {
          s = 0;
          ++r;
        }
      }
    }
    a[i] = out.v;
  }
}

// The tile kernel's shape: `pixels` output pixels of one row per block, reading `width` input columns.
struct TilePlan {
  int32_t pixels = 0, tiles_x = 0, width = 0;
  int64_t smem_bytes = 0;  // A's column offsets into the tile (int32), then the tile
};

// Up to kMaxTilePixels pixels a block (the row split evenly), fewer when the tile would not fit; pixels 0:
// none fits.
TilePlan PlanTiles(const Im2ColGeometry& g, size_t word) {
  TilePlan t;
  const int64_t offsets = (g.columns + 3) / 4 * 16;  // int32 each, 16-byte aligned
  for (int64_t tiles_x = (g.ow + kMaxTilePixels - 1) / kMaxTilePixels; tiles_x <= g.ow; tiles_x *= 2) {
    const int64_t pixels = (g.ow + tiles_x - 1) / tiles_x;
    if (pixels < kMinTilePixels) break;
    const int64_t width = (pixels - 1) * g.sw + (g.kw - 1) * g.dw + 1;
    const int64_t bytes = offsets + g.c * g.kh * width * int64_t(word);
    if (bytes <= kMaxTileBytes) {
      t.pixels = static_cast<int32_t>(pixels);
      t.tiles_x = static_cast<int32_t>((g.ow + pixels - 1) / pixels);
      t.width = static_cast<int32_t>(width);
      t.smem_bytes = bytes;
      return t;
    }
  }
  return t;
}

// Block (tile x, output row b·OH + oy): A's column → tile offset table, then the input rows of that row's
// windows, [C][R][width] words of A's type (Raw: A's word), then the tile's pixels of A in 16-byte chunks.
template <class In, class Out, class Raw>
__global__ void Im2ColTileKernel(const In* __restrict__ x, uint4* __restrict__ a, Geometry32 g, TilePlan t) {
  WaitForPriorKernels();
  static_assert(sizeof(Out) == sizeof(Raw), "Raw holds Out's bits");
  constexpr int kUnroll = 4;  // loads in flight per thread
  extern __shared__ uint4 smem[];
  int32_t* offset = reinterpret_cast<int32_t*>(smem);  // A's column j reads tile[offset[j] + pixel·sw], or 0 (-1)
  Raw* tile = reinterpret_cast<Raw*>(smem + (g.columns + 3) / 4);
  const int32_t row = blockIdx.x / t.tiles_x, ox0 = (blockIdx.x % t.tiles_x) * t.pixels;
  const int32_t oy = row % g.oh, b = row / g.oh, pixels = min(t.pixels, g.ow - ox0);
  const int32_t iy0 = oy * g.sh - g.pt, ix0 = ox0 * g.sw - g.pl, loads = g.c * g.kh * t.width;
  const int32_t taps = g.kh * g.kw * g.c;
  for (int32_t j = threadIdx.x; j < g.columns; j += blockDim.x) {
    const int32_t ch = j % g.c, tap = j / g.c;
    offset[j] = j < taps ? (ch * g.kh + tap / g.kw) * t.width + (tap % g.kw) * g.dw : -1;
  }
  for (int32_t t0 = threadIdx.x; t0 < loads; t0 += kUnroll * blockDim.x) {
    Raw word[kUnroll];
    int32_t at[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int32_t i = t0 + u * blockDim.x;
      int32_t ch, r, col;  // consecutive threads read consecutive addresses of X
      if (g.channels_last) {
        ch = i % g.c;
        col = (i / g.c) % t.width;
        r = i / (g.c * t.width);
      } else {
        col = i % t.width;
        r = (i / t.width) % g.kh;
        ch = i / (t.width * g.kh);
      }
      const int32_t iy = iy0 + r * g.dh, ix = ix0 + col;
      at[u] = i < loads ? (ch * g.kh + r) * t.width + col : -1;
      word[u] = Raw(0);
      if (at[u] >= 0 && iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) {
        const Out v = Convert<In, Out>(x[g.channels_last ? ((b * g.h + iy) * g.w + ix) * g.c + ch
                                                         : ((b * g.c + ch) * g.h + iy) * g.w + ix]);
        memcpy(&word[u], &v, sizeof(Raw));
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      if (at[u] >= 0) tile[at[u]] = word[u];
  }
  __syncthreads();
  constexpr int kVec = 16 / sizeof(Raw);
  const int32_t per_pixel = g.columns / kVec;
  uint4* dst = a + (static_cast<int64_t>(row) * g.ow + ox0) * per_pixel;
  for (int32_t q = threadIdx.x; q < pixels * per_pixel; q += blockDim.x) {
    const int32_t p = q / per_pixel, j0 = (q - p * per_pixel) * kVec, base = p * g.sw;
    union {
      uint4 v;
      Raw w[kVec];
    } out;
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
      const int32_t o = offset[j0 + e];
      out.w[e] = o >= 0 ? tile[o + base] : Raw(0);
    }
    dst[q] = out.v;
  }
}

// In, Out: X's and A's element types (the same word type for a plain gather); Raw: A's word.
template <class In, class Out, class Raw>
void Launch(const Im2ColGeometry& g, const void* x, void* a, cudaStream_t stream) {
  const int64_t total = g.elements();
  const int blocks = static_cast<int>(std::min<int64_t>((total + kThreads - 1) / kThreads, 65535 * 8));
  const auto* xin = static_cast<const In*>(x);
  // 32-bit when every index and every tap coordinate (up to extent + pad + dilated kernel) fits.
  constexpr int64_t k32 = int64_t{1} << 31;
  const int64_t x_elements = g.n * g.c * g.h * g.w;
  const bool fits = total < k32 && x_elements < k32 && g.h + g.pt + g.kh * g.dh < k32 &&
                    g.w + g.pl + g.kw * g.dw < k32 && g.oh * g.sh < k32 && g.ow * g.sw < k32;
  if (!fits) {
    LaunchKernel(Im2ColKernel<int64_t, In, Out, Im2ColGeometry>, blocks, kThreads, 0, stream, xin,
                 static_cast<Out*>(a), g, total);
    return;
  }
  Geometry32 s{int32_t(g.c),  int32_t(g.h),  int32_t(g.w),  int32_t(g.oh), int32_t(g.ow),
               int32_t(g.kh), int32_t(g.kw), int32_t(g.sh), int32_t(g.sw), int32_t(g.pt),
               int32_t(g.pl), int32_t(g.dh), int32_t(g.dw), int32_t(g.columns), g.channels_last};
  const bool chunked = (g.columns * sizeof(Raw)) % 16 == 0 && reinterpret_cast<uintptr_t>(a) % 16 == 0;
  const TilePlan t = chunked ? PlanTiles(g, sizeof(Raw)) : TilePlan{};
  const int64_t tiles = g.n * g.oh * t.tiles_x;
  if (t.pixels > 0 && tiles < k32) {
    LaunchKernel(Im2ColTileKernel<In, Out, Raw>, static_cast<unsigned>(tiles), kThreads, t.smem_bytes, stream,
                 xin, static_cast<uint4*>(a), s, t);
    return;
  }
  if constexpr (std::is_same<In, Out>::value) {
    if (chunked) {
      const int64_t chunks = total * int64_t(sizeof(Raw)) / 16;
      const int chunk_blocks = static_cast<int>(std::min<int64_t>((chunks + kThreads - 1) / kThreads, 65535 * 8));
      LaunchKernel(Im2ColChunkKernel<In>, chunk_blocks, kThreads, 0, stream, xin, static_cast<uint4*>(a), s,
                   chunks);
      return;
    }
  }
  LaunchKernel(Im2ColKernel<int32_t, In, Out, Geometry32>, blocks, kThreads, 0, stream, xin,
               static_cast<Out*>(a), s, total);
}

// The converting gathers: X float32/float16/bfloat16 to A's float type. False for other types.
template <class In>
bool LaunchConverting(DataType out, const Im2ColGeometry& g, const void* x, void* a, cudaStream_t stream) {
  switch (out) {
    case DataType::kFloat: Launch<In, float, uint32_t>(g, x, a, stream); return true;
    case DataType::kFloat16: Launch<In, __half, uint16_t>(g, x, a, stream); return true;
    case DataType::kBFloat16: Launch<In, __nv_bfloat16, uint16_t>(g, x, a, stream); return true;
    default: return false;
  }
}

class Im2ColOp final : public GpuOp {
 public:
  Im2ColOp(const Node& n, int64_t opset) : node_(n), opset_(opset) {}

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources&) override {
    GpuNodeContext ctx(node_, opset_, &in);
    KILN_ASSIGN_OR_RETURN(g_, Im2ColGeometryOf(ctx, in[0].dims));
    if (out[0].dims != std::vector<int64_t>{g_.n, g_.oh, g_.ow, g_.columns})
      return ctx.Error("output dims " + DimsToString(out[0].dims) + " disagree with the geometry");
    from_ = in[0].dtype;
    to_ = out[0].dtype;
    word_ = ElementSize(from_);
    if (from_ != to_) {
      auto is_float = [](DataType t) {
        return t == DataType::kFloat || t == DataType::kFloat16 || t == DataType::kBFloat16;
      };
      if (is_float(from_) && is_float(to_)) return Status::Ok();
      return Unsupported(node_.Label() + ": converting " + std::string(DataTypeName(from_)) + " to " +
                         std::string(DataTypeName(to_)) + " on the GPU");
    }
    if (word_ != 1 && word_ != 2 && word_ != 4 && word_ != 8) return UnsupportedType(node_, from_);
    return Status::Ok();
  }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    if (g_.elements() == 0) return Status::Ok();
    if (from_ != to_) {
      bool launched = false;
      switch (from_) {
        case DataType::kFloat: launched = LaunchConverting<float>(to_, g_, in[0].data, out[0].data, stream); break;
        case DataType::kFloat16: launched = LaunchConverting<__half>(to_, g_, in[0].data, out[0].data, stream); break;
        case DataType::kBFloat16:
          launched = LaunchConverting<__nv_bfloat16>(to_, g_, in[0].data, out[0].data, stream);
          break;
        default: break;
      }
      if (!launched) return Internal(node_.Label() + ": no converting gather for these types");
      return CudaStatus(cudaGetLastError(), "im2col kernel");
    }
    return LaunchIm2Col(from_, g_, in[0].data, out[0].data, stream).WithPrefix(node_.Label());
  }

 private:
  const Node& node_;
  int64_t opset_;
  Im2ColGeometry g_;
  DataType from_ = DataType::kUndefined, to_ = DataType::kUndefined;
  size_t word_ = 0;
};

}  // namespace

Status LaunchIm2Col(DataType dt, const Im2ColGeometry& g, const void* x, void* a, cudaStream_t stream) {
  if (g.elements() == 0) return Status::Ok();
  switch (ElementSize(dt)) {
    case 1: Launch<uint8_t, uint8_t, uint8_t>(g, x, a, stream); break;
    case 2: Launch<uint16_t, uint16_t, uint16_t>(g, x, a, stream); break;
    case 4: Launch<uint32_t, uint32_t, uint32_t>(g, x, a, stream); break;
    case 8: Launch<uint64_t, uint64_t, uint64_t>(g, x, a, stream); break;
    default: return Unsupported("im2col of " + std::string(DataTypeName(dt)) + " on the GPU");
  }
  return CudaStatus(cudaGetLastError(), "im2col kernel");
}

Expected<std::unique_ptr<GpuOp>> MakeIm2ColOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(new Im2ColOp(*info.node, info.opset));
}

}  // namespace kiln::cuda
