// Refit on the GPU: an engine built from one model and refitted (in memory,
// and through `kiln refit`'s plan rewrite) with another model's weights gives
// the outputs of an engine built from that model. Skipped without a GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "kiln/refit.h"
#include "op_cases/refit_model.h"
#include "reference/compare.h"
#include "runtime/gpu/host_runner.h"

namespace kiln {
namespace {

using refit_test::RefitModelSpec;

bool HaveGpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

Expected<Tensor> RunOnce(std::shared_ptr<Engine> engine, const Tensor& x) {
  KILN_ASSIGN_OR_RETURN(auto runner, cuda::HostRunner::Create(std::move(engine)));
  KILN_RETURN_IF_ERROR(runner->SetInputs({{"x", x}}));
  KILN_RETURN_IF_ERROR(runner->Run());
  KILN_ASSIGN_OR_RETURN(auto outputs, runner->Outputs());
  return outputs.at("fc");
}

void RefitMatchesAFreshBuild(bool fp16) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  auto dir =
      std::filesystem::temp_directory_path() / ("kiln_refit_gpu_" + std::string(fp16 ? "fp16" : "fp32"));
  std::filesystem::create_directories(dir);
  std::string a = (dir / "a.onnx").string(), b = (dir / "b.onnx").string();
  ASSERT_EQ(refit_test::SaveRefitModel({1}, a), "");
  ASSERT_EQ(refit_test::SaveRefitModel({2}, b), "");
  Tensor x(DataType::kFloat, {1, 3, 8, 8});
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int64_t i = 0; i < x.numel(); ++i) x.mutable_data<float>()[i] = u(rng);
  BuildOptions opts;
  opts.fp16 = fp16;

  auto fresh = Engine::Build(b, opts);
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  auto want = RunOnce(*fresh, x);
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  Tolerance tol;
  tol.rtol = fp16 ? 1e-3 : 1e-5;
  tol.atol = fp16 ? 1e-3 : 1e-5;

  auto engine = Engine::Build(a, opts);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  ASSERT_TRUE((*engine)->Save((dir / "a.plan").string()).ok());
  Status s = Refit(**engine, b);
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto got = RunOnce(*engine, x);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  Status close = ExpectClose("refitted engine", *want, *got, tol);
  EXPECT_TRUE(close.ok()) << close.message();

  s = RefitPlan((dir / "a.plan").string(), b, (dir / "b.plan").string());
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto loaded = Engine::Load((dir / "b.plan").string(), BuilderLoadOptions());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  got = RunOnce(*loaded, x);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  close = ExpectClose("refitted plan", *want, *got, tol);
  EXPECT_TRUE(close.ok()) << close.message();
  std::filesystem::remove_all(dir);
}

TEST(GpuRefit, Fp32MatchesAFreshBuild) { RefitMatchesAFreshBuild(false); }
TEST(GpuRefit, Fp16MatchesAFreshBuild) { RefitMatchesAFreshBuild(true); }

}  // namespace
}  // namespace kiln
