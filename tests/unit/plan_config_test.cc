// The plan's 'config' section (src/plan/plan_config.h): the convolution
// tactic sources round-trip, reach the build options a refit re-runs, default
// to auto in plans that predate them, and an unknown name is a corrupted plan.
#include "plan/plan_config.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(PlanConfig, ConvTacticsRoundTrip) {
  using T = BuildOptions::ConvTactics;
  for (T t : {T::kAuto, T::kGraph, T::kLegacy}) {
    EngineConfig c;
    c.fp16 = true;
    c.conv_tactics = t;
    auto back = ConfigFromJson(ConfigToJson(c));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->conv_tactics, t) << ConvTacticsName(t);
    EXPECT_EQ(BuildOptionsOf(*back).conv_tactics, t);
    EXPECT_EQ(ConvTacticsFromName(ConvTacticsName(t)), t);
  }
}

TEST(PlanConfig, PlansWithoutConvTacticsAreAuto) {
  auto c = ConfigFromJson(R"({"fp16": true, "tf32": false})");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->conv_tactics, BuildOptions::ConvTactics::kAuto);
}

// The GELU epilogue and the Q/K/V packing change the graph a refit must rebuild: a plan records whether its
// build ran them, and a plan from before them (no keys) refits without them.
TEST(PlanConfig, GeluEpilogueAndQkvPackingReachTheRefitOptions) {
  for (bool on : {false, true}) {
    EngineConfig c;
    c.fp16 = true;
    c.gelu_epilogue = on;
    c.pack_qkv = !on;
    auto back = ConfigFromJson(ConfigToJson(c));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(BuildOptionsOf(*back).gelu_epilogue, on);
    EXPECT_EQ(BuildOptionsOf(*back).pack_qkv, !on);
  }
  auto old = ConfigFromJson(R"({"fp16": true, "tf32": false})");
  ASSERT_TRUE(old.ok());
  EXPECT_FALSE(BuildOptionsOf(*old).gelu_epilogue);
  EXPECT_FALSE(BuildOptionsOf(*old).pack_qkv);
}

// --cudnn-eng4 changes which engines the contexts' convolution graphs may take: the plan keeps it, and plans
// from before it (no key) keep eng4 out.
TEST(PlanConfig, CudnnEng4RoundTripsAndIsOffInOlderPlans) {
  for (bool on : {false, true}) {
    EngineConfig c;
    c.cudnn_eng4 = on;
    auto back = ConfigFromJson(ConfigToJson(c));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->cudnn_eng4, on);
    EXPECT_EQ(BuildOptionsOf(*back).cudnn_eng4, on);
  }
  auto old = ConfigFromJson(R"({"fp16": true, "tf32": false})");
  ASSERT_TRUE(old.ok());
  EXPECT_FALSE(old->cudnn_eng4);
}

TEST(PlanConfig, UnknownConvTacticsIsACorruptedPlan) {
  auto c = ConfigFromJson(R"({"fp16": true, "conv_tactics": "fastest"})");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("corrupted plan: unknown conv_tactics 'fastest'"), std::string::npos)
      << c.status().message();
  EXPECT_FALSE(ConvTacticsFromName("fastest"));
}

}  // namespace
}  // namespace kiln
