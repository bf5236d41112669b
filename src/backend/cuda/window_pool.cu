// The general 2-D pooling kernel (see window_pool.h).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cfloat>
#include <string>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/launch.h"
#include "backend/cuda/window_pool.h"

namespace kiln::cuda {
namespace {

constexpr int kThreads = 256;

// The window's taps along one axis (first, first + step, ..., k of them) that fall inside the padded X,
// [-before, extent + after): AveragePool's divisor with count_include_pad is their product over both axes.
__device__ inline int64_t TapsInPadded(int64_t first, int64_t k, int64_t step, int64_t extent, int64_t before,
                                       int64_t after) {
  int64_t n = 0;
  for (int64_t t = 0; t < k; ++t) n += first + t * step >= -before && first + t * step < extent + after;
  return n;
}

__device__ inline int64_t PaddedWindowTaps(const WindowPool2d& g, int64_t y0, int64_t x0) {
  return TapsInPadded(y0, g.kh, g.dh, g.h, g.pt, g.pb) * TapsInPadded(x0, g.kw, g.dw, g.w, g.pl, g.pr);
}

template <class T>
__global__ void WindowPool2dKernel(const T* __restrict__ x, T* __restrict__ y, WindowPool2d g,
                                   int64_t total) {
  WaitForPriorKernels();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t c, ox, oy, b;
    if (g.channels_last) {
      c = i % g.c;
      ox = (i / g.c) % g.ow;
      oy = (i / (g.c * g.ow)) % g.oh;
      b = i / (g.c * g.ow * g.oh);
    } else {
      ox = i % g.ow;
      oy = (i / g.ow) % g.oh;
      c = (i / (g.ow * g.oh)) % g.c;
      b = i / (g.ow * g.oh * g.c);
    }
    const int64_t y0 = oy * g.sh - g.pt, x0 = ox * g.sw - g.pl;
    float best = -FLT_MAX, sum = 0.f;
    bool first = true;
    int64_t valid = 0;
    for (int64_t r = 0; r < g.kh; ++r) {
      const int64_t iy = y0 + r * g.dh;
      if (iy < 0 || iy >= g.h) continue;
      for (int64_t s = 0; s < g.kw; ++s) {
        const int64_t ix = x0 + s * g.dw;
        if (ix < 0 || ix >= g.w) continue;
        const float v = ToFloat(x[g.channels_last ? ((b * g.h + iy) * g.w + ix) * g.c + c
                                                  : ((b * g.c + c) * g.h + iy) * g.w + ix]);
        if (first || v > best) best = v;
        sum += v;
        first = false;
        ++valid;
      }
    }
    float out;
    if (g.max) {
      out = best;
    } else {
      const int64_t count = g.count_include_pad ? PaddedWindowTaps(g, y0, x0) : valid;
      out = count > 0 ? sum / static_cast<float>(count) : 0.f;
    }
    y[i] = FromFloat<T>(out);
  }
}

// Channels-last with C a multiple of V = 16 / sizeof(T): one thread reads each tap's V channels as one
// 16-byte load and writes V outputs as one store (the scalar kernel above issued a load per channel and tap:
// GoogLeNet's first max pool at b32 took 0.254 ms, about 12x its bandwidth bound on the H100). Same rules.
// kMax: max or average (each does only its own arithmetic); K: a K x K window unrolled (its loads issued
// together), 0: g's window in loops. I: the index type of the output position (int32_t when it fits, for
// cheaper division). Coordinates are int32 (an extent past 2^31 is no image); offsets int64.
template <class T, int V, class I, bool kMax, int K>
__global__ void WindowPool2dVecKernel(const uint4* __restrict__ x, uint4* __restrict__ y, WindowPool2d g,
                                      I total) {
  WaitForPriorKernels();
  const I cv = static_cast<I>(g.c / V), ow = static_cast<I>(g.ow), oh = static_cast<I>(g.oh);
  const int kh = K ? K : static_cast<int>(g.kh), kw = K ? K : static_cast<int>(g.kw);
  const int h = static_cast<int>(g.h), w = static_cast<int>(g.w), dh = static_cast<int>(g.dh),
            dw = static_cast<int>(g.dw);
  const int64_t row_stride = int64_t(w) * cv;
  for (I i = blockIdx.x * I(blockDim.x) + threadIdx.x; i < total; i += I(gridDim.x) * blockDim.x) {
    const I c = i % cv, p = i / cv;
    const I ox = p % ow, q = p / ow, oy = q % oh, b = q / oh;
    const int y0 = static_cast<int>(oy * g.sh - g.pt), x0 = static_cast<int>(ox * g.sw - g.pl);
    const uint4* image = x + int64_t(b) * h * row_stride + c;
    float acc[V];
#pragma unroll
    for (int k = 0; k < V; ++k) acc[k] = 0.f;
    bool first = true;
    int valid = 0;
#pragma unroll
    for (int r = 0; r < (K ? K : kh); ++r) {
      const int iy = y0 + r * dh;
      if (iy < 0 || iy >= h) continue;
      const uint4* row = image + iy * row_stride;
#pragma unroll
      for (int s = 0; s < (K ? K : kw); ++s) {
        const int ix = x0 + s * dw;
        if (ix < 0 || ix >= w) continue;
        const uint4 raw = __ldg(row + int64_t(ix) * cv);
        const T* v = reinterpret_cast<const T*>(&raw);
#pragma unroll
        for (int k = 0; k < V; ++k) {
          const float f = ToFloat(v[k]);
          if (kMax)
            acc[k] = first || f > acc[k] ? f : acc[k];
          else
            acc[k] += f;
        }
        first = false;
        ++valid;
      }
    }
    float scale = 1.f;
    if (!kMax) {
      const int64_t count = g.count_include_pad ? PaddedWindowTaps(g, y0, x0) : valid;
      scale = count > 0 ? 1.f / static_cast<float>(count) : 0.f;
    }
    uint4 out;
    T* o = reinterpret_cast<T*>(&out);
#pragma unroll
    for (int k = 0; k < V; ++k) o[k] = FromFloat<T>(kMax ? (first ? -FLT_MAX : acc[k]) : acc[k] * scale);
    y[i] = out;
  }
}

int Blocks(int64_t total) {
  return static_cast<int>(std::min<int64_t>((total + kThreads - 1) / kThreads, 65535 * 8));
}

template <class T>
void Launch(const WindowPool2d& g, const void* x, void* y, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  if (g.channels_last && g.c % kVec == 0) {
    const int64_t total = g.n * g.oh * g.ow * (g.c / kVec);
    const auto* vx = static_cast<const uint4*>(x);
    auto* vy = static_cast<uint4*>(y);
    auto go = [&](auto index, auto is_max, auto k) {
      using I = decltype(index);
      LaunchKernel(WindowPool2dVecKernel<T, kVec, I, decltype(is_max)::value, decltype(k)::value>,
                   Blocks(total), kThreads, 0, stream, vx, vy, g, static_cast<I>(total));
    };
    auto by_window = [&](auto index, auto is_max) {
      if (g.kh == 3 && g.kw == 3)
        go(index, is_max, std::integral_constant<int, 3>{});
      else
        go(index, is_max, std::integral_constant<int, 0>{});
    };
    auto by_op = [&](auto index) {
      if (g.max)
        by_window(index, std::true_type{});
      else
        by_window(index, std::false_type{});
    };
    if (total < INT32_MAX / 2)
      by_op(int32_t{});  // i + the grid's stride stays in range
    else
      by_op(int64_t{});
    return;
  }
  const int64_t total = g.n * g.c * g.oh * g.ow;
  LaunchKernel(WindowPool2dKernel<T>, Blocks(total), kThreads, 0, stream, static_cast<const T*>(x),
               static_cast<T*>(y), g, total);
}

}  // namespace

Status LaunchWindowPool2d(DataType dt, const WindowPool2d& g, const void* x, void* y, cudaStream_t stream) {
  if (g.n * g.c * g.oh * g.ow == 0) return Status::Ok();
  switch (dt) {
    case DataType::kFloat:
      Launch<float>(g, x, y, stream);
      break;
    case DataType::kFloat16:
      Launch<__half>(g, x, y, stream);
      break;
    case DataType::kBFloat16:
      Launch<__nv_bfloat16>(g, x, y, stream);
      break;
    default:
      return Unsupported("window pooling of " + std::string(DataTypeName(dt)) + " on the GPU");
  }
  KILN_CUDA_CHECK_LAUNCH("WindowPool2dKernel");
  return Status::Ok();
}

}  // namespace kiln::cuda
