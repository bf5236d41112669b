// Depthwise NHWC convolution with the FusedConv epilogue (see depthwise.h).
#include "backend/cuda/depthwise.h"

#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/epilogue.cuh"
#include "backend/cuda/kernel_util.cuh"

namespace kiln::cuda {
namespace {

struct Params {
  int n, h, w, c, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw;
  ActivationSpec act;
};

// acc[k] = Σ over the window of output pixel `px` (flat over [N, OH, OW]) of
// x[.., c0 + k] · w, with weights(tap, w) filling the VEC weights of a tap.
template <class T, int VEC, class Weights>
__device__ inline void Accumulate(const T* __restrict__ x, const Params& p, int px, int c0, Weights weights,
                                  float acc[VEC]) {
  const int ox = px % p.ow, oy = (px / p.ow) % p.oh, b = px / (p.ow * p.oh);
#pragma unroll
  for (int k = 0; k < VEC; ++k) acc[k] = 0.f;
  for (int ky = 0; ky < p.kh; ++ky) {
    const int iy = oy * p.sh - p.ph + ky * p.dh;
    if (iy < 0 || iy >= p.h) continue;
    for (int kx = 0; kx < p.kw; ++kx) {
      const int ix = ox * p.sw - p.pw + kx * p.dw;
      if (ix < 0 || ix >= p.w) continue;
      const Pack<T, VEC> in = *reinterpret_cast<const Pack<T, VEC>*>(
          x + ((static_cast<int64_t>(b) * p.h + iy) * p.w + ix) * p.c + c0);
      float w[VEC];
      weights(ky * p.kw + kx, w);
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
__global__ void DepthwiseKernel(const T* __restrict__ x, const T* __restrict__ wt, const T* __restrict__ bias,
                                const T* __restrict__ z, T* __restrict__ y, Params p) {
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

template <class T, int VEC>
__global__ void DepthwiseSmemKernel(const T* __restrict__ x, const T* __restrict__ wt,
                                    const T* __restrict__ bias, const T* __restrict__ z, T* __restrict__ y,
                                    Params p, int groups) {
  extern __shared__ float4 smem4[];
  float* ws = reinterpret_cast<float*>(smem4);
  const int cv = p.c / VEC;
  const int tile = groups * VEC;         // channels of this block's tile
  const int c_base = blockIdx.y * tile;  // first channel of the tile
  const int taps = p.kh * p.kw;
  for (int i = threadIdx.x; i < taps * tile; i += blockDim.x) {
    const int tap = i / tile, c = c_base + i % tile;
    ws[i] = c < p.c ? ToFloat(wt[c * taps + tap]) : 0.f;
  }
  __syncthreads();
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

template <class T, int VEC>
void LaunchSmem(const DepthwiseShape& s, const T* x, const T* w, const T* b, const T* z, T* y,
                const Params& p, cudaStream_t stream) {
  const int64_t cv = s.c / VEC;
  const int groups = static_cast<int>(cv < kTileGroups ? cv : kTileGroups);
  const int per_block = kBlock / groups;
  const unsigned tiles = static_cast<unsigned>((cv + groups - 1) / groups);
  const int64_t pixels = s.n * s.oh * s.ow;
  // Enough blocks to fill the GPU several times over; each walks its share of the pixels.
  const int64_t want = (pixels + per_block - 1) / per_block;
  const unsigned grid_x = static_cast<unsigned>(want < 4096 ? want : 4096);
  const size_t smem = static_cast<size_t>(s.kh * s.kw) * groups * VEC * sizeof(float);
  DepthwiseSmemKernel<T, VEC><<<dim3(grid_x, tiles), kBlock, smem, stream>>>(x, w, b, z, y, p, groups);
}

template <class T>
Status Launch(const DepthwiseShape& s, const void* x, const void* w, const void* b, const void* z, void* y,
              const Params& p, cudaStream_t stream) {
  constexpr int kWide = 16 / sizeof(T);
  auto aligned = [](const void* ptr) { return ptr == nullptr || reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
  bool wide = s.c % kWide == 0 && aligned(x) && aligned(z) && aligned(y);
  const T* xt = static_cast<const T*>(x);
  const T* wt = static_cast<const T*>(w);
  const T* bt = static_cast<const T*>(b);
  const T* zt = static_cast<const T*>(z);
  T* yt = static_cast<T*>(y);
  if (s.kh * s.kw <= kSmemTaps) {
    if (wide)
      LaunchSmem<T, kWide>(s, xt, wt, bt, zt, yt, p, stream);
    else
      LaunchSmem<T, 1>(s, xt, wt, bt, zt, yt, p, stream);
    return CudaStatus(cudaGetLastError(), "depthwise conv kernel");
  }
  const int vec = wide ? kWide : 1;
  int64_t total = s.n * s.oh * s.ow * (s.c / vec);
  unsigned grid = GridFor(total, 256);
  if (wide)
    DepthwiseKernel<T, kWide><<<grid, 256, 0, stream>>>(xt, wt, bt, zt, yt, p);
  else
    DepthwiseKernel<T, 1><<<grid, 256, 0, stream>>>(xt, wt, bt, zt, yt, p);
  return CudaStatus(cudaGetLastError(), "depthwise conv kernel");
}

}  // namespace

Status LaunchDepthwiseNhwc(DataType dt, const DepthwiseShape& s, const void* x, const void* w, const void* b,
                           const void* z, void* y, const ActivationSpec& act, cudaStream_t stream) {
  int64_t in_elems = s.n * s.h * s.w * s.c, out_elems = s.n * s.oh * s.ow * s.c;
  if (in_elems >= (int64_t{1} << 30) || out_elems >= (int64_t{1} << 30))
    return Unsupported("depthwise conv: tensors of 2^30 elements or more are not supported on the GPU yet");
  if (out_elems == 0) return Status::Ok();
  Params p{static_cast<int>(s.n),  static_cast<int>(s.h),      static_cast<int>(s.w),      static_cast<int>(s.c),
           static_cast<int>(s.oh), static_cast<int>(s.ow),     static_cast<int>(s.kh),     static_cast<int>(s.kw),
           static_cast<int>(s.stride_h), static_cast<int>(s.stride_w), static_cast<int>(s.pad_h),
           static_cast<int>(s.pad_w), static_cast<int>(s.dil_h), static_cast<int>(s.dil_w), act};
  switch (dt) {
    case DataType::kFloat: return Launch<float>(s, x, w, b, z, y, p, stream);
    case DataType::kFloat16: return Launch<__half>(s, x, w, b, z, y, p, stream);
    case DataType::kBFloat16: return Launch<__nv_bfloat16>(s, x, w, b, z, y, p, stream);
    default: return Unsupported("depthwise conv on " + std::string(DataTypeName(dt)) + " is not supported on the GPU");
  }
}

}  // namespace kiln::cuda
