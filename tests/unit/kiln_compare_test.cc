// `kiln compare` end to end (CPU only, as CI runs it): kiln's CPU reference
// against onnxruntime passes on a zoo model and prints its metrics; a planted
// wrong op (one Relu of a copy of the model turned into a Sigmoid, the
// reference running the original through --reference-model) fails, and
// --bisect names exactly the planted node; a tolerance it cannot meet fails;
// --as-built runs the builder's graph and catches the planted op there too.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "fixtures.h"
#include "io/npy.h"
#include "onnx/import.h"

namespace kiln {
namespace {

using fixtures::RunKiln;

class KilnCompareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fixtures::TestDir("kiln_compare_test");
    model_ = fixtures::ZooModel("resnet18");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // `kiln compare MODEL ARGS` on a batch of 2 random 64x64 images, with the project's Python.
  fixtures::CliResult Compare(const std::string& model, const std::string& args) {
    return RunKiln("compare '" + model + "' --random --seed 3 --shapes input:2x3x64x64 --python '" +
                       fixtures::Python() + "' " + args,
                   dir_.string());
  }

  // A copy of the model whose `index`-th Relu computes a Sigmoid; returns that node's name.
  std::string Plant(int index, const std::string& path) {
    auto m = LoadModel(model_);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    if (!m.ok()) return "";
    int seen = 0;
    for (Node* n : (*m)->graph->nodes()) {
      if (n->op_type != "Relu" || seen++ != index) continue;
      n->op_type = "Sigmoid";
      Status st = SaveModel(**m, path);
      EXPECT_TRUE(st.ok()) << st.ToString();
      return n->name;
    }
    ADD_FAILURE() << model_ << " has no Relu number " << index;
    return "";
  }

  std::filesystem::path dir_;
  std::string model_;
};

TEST_F(KilnCompareTest, CpuAgainstOnnxruntimePassesAndPrintsMetrics) {
  ASSERT_FALSE(model_.empty());
  auto r = Compare(model_, "--backend cpu");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("vs onnxruntime"), std::string::npos) << r.out;
  for (const char* metric : {"max abs ", "max rel ", "rel L2 ", "top-1 2/2", "top-5 2/2", "PASS"})
    EXPECT_NE(r.out.find(metric), std::string::npos) << metric << " missing in:\n" << r.out;

  auto bisect = Compare(model_, "--backend cpu --bisect");
  EXPECT_EQ(bisect.rc, 0) << bisect.out;
  EXPECT_NE(bisect.out.find("bisect: all 49 values compared are within tolerance"), std::string::npos)
      << bisect.out;
}

// --save-outputs writes what kiln computed: the same tensor `kiln run` writes for the same inputs.
TEST_F(KilnCompareTest, SaveOutputsWritesKilnsOutputs) {
  ASSERT_FALSE(model_.empty());
  const std::string saved = (dir_ / "saved").string(), ran = (dir_ / "ran").string();
  auto r = Compare(model_, "--backend cpu --save-outputs '" + saved + "'");
  ASSERT_EQ(r.rc, 0) << r.out;
  auto run = RunKiln("run --backend cpu '" + model_ + "' --random --seed 3 --shapes input:2x3x64x64 --output-dir '" +
                         ran + "'",
                     dir_.string());
  ASSERT_EQ(run.rc, 0) << run.out;
  auto a = ReadNpy(saved + "/output.npy");
  auto b = ReadNpy(ran + "/output.npy");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(a->dims(), (std::vector<int64_t>{2, 1000}));
  ASSERT_EQ(a->dims(), b->dims());
  for (int64_t i = 0; i < a->numel(); ++i) ASSERT_EQ(a->data<float>()[i], b->data<float>()[i]) << i;
}

TEST_F(KilnCompareTest, BisectNamesThePlantedNode) {
  ASSERT_FALSE(model_.empty());
  const std::string planted = (dir_ / "planted.onnx").string();
  const std::string node = Plant(3, planted);
  ASSERT_FALSE(node.empty());
  const std::string want = "first node beyond tolerance: node '" + node + "' (Sigmoid), inputs float32[2,";
  for (const char* reference : {"onnxruntime", "cpu"}) {
    auto r = Compare(planted, std::string("--backend cpu --bisect --reference ") + reference +
                                  " --reference-model '" + model_ + "'");
    EXPECT_EQ(r.rc, 1) << reference << ":\n" << r.out;
    EXPECT_NE(r.out.find("BEYOND TOLERANCE"), std::string::npos) << reference << ":\n" << r.out;
    EXPECT_NE(r.out.find(want), std::string::npos) << reference << ": want \"" << want << "\" in:\n" << r.out;
  }
  auto json = Compare(planted, "--backend cpu --bisect --json --reference-model '" + model_ + "'");
  EXPECT_EQ(json.rc, 1) << json.out;
  EXPECT_NE(json.out.find("\"node\": \"" + node + "\""), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"ok\": false"), std::string::npos) << json.out;
}

