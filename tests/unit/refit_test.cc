// Refit on the CPU: a model's weights swapped into a built graph / a plan file
// equal, bit for bit, those of a fresh build of the new model (FP32 and FP16
// builds: folded BatchNorm, fused biases, channels-last and FP16 weights);
// another architecture is refused with an error naming the first difference.
#include "build/refit.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "fixtures.h"
#include "kiln/refit.h"
#include "op_cases/refit_model.h"
#include "plan/plan_config.h"
#include "plan/plan_graph.h"

namespace kiln {
namespace {

using refit_test::RefitModelSpec;

class RefitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fixtures::TestDir("kiln_refit_test");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Model(const RefitModelSpec& spec, const std::string& name) {
    std::string path = (dir_ / name).string();
    EXPECT_EQ(refit_test::SaveRefitModel(spec, path), "");
    return path;
  }
  // The plan file of `onnx` built with `config` (graph and config sections).
  std::string Plan(const std::string& onnx, const EngineConfig& config, const std::string& name) {
    auto built = LoadForRefit(onnx, BuildOptionsOf(config));
    EXPECT_TRUE(built.ok()) << built.status().ToString();
    PlanFile plan;
    plan.header.kiln_version = KILN_VERSION;
    plan.header.gpu_name = "NVIDIA H200";
    plan.header.compute_capability = 90;
    WritePlanGraph(**built, &plan);
    plan.sections["config"] = ConfigToJson(config);
    std::string path = (dir_ / name).string();
    EXPECT_TRUE(WritePlanFile(plan, path).ok());
    return path;
  }
  std::filesystem::path dir_;
};

// Every weight of `a` has the bytes of the same weight of `b` (and the same set).
void ExpectSameWeights(const Graph& a, const Graph& b, bool want_equal = true) {
  size_t n = 0, equal = 0;
  for (const Value* v : a.values()) {
    if (!v->data || v->producer()) continue;
    const Value* w = b.FindValue(v->name());
    ASSERT_TRUE(w && w->data) << v->name();
    ASSERT_EQ(v->data->Describe(), w->data->Describe()) << v->name();
    ++n;
    equal += std::memcmp(v->data->raw(), w->data->raw(), v->data->nbytes()) == 0;
  }
  EXPECT_GT(n, 0u);
  if (want_equal)
    EXPECT_EQ(equal, n);
  else
    EXPECT_LT(equal, n);
}

EngineConfig Config(bool fp16) {
  EngineConfig c;
  c.fp16 = fp16;
  c.nhwc = fp16;
  return c;
}

TEST_F(RefitTest, SwappedWeightsEqualAFreshBuild) {
  for (bool fp16 : {false, true}) {
    SCOPED_TRACE(fp16 ? "fp16" : "fp32");
    std::string a = Model({1}, "a.onnx"), b = Model({2}, "b.onnx");
    PlanFile plan;
    WritePlanGraph(*LoadForRefit(a, BuildOptionsOf(Config(fp16))).value(), &plan);
    auto built = ParsePlanGraph(plan);  // as a plan stores it
    ASSERT_TRUE(built.ok()) << built.status().ToString();
    auto fresh = LoadForRefit(b, BuildOptionsOf(Config(fp16)));
    ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
    ExpectSameWeights(*(*built)->graph, *(*fresh)->graph, /*want_equal=*/false);
    Status s = RefitModel(**built, **fresh, b);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ExpectSameWeights(*(*built)->graph, *(*fresh)->graph);
  }
}

TEST_F(RefitTest, PlanFileKeepsItsHeaderAndTakesTheNewWeights) {
  std::string a = Model({1}, "a.onnx"), b = Model({2}, "b.onnx");
  std::string plan = Plan(a, Config(true), "a.plan"), out = (dir_ / "b.plan").string();
  Status s = RefitPlan(plan, b, out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto before = ReadPlanFile(plan), after = ReadPlanFile(out);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->header.gpu_name, before->header.gpu_name);
  EXPECT_EQ(after->sections.at("config"), before->sections.at("config"));
  auto want = LoadForRefit(b, BuildOptionsOf(Config(true)));
  ExpectSameWeights(*ParsePlanGraph(*after).value()->graph, *(*want)->graph);
}

TEST_F(RefitTest, AnotherArchitectureNamesTheFirstDifference) {
  std::string a = Model({1}, "a.onnx");
  std::string plan = Plan(a, Config(false), "a.plan"), out = (dir_ / "out.plan").string();
  Status wider = RefitPlan(plan, Model({2, 6}, "wide.onnx"), out);
  EXPECT_NE(wider.message().find("weight 'fc.w' is float32[10,256] in the plan, float32[10,384] in"),
            std::string::npos)
      << wider.message();
  Status deeper = RefitPlan(plan, Model({2, 4, true}, "deep.onnx"), out);
  EXPECT_NE(deeper.message().find("graph structure differs"), std::string::npos) << deeper.message();
  EXPECT_NE(deeper.message().find("relu2"), std::string::npos) << deeper.message();
  EXPECT_FALSE(std::filesystem::exists(out));

  // Nothing changes on a mismatch.
  PlanFile p;
  p = *ReadPlanFile(plan);
  auto built = ParsePlanGraph(p);
  auto wide = LoadForRefit((dir_ / "wide.onnx").string(), {});
  EXPECT_FALSE(RefitModel(**built, **wide, "wide.onnx").ok());
  ExpectSameWeights(*(*built)->graph, *LoadForRefit(a, {}).value()->graph);
}

TEST_F(RefitTest, Cli) {
  std::string a = Model({1}, "a.onnx"), b = Model({2}, "b.onnx");
  std::string plan = Plan(a, Config(false), "a.plan"), out = (dir_ / "b.plan").string();
  auto ok = fixtures::RunKiln("refit '" + plan + "' '" + b + "' --saveEngine '" + out + "'", dir_.string());
  EXPECT_EQ(ok.rc, 0) << ok.out;
  EXPECT_TRUE(std::filesystem::exists(out));
  auto bad = fixtures::RunKiln("refit '" + plan + "' '" + Model({2, 6}, "w.onnx") + "' --saveEngine x.plan",
                               dir_.string());
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.out.find("kiln refit: error: refit: weight 'fc.w'"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace kiln
