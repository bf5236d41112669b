// The small-channel 1x1 convolution kernel (src/backend/cuda/conv1x1_small.h)
// against a host computation in double: every epilogue (bias, residual, ReLU,
// Clip, Swish, HardSigmoid), FP32 and FP16, channel counts at the vector width and at the
// kernel's limits, more pixels than one grid, and the few-pixel kernel (1-32 pixels). conv.cc only takes the
// kernel when it times faster than cuBLASLt, so the op harness may never run it: this test does. Skipped
// without a GPU.
#include "backend/cuda/conv1x1_small.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernel_test_util.h"

namespace kiln::cuda {
namespace {

using namespace test;  // NOLINT: kernel_test_util.h's helpers

void RunCase(bool half, Conv1x1Shape s, bool bias, bool residual, ActivationSpec act) {
  SCOPED_TRACE((half ? "float16 " : "float32 ") + std::to_string(s.pixels) + " px, C " + std::to_string(s.c) +
               ", K " + std::to_string(s.k) + ", act " + std::to_string(static_cast<int>(act.kind)));
  const DataType dt = half ? DataType::kFloat16 : DataType::kFloat;
  ASSERT_TRUE(SmallConv1x1Fits(dt, s));
  std::mt19937 rng(7);
  auto fill = [&](size_t n) { return test::RandomValues(n, half, rng); };
  const std::vector<float> x = fill(s.pixels * s.c), w = fill(s.k * s.c), b = fill(s.k),
                           z = fill(s.pixels * s.k);
  Buf dx, dw, db, dz, dy;
  Upload(dx, x, half);
  Upload(dw, w, half);
  Upload(db, b, half);
  Upload(dz, z, half);
  const size_t out_bytes = s.pixels * s.k * (half ? 2 : 4);
  ASSERT_EQ(cudaMalloc(&dy.p, out_bytes), cudaSuccess);
  Status st = LaunchSmallConv1x1(dt, s, dx.p, dw.p, bias ? db.p : nullptr, residual ? dz.p : nullptr, dy.p,
                                 act, nullptr);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> got(s.pixels * s.k);
  Download(dy, &got, half);
  int64_t bad = 0;
  for (int64_t p = 0; p < s.pixels; ++p)
    for (int64_t n = 0; n < s.k; ++n) {
      double acc = 0;
      for (int64_t c = 0; c < s.c; ++c) acc += static_cast<double>(x[p * s.c + c]) * w[n * s.c + c];
      if (bias) acc += b[n];
      if (residual) acc += z[p * s.k + n];
      const float want = Act(act, static_cast<float>(acc));
      const float tol = half ? 1e-2f + 4e-3f * std::fabs(want) : 1e-4f + 1e-5f * std::fabs(want);
      if (std::fabs(got[p * s.k + n] - want) > tol && bad++ < 5)
        ADD_FAILURE() << "pixel " << p << " channel " << n << ": got " << got[p * s.k + n] << ", want "
                      << want;
    }
  EXPECT_EQ(bad, 0);
}

TEST(GpuSmallConv1x1, MatchesAHostComputation) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  const ActivationSpec none{}, relu{Activation::kRelu}, relu6{Activation::kClip, 0.f, 6.f},
      swish{Activation::kSwish};
  RunCase(true, {1000, 16, 96}, true, false, relu6);  // MobileNetV2's first expansion, ReLU6
  RunCase(true, {513, 24, 144}, true, true, relu);    // residual, ReLU
  RunCase(true, {77, 64, 192}, false, true, swish);   // the channel limit
  RunCase(true, {300000, 8, 8}, true, false, none);   // past one grid of 1024 blocks
  RunCase(false, {129, 4, 12}, true, true, relu6);    // FP32: 4-wide vectors
  RunCase(false, {64, 64, 192}, true, false, swish);  // K·C at its limit
  // Few pixels (a warp per output channel): SE gates at batch 1 and 32 (MobileNetV3's 960 → 240 and back,
  // HardSigmoid as torch writes it), rows shorter than a warp's 32 chunks, K not a multiple of 8, FP32.
  const ActivationSpec hsig{Activation::kHardSigmoid, 0.f, 0.f, 1.f / 6.f, 0.5f};
  RunCase(true, {1, 960, 240}, true, false, relu);
  RunCase(true, {1, 240, 960}, true, false, hsig);
  RunCase(true, {32, 120, 32}, true, true, swish);
  RunCase(true, {7, 16, 13}, false, true, none);
  RunCase(true, {3, 4104, 40}, true, false, relu6);  // rows of 513 chunks: 17 a lane
  RunCase(false, {5, 36, 20}, true, true, relu);
}

TEST(GpuSmallConv1x1, RefusesWhatItCannotRun) {
  EXPECT_FALSE(SmallConv1x1Fits(DataType::kFloat16, {10, 12, 96}));   // C not a multiple of 8
  EXPECT_FALSE(SmallConv1x1Fits(DataType::kFloat16, {40, 16, 100}));  // K not a multiple of 8, 33+ pixels
  EXPECT_FALSE(SmallConv1x1Fits(DataType::kFloat16, {40, 72, 96}));   // C over 64, 33+ pixels
  EXPECT_FALSE(SmallConv1x1Fits(DataType::kFloat16, {40, 64, 256}));  // W over 48 KB of FP32, 33+ pixels
  EXPECT_FALSE(SmallConv1x1Fits(DataType::kInt8, {10, 16, 16}));
  EXPECT_TRUE(SmallConv1x1Fits(DataType::kBFloat16, {10, 16, 16}));
  EXPECT_TRUE(SmallConv1x1Fits(DataType::kFloat16, {32, 960, 100}));   // few pixels: any K, long rows
  EXPECT_FALSE(SmallConv1x1Fits(DataType::kFloat16, {32, 964, 100}));  // C still a multiple of 8
}

}  // namespace
}  // namespace kiln::cuda
