// report/: `kiln check` and `kiln inspect`'s content as data (CheckModelFile,
// InspectModelFile, InspectJson, InspectText) on the bundled super-resolution
// model, whose numbers are worked out by hand below.
#include <gtest/gtest.h>

#include <string>

#include "report/check.h"
#include "report/inspect.h"

namespace kiln {
namespace {

const std::string kSr = std::string(KILN_SOURCE_DIR) + "/models/super_resolution.onnx";

TEST(Report, CheckSuperResolution) {
  auto r = CheckModelFile(kSr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->Valid());
  EXPECT_TRUE(r->issues.empty());
  EXPECT_EQ(r->num_nodes, 8u);  // 4 Conv, 3 Relu, DepthToSpace
  EXPECT_EQ(r->opset, 17);
  EXPECT_FALSE(r->gpu.checked);

  CheckOptions o;
  o.backend = "cuda";
  auto g = CheckModelFile(kSr, o);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_TRUE(g->gpu.checked);
  EXPECT_TRUE(g->gpu.error.empty()) << g->gpu.error;
  EXPECT_TRUE(g->gpu.gaps.empty());
  EXPECT_GT(g->gpu.num_nodes, 0u);
  EXPECT_TRUE(g->Valid());

  o.backend = "tpu";
  auto bad = CheckModelFile(kSr, o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(CheckModelFile(kSr + ".missing").ok());
}

TEST(Report, InspectSuperResolution) {
  InspectOptions o;
  o.shapes["input"] = {2, 1, 30, 20};
  auto r = InspectModelFile(kSr, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->nodes, 8);
  ASSERT_EQ(r->inputs.size(), 1u);
  EXPECT_EQ(r->inputs[0].name, "input");
  // Conv MACs per output pixel: 64*1*5*5 + 64*64*3*3 + 32*64*3*3 + 9*32*3*3, at 2x30x20 pixels.
  const double per_pixel = 64 * 25 + 64 * 64 * 9 + 32 * 64 * 9 + 9 * 32 * 9;
  EXPECT_DOUBLE_EQ(r->macs, per_pixel * 2 * 30 * 20);
  EXPECT_DOUBLE_EQ(r->macs_by_op.at("Conv"), r->macs);
  const double params = 64 * 25 + 64 + 64 * 64 * 9 + 64 + 32 * 64 * 9 + 32 + 9 * 32 * 9 + 9;
  EXPECT_DOUBLE_EQ(r->parameters, params);
  EXPECT_DOUBLE_EQ(r->parameter_bytes, 4 * params);
  EXPECT_EQ(r->initializers, 8);
  ASSERT_FALSE(r->ops.empty());
  EXPECT_EQ(r->ops[0], (std::pair<std::string, int64_t>("Conv", 4)));  // most frequent first
  EXPECT_TRUE(r->sync_points.empty());
  EXPECT_FALSE(r->has_values);

  nlohmann::json j = InspectJson(*r);
  EXPECT_EQ(j["nodes"], 8);
  EXPECT_EQ(j["macs"]["input_shapes"]["input"], (std::vector<int64_t>{2, 1, 30, 20}));
  EXPECT_FALSE(j.contains("values"));
  const std::string text = InspectText(*r);
  EXPECT_NE(text.find("MACs: " + HumanCount(r->macs) + " at input:2x1x30x20"), std::string::npos) << text;

  InspectOptions wrong;
  wrong.shapes["nope"] = {1};
  auto bad = InspectModelFile(kSr, wrong);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("not a model input"), std::string::npos);
}

TEST(Report, InspectValuesKeepSymbols) {
  InspectOptions o;
  o.values = true;
  o.ir = true;
  auto r = InspectModelFile(kSr, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->has_values);
  EXPECT_NE(r->ir.find("DepthToSpace"), std::string::npos);
  bool found = false;
  for (const auto& v : r->values)
    if (v["name"] == "output") {
      found = true;
      EXPECT_EQ(v["dims"][0], "batch");
    }
  EXPECT_TRUE(found);
  EXPECT_TRUE(InspectJson(*r).contains("values"));
}

}  // namespace
}  // namespace kiln
