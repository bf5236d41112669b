// The channels-last depthwise kernels (src/backend/cuda/depthwise.h) against a host computation in double:
// the pixel kernel, and the run, register and tile kernels where they fit, on the same operands; those must
// agree with the pixel kernel bit for bit (they keep its order of FMAs). conv.cc runs whichever times
// fastest, so the op harness may see only one of them: this test runs each. Shapes: MobileNet's and
// EfficientNet's 3x3 / 5x5 at stride 1 and 2, rows whose width is not a multiple of the run, asymmetric
// padding, channel counts of one vector and of more than one tile, every epilogue, FP32 and FP16. Skipped
// without a GPU.
#include "backend/cuda/depthwise.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernel_test_util.h"

namespace kiln::cuda {
namespace {

using namespace test;  // NOLINT: kernel_test_util.h's helpers

DepthwiseShape Shape(int64_t n, int64_t hw, int64_t c, int64_t k, int64_t stride, int64_t pad_h,
                     int64_t pad_w) {
  DepthwiseShape s;
  s.n = n, s.h = hw, s.w = hw + 3, s.c = c, s.kh = k, s.kw = k;  // W ≠ H: rows and columns are not swapped
  s.stride_h = s.stride_w = stride, s.pad_h = pad_h, s.pad_w = pad_w;
  s.oh = (s.h + 2 * pad_h - k) / stride + 1;
  s.ow = (s.w + 2 * pad_w - k) / stride + 1;
  return s;
}

// s with dilation d (and the output size that follows).
DepthwiseShape Dilated(DepthwiseShape s, int64_t d) {
  s.dil_h = s.dil_w = d;
  s.oh = (s.h + 2 * s.pad_h - d * (s.kh - 1) - 1) / s.stride_h + 1;
  s.ow = (s.w + 2 * s.pad_w - d * (s.kw - 1) - 1) / s.stride_w + 1;
  return s;
}

// Y of one kernel, read back.
std::vector<float> Run(DepthwiseKernel kernel, bool half, const DepthwiseShape& s, const Buf& x, const Buf& w,
                       const Buf* b, const Buf* z, const ActivationSpec& act) {
  const DataType dt = half ? DataType::kFloat16 : DataType::kFloat;
  std::vector<float> got(static_cast<size_t>(s.n * s.oh * s.ow * s.c));
  Buf y;
  EXPECT_EQ(cudaMalloc(&y.p, got.size() * (half ? 2 : 4)), cudaSuccess);
  Status st = LaunchDepthwiseNhwc(dt, s, x.p, w.p, b ? b->p : nullptr, z ? z->p : nullptr, y.p, act, kernel,
                                  SmCount(), nullptr);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  Download(y, &got, half);
  return got;
}

void RunCase(bool half, const DepthwiseShape& s, bool bias, bool residual, ActivationSpec act) {
  SCOPED_TRACE((half ? "float16 " : "float32 ") + std::to_string(s.n) + "x" + std::to_string(s.h) + "x" +
               std::to_string(s.w) + "x" + std::to_string(s.c) + ", k " + std::to_string(s.kh) + ", stride " +
               std::to_string(s.stride_h) + ", pads " + std::to_string(s.pad_h) + "/" +
               std::to_string(s.pad_w) + ", act " + std::to_string(static_cast<int>(act.kind)));
  const DataType dt = half ? DataType::kFloat16 : DataType::kFloat;
  const bool rows_fit = DepthwiseRowsFit(dt, s), regs_fit = DepthwiseRegsFit(dt, s);
  ASSERT_TRUE(rows_fit || regs_fit);
  std::mt19937 rng(11);
  auto fill = [&](int64_t n) { return test::RandomValues(static_cast<size_t>(n), half, rng); };
  const int64_t out = s.n * s.oh * s.ow * s.c, taps = s.kh * s.kw;
  const std::vector<float> x = fill(s.n * s.h * s.w * s.c), w = fill(s.c * taps), b = fill(s.c),
                           z = fill(out);
  Buf dx, dw, db, dz;
  Upload(dx, x, half);
  Upload(dw, w, half);
  Upload(db, b, half);
  Upload(dz, z, half);
  auto run = [&](DepthwiseKernel kernel) {
    return Run(kernel, half, s, dx, dw, bias ? &db : nullptr, residual ? &dz : nullptr, act);
  };
  const std::vector<float> pixels = run(DepthwiseKernel::kPixels);
  std::vector<std::pair<const char*, std::vector<float>>> others;
  if (rows_fit) others.emplace_back("run kernel", run(DepthwiseKernel::kRows));
  if (regs_fit) others.emplace_back("register kernel", run(DepthwiseKernel::kRegs));
  if (rows_fit) others.emplace_back("tile kernel", run(DepthwiseKernel::kTile));
  if (rows_fit) others.emplace_back("paired tile kernel", run(DepthwiseKernel::kTilePairs));
  int64_t bad = 0, differ = 0;
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t oy = 0; oy < s.oh; ++oy)
      for (int64_t ox = 0; ox < s.ow; ++ox)
        for (int64_t c = 0; c < s.c; ++c) {
          double acc = 0;
          for (int64_t ky = 0; ky < s.kh; ++ky)
            for (int64_t kx = 0; kx < s.kw; ++kx) {
              const int64_t iy = oy * s.stride_h - s.pad_h + ky * s.dil_h;
              const int64_t ix = ox * s.stride_w - s.pad_w + kx * s.dil_w;
              if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
              acc += static_cast<double>(x[((n * s.h + iy) * s.w + ix) * s.c + c]) *
                     w[c * taps + ky * s.kw + kx];
            }
          const int64_t i = ((n * s.oh + oy) * s.ow + ox) * s.c + c;
          if (bias) acc += b[c];
          if (residual) acc += z[i];
          const float want = Act(act, static_cast<float>(acc));
          const float tol = half ? 1e-2f + 4e-3f * std::fabs(want) : 1e-5f + 1e-5f * std::fabs(want);
          if (std::fabs(pixels[i] - want) > tol && bad++ < 5)
            ADD_FAILURE() << "pixel kernel at n " << n << " y " << oy << " x " << ox << " c " << c << ": got "
                          << pixels[i] << ", want " << want;
          for (const auto& [name, got] : others)
            if (got[i] != pixels[i] && differ++ < 5)
              ADD_FAILURE() << name << " differs from the pixel kernel at n " << n << " y " << oy << " x "
                            << ox << " c " << c << ": " << got[i] << " vs " << pixels[i];
        }
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(differ, 0);
}

TEST(GpuDepthwise, EveryKernelMatchesAHostComputation) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  const ActivationSpec none{}, relu6{Activation::kClip, 0.f, 6.f}, swish{Activation::kSwish},
      hswish{Activation::kHardSwish}, gelu{Activation::kGelu};
  RunCase(true, Shape(2, 14, 144, 3, 1, 1, 1), true, false, relu6);  // MobileNetV2, OW 17: a short last run
  RunCase(true, Shape(2, 15, 96, 3, 2, 1, 1), true, false, relu6);   // stride 2, odd input
  RunCase(true, Shape(1, 12, 672, 5, 1, 2, 2), true, true, swish);   // EfficientNet's 5x5, more than one tile
  RunCase(true, Shape(3, 13, 40, 5, 2, 2, 2), false, true, hswish);  // MobileNetV3's 5x5 stride 2
  RunCase(true, Shape(1, 9, 8, 3, 1, 0, 2), true, false, none);      // one vector; pads 0 rows, 2 columns
  RunCase(true, Shape(1, 3, 16, 5, 1, 2, 2), true, false, none);     // every window clipped
  RunCase(false, Shape(2, 10, 36, 3, 1, 1, 1), true, true, relu6);   // FP32: 4-wide vectors
  RunCase(false, Shape(1, 11, 132, 5, 2, 2, 2), true, false, swish);  // FP32, 33 vectors: two tiles
  // Enough tiles for the tile kernel's 8-group channel slices: EfficientNetV2-S's 14x14 at batch 32 with a
  // last slice of one group; a 5x5 stride 2 with 4-group slices, the last one partly empty.
  RunCase(true, Shape(32, 14, 968, 3, 1, 1, 1), true, true, swish);
  RunCase(true, Shape(16, 20, 200, 5, 2, 2, 2), true, false, relu6);
  RunCase(true, Shape(4, 14, 256, 3, 1, 1, 1), true, false, gelu);  // MaxViT's MBConv: GELU
  // 3x3 that only the register kernel takes: dilation 2; stride 3.
  RunCase(true, Dilated(Shape(2, 12, 24, 3, 1, 2, 2), 2), true, true, relu6);
  RunCase(true, Shape(1, 16, 40, 3, 3, 1, 1), true, false, hswish);
}

