// Times each channels-last depthwise kernel (src/backend/cuda/depthwise.h) on the depthwise layers of the
// CNN rows of the suite (EfficientNetV2-S, MobileNetV2/V3, at batch 1 and 32; FP16), side by side in one
// run: microseconds per launch (median of 5 rounds of 50 launches between CUDA events) and the bandwidth
// that time means for one read of X and one write of Y. Not a test: conv.cc picks among these by timing at
// build; this shows by how much, per layer. cmake --build build --target kiln_depthwise_bench; on the GPU
// machine: tools/device-run.sh gpu-bin depthwise. `--once [i,j,..]`: one launch of each kernel on layers i, j
// (all by default), untimed, for a profiler (ncu --kernel-name regex:Depthwise).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "backend/cuda/depthwise.h"

namespace kiln::cuda {
namespace {

struct Layer {
  const char* model;
  int64_t n, hw, c, k, stride;
};

DepthwiseShape ShapeOf(const Layer& l) {
  DepthwiseShape s;
  s.n = l.n, s.h = s.w = l.hw, s.c = l.c, s.kh = s.kw = l.k;
  s.stride_h = s.stride_w = l.stride, s.pad_h = s.pad_w = l.k / 2;
  s.oh = s.ow = (l.hw + 2 * s.pad_h - l.k) / l.stride + 1;
  return s;
}

// Microseconds per launch, median of 5 rounds; negative when a launch fails.
float Time(const DepthwiseShape& s, DepthwiseKernel kernel, void* x, void* w, void* b, void* y, int sms,
           cudaStream_t stream, bool once) {
  const ActivationSpec act{Activation::kSwish};
  auto launch = [&] {
    return LaunchDepthwiseNhwc(DataType::kFloat16, s, x, w, b, nullptr, y, act, kernel, sms, stream).ok();
  };
  for (int i = 0; i < (once ? 1 : 3); ++i)
    if (!launch()) return -1.f;
  if (once) return cudaStreamSynchronize(stream) == cudaSuccess ? 0.f : -1.f;
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  std::vector<float> rounds;
  for (int r = 0; r < 5; ++r) {
    cudaEventRecord(start, stream);
    for (int i = 0; i < 50; ++i) launch();
    cudaEventRecord(stop, stream);
    cudaEventSynchronize(stop);
    float ms = 0.f;
    cudaEventElapsedTime(&ms, start, stop);
    rounds.push_back(ms * 1000.f / 50.f);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(rounds.begin(), rounds.end());
  return cudaGetLastError() == cudaSuccess ? rounds[2] : -1.f;
}

int Main(int argc, char** argv) {
  const bool once = argc > 1 && std::string(argv[1]) == "--once";
  std::vector<int> only;  // layer indices; empty: all
  if (once && argc > 2)
    for (const char* p = argv[2]; *p;) {
      char* end = nullptr;
      only.push_back(static_cast<int>(std::strtol(p, &end, 10)));
      p = *end ? end + 1 : end;
    }
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("no CUDA device\n");
    return 1;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  std::printf("%s\n", prop.name);
  const std::vector<Layer> layers = {
      {"efficientnet_v2_s", 32, 28, 512, 3, 2}, {"efficientnet_v2_s", 32, 14, 960, 3, 1},
      {"efficientnet_v2_s", 32, 7, 1536, 3, 1}, {"efficientnet_v2_s", 1, 14, 960, 3, 1},
      {"efficientnet_v2_s", 1, 7, 1536, 3, 1},  {"mobilenet_v2", 32, 112, 96, 3, 2},
      {"mobilenet_v2", 32, 56, 144, 3, 1},      {"mobilenet_v2", 32, 28, 192, 3, 1},
      {"mobilenet_v2", 32, 14, 384, 3, 1},      {"mobilenet_v2", 32, 7, 960, 3, 1},
      {"mobilenet_v2", 1, 56, 144, 3, 1},       {"mobilenet_v2", 1, 14, 576, 3, 1},
      {"mobilenet_v3_large", 32, 56, 72, 5, 2}, {"mobilenet_v3_large", 32, 28, 120, 5, 1},
      {"mobilenet_v3_large", 32, 7, 960, 5, 1}, {"mobilenet_v3_large", 1, 7, 960, 5, 1},
  };
  const std::vector<std::pair<const char*, DepthwiseKernel>> kernels = {
      {"pixels", DepthwiseKernel::kPixels},
      {"rows", DepthwiseKernel::kRows},
      {"regs", DepthwiseKernel::kRegs},
      {"tile", DepthwiseKernel::kTile},
      {"tile2", DepthwiseKernel::kTilePairs}};
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  std::printf("%-20s %3s %4s %5s %2s %2s", "model", "n", "hw", "c", "k", "s");
  for (const auto& [name, kernel] : kernels) std::printf(" %9s", name);
  std::printf("   (us per launch; best GB/s)\n");
  for (size_t i = 0; i < layers.size(); ++i) {
    if (!only.empty() && std::find(only.begin(), only.end(), static_cast<int>(i)) == only.end()) continue;
    const Layer& l = layers[i];
    const DepthwiseShape s = ShapeOf(l);
    const size_t x_bytes = s.n * s.h * s.w * s.c * 2, y_bytes = s.n * s.oh * s.ow * s.c * 2;
    void *x = nullptr, *w = nullptr, *b = nullptr, *y = nullptr;
    cudaMalloc(&x, x_bytes);
    cudaMalloc(&w, s.c * s.kh * s.kw * 2);
    cudaMalloc(&b, s.c * 2);
    cudaMalloc(&y, y_bytes);
    cudaMemset(x, 0, x_bytes), cudaMemset(w, 0, s.c * s.kh * s.kw * 2), cudaMemset(b, 0, s.c * 2);
    std::printf("%-20s %3ld %4ld %5ld %2ld %2ld", l.model, static_cast<long>(l.n), static_cast<long>(l.hw),
                static_cast<long>(l.c), static_cast<long>(l.k), static_cast<long>(l.stride));
    float best = 1e30f;
    for (const auto& [name, kernel] : kernels) {
      const bool fits = kernel == DepthwiseKernel::kPixels ||
                        (kernel == DepthwiseKernel::kRegs ? DepthwiseRegsFit(DataType::kFloat16, s)
                                                          : DepthwiseRowsFit(DataType::kFloat16, s));
      if (!fits) {
        std::printf(" %9s", "-");
        continue;
      }
      const float us = Time(s, kernel, x, w, b, y, prop.multiProcessorCount, stream, once);
      if (us > 0) best = std::min(best, us);
      std::printf(" %9.2f", us);
    }
    std::printf("   %.0f\n", (x_bytes + y_bytes) / (best * 1e3));
    cudaFree(x), cudaFree(w), cudaFree(b), cudaFree(y);
  }
  cudaStreamDestroy(stream);
  return 0;
}

}  // namespace
}  // namespace kiln::cuda

int main(int argc, char** argv) { return kiln::cuda::Main(argc, argv); }
