// The general 2-D pooling kernel (see window_pool.h).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cfloat>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/window_pool.h"

namespace kiln::cuda {
namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void WindowPool2dKernel(const T* __restrict__ x, T* __restrict__ y, WindowPool2d g,
                                   int64_t total) {
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
    int64_t valid = 0, padded_h = 0, padded_w = 0;
    for (int64_t r = 0; r < g.kh; ++r) {
      const int64_t iy = y0 + r * g.dh;
      padded_h += iy >= -g.pt && iy < g.h + g.pb;
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
    for (int64_t s = 0; s < g.kw; ++s) {
      const int64_t ix = x0 + s * g.dw;
      padded_w += ix >= -g.pl && ix < g.w + g.pr;
    }
    float out;
    if (g.max) {
      out = best;
    } else {
      const int64_t count = g.count_include_pad ? padded_h * padded_w : valid;
      out = count > 0 ? sum / static_cast<float>(count) : 0.f;
    }
    y[i] = FromFloat<T>(out);
  }
}

template <class T>
void Launch(const WindowPool2d& g, const void* x, void* y, cudaStream_t stream) {
  const int64_t total = g.n * g.c * g.oh * g.ow;
  const int blocks = static_cast<int>(std::min<int64_t>((total + kThreads - 1) / kThreads, 65535 * 8));
  WindowPool2dKernel<T>
      <<<blocks, kThreads, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y), g, total);
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
