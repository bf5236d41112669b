// Deterministic builds and the timing cache on the GPU (issue 11): the same
// ONNX, flags and timing cache give a byte-identical plan; a timing cache
// file's entries are reused, not timed again; a file from another GPU fails
// the build; `kiln inspect` shows the tactic each conv used. Skipped without
// a GPU (the CPU halves: tests/unit/deterministic_build_test.cc,
// timing_cache_test.cc, plan_inspect_test.cc).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "build/timing_cache.h"
#include "kiln/engine.h"
#include "op_cases/refit_model.h"
#include "plan/plan_file.h"
#include "plan/plan_inspect.h"
#include "plan/plan_tactics.h"

namespace kiln {
namespace {

bool HaveGpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

std::filesystem::path FreshDir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("kiln_determinism_gpu_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

Expected<std::string> BuildPlan(const std::string& onnx, const BuildOptions& opts,
                                BuildReport* rep = nullptr) {
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<Engine> e, Engine::Build(onnx, opts, rep));
  return e->Serialize();
}

Expected<TimingCache> ReadCache(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return IoError("cannot open " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ParseTimingCache(ss.str());
}

void SamePlanTwice(bool fp16) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  auto dir = FreshDir(fp16 ? "fp16" : "fp32");
  const std::string onnx = (dir / "m.onnx").string();
  ASSERT_EQ(refit_test::SaveRefitModel({3}, onnx), "");
  BuildOptions opts;
  opts.fp16 = fp16;
  opts.timing_cache_file = (dir / "t.cache").string();
  auto a = BuildPlan(onnx, opts);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto cache = ReadCache(opts.timing_cache_file);
  ASSERT_TRUE(cache.ok()) << cache.status().ToString();
  EXPECT_FALSE(cache->entries.empty()) << "the build timed no convolution";
  auto b = BuildPlan(onnx, opts);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_TRUE(*a == *b) << "two builds with the same model, flags and timing cache differ (" << a->size()
                        << " and " << b->size() << " bytes)";
  // The comparison can fail: another flag changes the plan.
  opts.fp16 = !fp16;
  auto c = BuildPlan(onnx, opts);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE(*a == *c);
  std::filesystem::remove_all(dir);
}

TEST(BuildDeterminismGpu, SamePlanBytesFp32) { SamePlanTwice(false); }
TEST(BuildDeterminismGpu, SamePlanBytesFp16) { SamePlanTwice(true); }

// Entries already in the file are used as they are: a build with a file whose
// timings were replaced by made-up ones keeps the made-up ones (timing again
// would overwrite them), in the plan and in the file it writes back.
TEST(TimingCacheGpu, EntriesInTheFileAreNotTimedAgain) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  auto dir = FreshDir("reuse");
  const std::string onnx = (dir / "m.onnx").string();
  ASSERT_EQ(refit_test::SaveRefitModel({4}, onnx), "");
  BuildOptions opts;
  opts.timing_cache_file = (dir / "t.cache").string();
  BuildReport first;
  ASSERT_TRUE(BuildPlan(onnx, opts, &first).ok());
  auto cache = ReadCache(opts.timing_cache_file);
  ASSERT_TRUE(cache.ok()) << cache.status().ToString();
  ASSERT_FALSE(cache->entries.empty());
  std::map<std::string, std::string> made_up;
  for (const auto& [key, choice] : cache->entries) {
    if (key.rfind("lt:", 0) == 0) {  // a cuBLASLt product: "ALGO_HEX MS"
      const size_t space = choice.find(' ');
      ASSERT_NE(space, std::string::npos) << choice;
      made_up[key] = choice.substr(0, space) + " 123.5";
      continue;
    }
    int algo = 0, math = 0;
    float ms = 0;
    unsigned long long ws = 0;
    ASSERT_EQ(std::sscanf(choice.c_str(), "%d:%f:%llu:%d", &algo, &ms, &ws, &math), 4) << choice;
    made_up[key] = std::to_string(algo) + ":123.5:" + std::to_string(ws) + ":" + std::to_string(math) + ";";
  }
  ASSERT_TRUE(
      SaveTimingCacheFile(opts.timing_cache_file, made_up, cache->gpu_name, cache->compute_capability).ok());

  BuildReport second;
  auto plan_bytes = BuildPlan(onnx, opts, &second);
  ASSERT_TRUE(plan_bytes.ok()) << plan_bytes.status().ToString();
  auto plan = ParsePlan(plan_bytes->data(), plan_bytes->size());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  auto tactics = ReadPlanTactics(*plan);
  ASSERT_TRUE(tactics.ok()) << tactics.status().ToString();
  EXPECT_EQ(tactics->entries, made_up);
  auto after = ReadCache(opts.timing_cache_file);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->entries, made_up);
  bool noted = false;
  for (const std::string& n : second.notes)
    noted |= n.find(std::to_string(made_up.size()) + " entries loaded, 0 new") != std::string::npos;
  EXPECT_TRUE(noted);
  std::filesystem::remove_all(dir);
}

TEST(TimingCacheGpu, AFileFromAnotherGpuFailsTheBuild) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  auto dir = FreshDir("foreign");
  const std::string onnx = (dir / "m.onnx").string();
  ASSERT_EQ(refit_test::SaveRefitModel({5}, onnx), "");
  BuildOptions opts;
  opts.timing_cache_file = (dir / "t.cache").string();
  ASSERT_TRUE(SaveTimingCacheFile(opts.timing_cache_file, {{"conv x", "0:1:0:0;"}}, "Not This GPU", 10).ok());
  auto e = Engine::Build(onnx, opts);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find(opts.timing_cache_file), std::string::npos) << e.status().message();
  EXPECT_NE(e.status().message().find("Not This GPU"), std::string::npos) << e.status().message();
  std::filesystem::remove_all(dir);
}

// `kiln inspect` on a real plan: the conv step names the cuDNN algorithm it timed.
TEST(InspectGpu, BuiltPlanShowsTheConvTactic) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  auto dir = FreshDir("inspect");
  const std::string onnx = (dir / "m.onnx").string();
  ASSERT_EQ(refit_test::SaveRefitModel({6}, onnx), "");
  auto bytes = BuildPlan(onnx, BuildOptions{});
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto plan = ParsePlan(bytes->data(), bytes->size());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  auto r = InspectPlan(*plan);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  bool conv = false;
  for (const InspectedStep& s : r->steps) {
    EXPECT_TRUE(s.bytes_read && s.bytes_written) << s.node;
    if (s.op != "kiln.FusedConv" && s.op != "Conv") continue;
    conv = true;
    EXPECT_NE(s.tactic.find("cuDNN"), std::string::npos) << PlanInspectionText(*r);
  }
  EXPECT_TRUE(conv) << PlanInspectionText(*r);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kiln