// --as-built: the graph `kiln build` makes (fused convs in NHWC, FP16 with
// --fp16) on the CPU reference against onnxruntime on the original.
TEST_F(KilnCompareTest, AsBuiltRunsTheBuildersGraph) {
  ASSERT_FALSE(model_.empty());
  for (const char* precision : {"", " --fp16"}) {
    auto r = Compare(model_, std::string("--backend cpu --as-built") + precision);
    EXPECT_EQ(r.rc, 0) << precision << ":\n" << r.out;
    EXPECT_NE(r.out.find("as built: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("kiln cpu as built"), std::string::npos) << r.out;
  }
  const std::string planted = (dir_ / "planted.onnx").string();
  ASSERT_FALSE(Plant(2, planted).empty());
  auto bad = Compare(planted, "--backend cpu --as-built --fp16 --reference-model '" + model_ + "'");
  EXPECT_EQ(bad.rc, 1) << bad.out;
  auto refused = Compare(model_, "--backend cpu --fp16");
  EXPECT_EQ(refused.rc, 1) << refused.out;
  EXPECT_NE(refused.out.find("--as-built"), std::string::npos) << refused.out;
}

TEST_F(KilnCompareTest, ToleranceItCannotMeetFails) {
  ASSERT_FALSE(model_.empty());
  auto r = Compare(model_, "--backend cpu --rtol 0 --atol 0");
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("BEYOND TOLERANCE"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("FAIL: 1 of 1 outputs beyond tolerance"), std::string::npos) << r.out;
}

TEST_F(KilnCompareTest, OutputsBelowFloat16RangeSaySo) {
  // The model's logits times 1e-9: its FP16 build flushes them toward zero. The comparison fails, and says
  // the reference's range is why (what random-weight MobileNets do), not only "rel L2 1".
  ASSERT_FALSE(model_.empty());
  auto m = LoadModel(model_);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  Graph& g = *(*m)->graph;
  Value* logits = g.outputs[0];
  Value* tiny = g.AddValue("tiny");
  Tensor t(DataType::kFloat, {});
  t.mutable_data<float>()[0] = 1e-9f;
  tiny->type = TypeInfo::Tensor(DataType::kFloat, t.shape());
  tiny->data = std::move(t);
  g.initializers.push_back(tiny);
  Node* mul = g.AddNode("Mul", "shrink");
  mul->AddInput(logits);
  mul->AddInput(tiny);
  Value* out = g.AddValue("shrunk");
  out->type = logits->type;
  mul->AddOutput(out);
  g.outputs[0] = out;
  const std::string path = (dir_ / "shrunk.onnx").string();
  ASSERT_TRUE(SaveModel(**m, path).ok());
  auto r = Compare(path, "--backend cpu --fp16 --as-built");
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("below float16's smallest normal number"), std::string::npos) << r.out;
  auto fp32 = Compare(path, "--backend cpu");  // FP32: no note, and it passes
  EXPECT_EQ(fp32.rc, 0) << fp32.out;
  EXPECT_EQ(fp32.out.find("float16's smallest normal"), std::string::npos) << fp32.out;
}

TEST_F(KilnCompareTest, ClearErrors) {
  ASSERT_FALSE(model_.empty());
  auto python =
      RunKiln("compare '" + model_ + "' --backend cpu --random --python /nonexistent/python3", dir_.string());
  EXPECT_EQ(python.rc, 1) << python.out;
  EXPECT_NE(python.out.find("cannot run '/nonexistent/python3'"), std::string::npos) << python.out;
  EXPECT_NE(python.out.find("--python or KILN_PYTHON"), std::string::npos) << python.out;

  // A Python whose onnxruntime does not import: the project's Python with a stub module first on its path.
  const std::filesystem::path stub = dir_ / "stub", wrapper = dir_ / "python_without_ort";
  std::filesystem::create_directories(stub);
  std::ofstream(stub / "onnxruntime.py") << "raise ImportError('planted: no onnxruntime')\n";
  std::ofstream(wrapper) << "#!/bin/sh\nPYTHONPATH='" << stub.string() << "' exec '" << fixtures::Python()
                         << "' \"$@\"\n";
  std::filesystem::permissions(wrapper, std::filesystem::perms::owner_all);
  auto no_ort = RunKiln("compare '" + model_ + "' --backend cpu --random --python '" + wrapper.string() + "'",
                        dir_.string());
  EXPECT_EQ(no_ort.rc, 1) << no_ort.out;
  EXPECT_NE(no_ort.out.find("onnxruntime is not installed for"), std::string::npos) << no_ort.out;
  EXPECT_NE(no_ort.out.find("-m pip install onnxruntime"), std::string::npos) << no_ort.out;

  auto fp16 = Compare(model_, "--backend cpu --fp16");
  EXPECT_EQ(fp16.rc, 1) << fp16.out;
  EXPECT_NE(fp16.out.find("--fp16 needs --backend cuda"), std::string::npos) << fp16.out;

  // The default backend is the GPU: without one (as in CI) a clear error, with one a comparison.
  auto cuda = Compare(model_, "");
  if (cuda.rc != 0)
    EXPECT_NE(cuda.out.find("kiln compare: error: --backend cuda: "), std::string::npos) << cuda.out;
  else
    EXPECT_NE(cuda.out.find("kiln cuda vs kiln cpu"), std::string::npos) << cuda.out;
}

}  // namespace
}  // namespace kiln
