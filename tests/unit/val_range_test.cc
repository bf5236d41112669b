// `kiln run --random --val-range` (tools/kiln/feeds.cc): each input's random
// values stay in its range (a float range, an integer range that is one
// value, the default range for the rest), and bad specs are errors naming
// the spec or the input.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "fixtures.h"
#include "io/npy.h"
#include "onnx/import.h"

namespace kiln {
namespace {

using fixtures::RunKiln;

class ValRangeTest : public ::testing::Test {
 protected:
  // y_NAME = Identity(NAME) for a float input x, int64 inputs mask and ids.
  void SetUp() override {
    dir_ = fixtures::TestDir("val_range_test");
    Model m;
    m.ir_version = 8;
    m.opsets[""] = 17;
    m.graph = std::make_shared<Graph>();
    m.graph->name = "main";
    for (const auto& [name, dt] : std::vector<std::pair<std::string, DataType>>{
             {"x", DataType::kFloat}, {"mask", DataType::kInt64}, {"ids", DataType::kInt64}}) {
      Value* in = m.graph->AddValue(name);
      in->type = TypeInfo::Tensor(dt, Shape({4, 300}));
      m.graph->inputs.push_back(in);
      Node* n = m.graph->AddNode("Identity", "copy_" + name);
      n->AddInput(in);
      Value* out = m.graph->AddValue("y_" + name);
      out->type = in->type;
      n->AddOutput(out);
      m.graph->outputs.push_back(out);
    }
    model_ = (dir_ / "identity.onnx").string();
    Status st = SaveModel(m, model_);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  fixtures::CliResult Run(const std::string& args) {
    return RunKiln("run --backend cpu '" + model_ + "' --random --seed 5 --output-dir '" + (dir_ / "out").string() +
                       "' " + args,
                   dir_.string());
  }
  Tensor Output(const std::string& name) {
    auto t = ReadNpy((dir_ / "out" / ("y_" + name + ".npy")).string());
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? *t : Tensor();
  }

  std::filesystem::path dir_;
  std::string model_;
};

TEST_F(ValRangeTest, RandomInputsStayInTheirRanges) {
  auto r = Run("--val-range x:[2.5,3] --val-range mask:1,1 --val-range 100,120");
  ASSERT_EQ(r.rc, 0) << r.out;
  const Tensor x = Output("x"), mask = Output("mask"), ids = Output("ids");
  ASSERT_EQ(x.numel(), 1200);
  double lo = 1e9, hi = -1e9;
  for (int64_t i = 0; i < x.numel(); ++i) {
    lo = std::min(lo, x.ScalarAt(i));
    hi = std::max(hi, x.ScalarAt(i));
  }
  EXPECT_GE(lo, 2.5);
  EXPECT_LT(hi, 3.0);
  EXPECT_GT(hi - lo, 0.4);  // spread over the range, not a constant
  for (int64_t i = 0; i < mask.numel(); ++i) ASSERT_EQ(mask.ScalarAt(i), 1.0) << i;
  bool low = false, high = false;
  for (int64_t i = 0; i < ids.numel(); ++i) {
    ASSERT_GE(ids.ScalarAt(i), 100.0) << i;
    ASSERT_LE(ids.ScalarAt(i), 120.0) << i;  // integers: both ends included
    low = low || ids.ScalarAt(i) == 100.0;
    high = high || ids.ScalarAt(i) == 120.0;
  }
  EXPECT_TRUE(low && high);
}

TEST_F(ValRangeTest, BadSpecsAreErrors) {
  for (const auto& [spec, message] : std::vector<std::pair<std::string, std::string>>{
           {"--val-range nope:0,1", "--val-range names 'nope', which is not a model input (inputs: x, mask, ids)"},
           {"--val-range x:2,1", "bad --val-range 'x:2,1': LO is above HI"},
           {"--val-range x:a,1", "bad --val-range 'x:a,1': expected [NAME:]LO,HI"},
           {"--val-range mask:0.2,0.8", "--val-range for 'mask' (int64) holds no value of its type"},
           {"--val-range 0,1 --val-range 1,2", "--val-range gives the default range twice"}}) {
    auto r = Run(spec);
    EXPECT_NE(r.rc, 0) << spec;
    EXPECT_NE(r.out.find(message), std::string::npos) << spec << ":\n" << r.out;
  }
}

}  // namespace
}  // namespace kiln