TEST(GpuDepthwise, WhatEachKernelTakes) {
  DepthwiseShape s = Shape(1, 8, 64, 3, 1, 1, 1);
  EXPECT_TRUE(DepthwiseRowsFit(DataType::kFloat16, s));
  EXPECT_TRUE(DepthwiseRowsFit(DataType::kBFloat16, s));
  EXPECT_FALSE(DepthwiseRowsFit(DataType::kInt8, s));
  s.c = 60;
  EXPECT_FALSE(DepthwiseRowsFit(DataType::kFloat16, s));  // not a multiple of 8 halves
  EXPECT_TRUE(DepthwiseRowsFit(DataType::kFloat, s));     // but of 4 floats
  s = Shape(1, 8, 64, 7, 1, 3, 3);
  EXPECT_FALSE(DepthwiseRowsFit(DataType::kFloat16, s));  // 7x7
  s = Shape(1, 8, 64, 3, 3, 1, 1);
  EXPECT_FALSE(DepthwiseRowsFit(DataType::kFloat16, s));  // stride 3
  s = Shape(1, 8, 64, 3, 1, 1, 1);
  s.dil_w = 2;
  EXPECT_FALSE(DepthwiseRowsFit(DataType::kFloat16, s));
  s = Shape(1, 8, 64, 3, 1, 1, 1);
  s.kw = 5;
  EXPECT_FALSE(DepthwiseRowsFit(DataType::kFloat16, s));  // not square
  EXPECT_FALSE(DepthwiseRegsFit(DataType::kFloat16, s));
  s = Shape(1, 8, 64, 3, 3, 1, 1);
  s.dil_h = 2;
  EXPECT_TRUE(DepthwiseRegsFit(DataType::kFloat16, s));  // 3x3: any stride and dilation
  EXPECT_FALSE(DepthwiseRegsFit(DataType::kFloat16, Shape(1, 8, 64, 5, 1, 2, 2)));
  EXPECT_FALSE(DepthwiseRegsFit(DataType::kFloat16, Shape(1, 8, 60, 3, 1, 1, 1)));
}

}  // namespace
}  // namespace kiln::cuda
