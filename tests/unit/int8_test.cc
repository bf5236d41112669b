// INT8 on the CPU reference, against onnxruntime (the independent oracle):
//  - explicit quantization: QDQ models from onnxruntime.quantization.quantize_static
//    (tests/models/export_int8.py, fixture "int8"), folded by passes/fold_qdq.h
//    into kiln.QConv / kiln.QMatMul (int32 accumulation, FP32 scale epilogue),
//    match onnxruntime's outputs of the same QDQ model within 1 LSB of the
//    output scale on a small fraction of elements;
//  - implicit quantization (build/int8.h): calibration (entropy, percentile,
//    max), the calibration cache, and the per-layer fallback to FP32.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "build/calibrate_int8.h"
#include "build/int8.h"
#include "fixtures.h"
#include "io/npy.h"
#include "ir/graph.h"
#include "onnx/import.h"
#include "passes/fold_qdq.h"
#include "reference/compare.h"
#include "reference/executor.h"

namespace kiln {
namespace {

std::string Int8Dir() { return fixtures::FromEnv("KILN_INT8_DIR", KILN_INT8_DIR_DEFAULT); }

std::string Int8File(const std::string& name) {
  return fixtures::Require(Int8Dir() + "/" + name,
                           "run the tests through ctest, whose fixture_int8 test writes it, or "
                           "tests/models/export_int8.py DIR with KILN_INT8_DIR=DIR");
}

std::map<std::string, int> OpCounts(const Graph& g) {
  std::map<std::string, int> c;
  for (const Node* n : g.nodes()) ++c[(n->domain.empty() ? "" : n->domain + ".") + n->op_type];
  return c;
}

// The model's outputs, flat and concatenated (as export_int8.py stores onnxruntime's).
Tensor RunModel(const Model& m, const std::string& input_npy) {
  auto x = ReadNpy(input_npy);
  EXPECT_TRUE(x.ok()) << x.status().message();
  auto out = ReferenceExecutor(m).Run({{"input", RtValue::FromTensor(*x)}});
  EXPECT_TRUE(out.ok()) << out.status().message();
  if (!out.ok()) return Tensor();
  std::vector<float> all;
  for (const RtValue& v : *out) {
    EXPECT_EQ(v.tensor.dtype(), DataType::kFloat);
    for (int64_t i = 0; i < v.tensor.numel(); ++i) all.push_back(v.tensor.data<float>()[i]);
  }
  return Tensor::FromVector<float>(DataType::kFloat, {static_cast<int64_t>(all.size())}, all);
}

Tensor Npy(const std::string& path) {
  auto t = ReadNpy(path);
  EXPECT_TRUE(t.ok()) << t.status().message();
  return t.ok() ? *t : Tensor();
}

// Per element of the flat outputs: the scale of the DequantizeLinear that makes its output (its LSB).
std::vector<float> OutputScales(const Model& m) {
  std::vector<float> scales;
  for (const Value* v : m.graph->outputs) {
    const Node* p = v->producer();
    EXPECT_TRUE(p && p->op_type == "DequantizeLinear") << v->name();
    const float s = p && p->input(1) && p->input(1)->data ? p->input(1)->data->data<float>()[0] : 1.f;
    auto n = v->shape().concrete();
    EXPECT_TRUE(n.has_value()) << v->name();
    int64_t count = 1;
    for (int64_t d : n.value_or(std::vector<int64_t>{})) count *= d;
    scales.insert(scales.end(), static_cast<size_t>(count), s);
  }
  return scales;
}

struct LsbStats {
  double max_lsb = 0;
  double frac_diff = 0;  // elements differing by more than 1e-3 LSB
  int64_t n = 0;
};

LsbStats Lsb(const Tensor& ref, const Tensor& got, const std::vector<float>& scale) {
  LsbStats s;
  EXPECT_EQ(ref.dims(), got.dims());
  EXPECT_EQ(static_cast<size_t>(ref.numel()), scale.size());
  if (ref.dims() != got.dims() || static_cast<size_t>(ref.numel()) != scale.size()) return s;
  int64_t diff = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const double d = std::fabs(double(ref.data<float>()[i]) - got.data<float>()[i]) / scale[i];
    s.max_lsb = std::max(s.max_lsb, d);
    diff += d > 1e-3;
  }
  s.n = ref.numel();
  s.frac_diff = ref.numel() ? double(diff) / ref.numel() : 0;
  return s;
}

double RelL2(const Tensor& ref, const Tensor& got) { return CompareTensors(ref, got, Tolerance::RelL2(1e9)).rel_l2; }

// --- explicit quantization ---

class QdqModels : public testing::TestWithParam<std::string> {};

TEST_P(QdqModels, FoldedGraphMatchesOnnxruntime) {
  const std::string name = GetParam();  // e.g. conv_qdq_s8_pc
  const std::string model = name.substr(0, name.find('_'));
  auto m = LoadModel(Int8File(name + ".onnx"));
  ASSERT_TRUE(m.ok()) << m.status().message();
  const std::map<std::string, int> before = OpCounts(*(*m)->graph);
  const int products = (before.count("Conv") ? before.at("Conv") : 0) + (before.count("Gemm") ? before.at("Gemm") : 0) +
                       (before.count("MatMul") ? before.at("MatMul") : 0);
  ASSERT_GT(products, 0);
  PassContext ctx;
  std::vector<std::string> report;
  ASSERT_TRUE(FoldQdq(**m, ctx, &report).ok());
  const std::vector<float> out_scale = OutputScales(**m);  // after: torch writes the scales as Constant nodes
  const std::map<std::string, int> after = OpCounts(*(*m)->graph);
  EXPECT_EQ((after.count("kiln.QConv") ? after.at("kiln.QConv") : 0) +
                (after.count("kiln.QMatMul") ? after.at("kiln.QMatMul") : 0),
            products);
  EXPECT_EQ(after.count("Conv") + after.count("Gemm") + after.count("MatMul"), 0u);
  EXPECT_EQ(report.size(), static_cast<size_t>(products));
  // Every weight DequantizeLinear is gone; the activation ones that remain feed float ops.
  const Tensor got = RunModel(**m, Int8File(model + "_input.npy"));
  const Tensor ort = Npy(Int8File(name + "_ort.npy"));
  const Tensor ort_float = Npy(Int8File(name + "_ort_noopt.npy"));
  const LsbStats fused = Lsb(ort, got, out_scale), literal = Lsb(ort_float, got, out_scale);
  std::printf("%s (%lld output elements): vs onnxruntime (fused QDQ kernels): max %.3g LSB, %.2f%% of elements "
              "differ; vs onnxruntime (QDQ run in float): max %.3g LSB, %.2f%% differ\n",
              name.c_str(), static_cast<long long>(fused.n), fused.max_lsb, 100 * fused.frac_diff, literal.max_lsb,
              100 * literal.frac_diff);
  // The criterion: within 1 LSB of the output scale, on at most 5% of the elements.
  EXPECT_LE(fused.max_lsb, 1.0 + 1e-3);
  EXPECT_LE(fused.frac_diff, 0.05);
  EXPECT_LE(literal.max_lsb, 1.0 + 1e-3);
  EXPECT_LE(literal.frac_diff, 0.05);
  // The comparison can fail: the same graph with the first fused node's
  // weight scales 5% off (a planted epilogue bug) is beyond it.
  for (Node* n : (*m)->graph->nodes()) {
    if (n->domain != "kiln") continue;
    Tensor ws = *n->input(4)->data;
    Tensor bad(DataType::kFloat, ws.dims());
    for (int64_t i = 0; i < ws.numel(); ++i) bad.mutable_data<float>()[i] = ws.data<float>()[i] * 1.05f;
    n->input(4)->data = bad;
    break;
  }
  const LsbStats planted = Lsb(ort, RunModel(**m, Int8File(model + "_input.npy")), out_scale);
  std::printf("%s: with a planted 5%% weight-scale error: max %.3g LSB, %.2f%% of elements differ\n", name.c_str(),
              planted.max_lsb, 100 * planted.frac_diff);
  EXPECT_GT(planted.max_lsb, 1.5) << "a planted error stays within the criterion: the check could not fail";
}

INSTANTIATE_TEST_SUITE_P(Int8, QdqModels,
                         testing::Values("conv_qdq_s8_pc", "conv_qdq_s8_pt", "conv_qdq_u8_pc",
                                         "mlp_qdq_s8_pc", "mlp_qdq_s8_pt", "mlp_qdq_u8_pc",
                                         // torch fake-quant modules through the TorchScript exporter
                                         "conv_fq_u8_pc", "conv_fq_s8_pt", "mlp_fq_s8_pc"));

TEST(Int8, FoldKeepsFloatOutputWhenTheQuantizeLinearIsShared) {
  auto m = LoadModel(Int8File("mlp_qdq_s8_pc.onnx"));
  ASSERT_TRUE(m.ok());
  // The last Gemm's output QuantizeLinear also becomes a graph output: the
  // fused node must return float32 and leave the QuantizeLinear in place.
  Graph& g = *(*m)->graph;
  Value* y = nullptr;
  for (Node* n : g.nodes())
    if (n->op_type == "Gemm") y = n->output(0);
  ASSERT_NE(y, nullptr);
  g.outputs.push_back(y);
  PassContext ctx;
  ASSERT_TRUE(FoldQdq(**m, ctx, nullptr).ok());
  ASSERT_NE(y->producer(), nullptr);
  EXPECT_EQ(y->producer()->op_type, "QMatMul");
  EXPECT_EQ(y->producer()->num_inputs(), 7u);  // no y_scale: float output
  const Tensor ref = Npy(Int8File("mlp_qdq_s8_pc_ort.npy"));
  auto x = ReadNpy(Int8File("mlp_input.npy"));
  auto out = ReferenceExecutor(**m).Run({{"input", RtValue::FromTensor(*x)}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  const Tensor& got = (*out)[0].tensor;  // float32 straight from kiln.QMatMul's FP32 epilogue
  const Node* dq = g.outputs[0]->producer();
  ASSERT_TRUE(dq && dq->op_type == "DequantizeLinear" && dq->input(1)->data);
  const Tensor ref0 = Tensor::FromVector<float>(DataType::kFloat, got.dims(),
                                                std::vector<float>(ref.data<float>(), ref.data<float>() + got.numel()));
  std::vector<float> lsb(static_cast<size_t>(got.numel()), dq->input(1)->data->data<float>()[0]);
  EXPECT_LE(Lsb(ref0, got, lsb).max_lsb, 1.0 + 1e-3);
}

TEST(Int8, QConvErrorsNameTheNode) {
  auto m = LoadModel(Int8File("conv_qdq_s8_pc.onnx"));
  ASSERT_TRUE(m.ok());
  PassContext ctx;
  ASSERT_TRUE(FoldQdq(**m, ctx, nullptr).ok());
  // A bias of the wrong length: the reference names node, op and shapes.
  for (Node* n : (*m)->graph->nodes())
    if (n->op_type == "QConv" && n->input(6)) {
      n->input(6)->data = Tensor::FromVector<int32_t>(DataType::kInt32, {2}, {1, 2});
      break;
    }
  auto x = ReadNpy(Int8File("conv_input.npy"));
  auto out = ReferenceExecutor(**m).Run({{"input", RtValue::FromTensor(*x)}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("(kiln.QConv)"), std::string::npos) << out.status().message();
  EXPECT_NE(out.status().message().find("bias must be int32"), std::string::npos) << out.status().message();
}

// --- calibration ---

TEST(Int8Calibration, EntropyClipsOutliersAndKeepsADenseRange) {
  std::mt19937 rng(1);
  std::normal_distribution<double> normal(0, 1);
  // |N(0,1)| over [0, 40] plus a handful of outliers at 40: the threshold lands
  // well below the outliers but keeps the Gaussian's bulk (> 3 sigma).
  std::vector<double> hist(kCalibBins, 0);
  for (int i = 0; i < 200000; ++i) hist[std::min(kCalibBins - 1, int(std::fabs(normal(rng)) / 40 * kCalibBins))] += 1;
  hist[kCalibBins - 1] += 5;
  const double t = 40.0 * EntropyThresholdBins(hist) / kCalibBins;
  EXPECT_LT(t, 10.0);
  EXPECT_GT(t, 3.0);
  // A uniform |v| is best kept whole.
  std::vector<double> flat(kCalibBins, 1.0);
  EXPECT_GE(EntropyThresholdBins(flat), kCalibBins * 9 / 10);
  // Percentile: 99% of a uniform histogram.
  EXPECT_EQ(PercentileThresholdBins(flat, 99.0), static_cast<int>(std::ceil(kCalibBins * 0.99)));
}

TEST(Int8Calibration, CacheRoundTripsAndRejectsGarbage) {
  CalibTable t;
  t.method = CalibMethod::kPercentile;
  t.scales = {{"/conv1/Conv_output_0", 0.0123f}, {"input", 3.5e-3f}};
  const std::string path = testing::TempDir() + "/kiln_int8.cache";
  ASSERT_TRUE(WriteCalibCache(t, path).ok());
  auto back = ReadCalibCache(path);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->method, CalibMethod::kPercentile);
  EXPECT_EQ(back->scales, t.scales);  // bit-exact: the file holds the float bits
  std::ofstream(path) << "kiln-int8-calibration-v1-entropy\ninput: zz\n";
  auto bad = ReadCalibCache(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(":2:"), std::string::npos) << bad.status().message();
  std::ofstream(path) << "TRT-8601-EntropyCalibration2\n";
  EXPECT_FALSE(ReadCalibCache(path).ok());
}

// --- implicit quantization ---

struct Implicit {
  std::unique_ptr<Model> model;
  std::vector<std::string> report, notes;
  Tensor out;
};

Implicit BuildImplicit(const std::string& name, BuildOptions o) {
  Implicit r;
  auto m = LoadModel(Int8File(name + "_fp32.onnx"));
  EXPECT_TRUE(m.ok()) << m.status().message();
  if (!m.ok()) return r;
  r.model = std::move(*m);
  o.int8 = true;
  if (o.calib.empty()) o.calib = Int8File(name + "_calib");
  Status st = PrepareQuantizedGraph(*r.model, o, &r.report, &r.notes);
  EXPECT_TRUE(st.ok()) << st.message();
  r.out = RunModel(*r.model, Int8File(name + "_input.npy"));
  return r;
}

// A CUDA build leaves the stem (3 input channels: K = 27, M = 8) float: cuBLASLt's
// INT8 kernels cannot take it, and the int32 kernel costs more than INT8 saves.
// The CPU reference quantizes every layer, as onnxruntime's quantize_static does.
TEST(Int8Implicit, CalibratedConvNetIsCloseToFp32AndToOnnxruntimeQuantization) {
  for (const char* method : {"entropy", "percentile", "max"}) {
    for (const bool cuda : {true, false}) {
      BuildOptions o;
      o.calib_method = method;
      o.backend = cuda ? BuildOptions::Backend::kCuda : BuildOptions::Backend::kCpu;
      Implicit r = BuildImplicit("conv", o);
      const std::map<std::string, int> ops = OpCounts(*r.model->graph);
      EXPECT_EQ(ops.count("kiln.QConv") ? ops.at("kiln.QConv") : 0, cuda ? 2 : 3) << method;
      EXPECT_EQ(ops.count("kiln.QMatMul") ? ops.at("kiln.QMatMul") : 0, 1) << method;
      ASSERT_EQ(r.report.size(), 4u);
      for (const std::string& line : r.report) {
        const bool stem = cuda && line.find("'/c1/Conv'") != std::string::npos;
        EXPECT_NE(line.find(stem ? "stays FP32: K 27 (C·kh·kw) and M 8 are not both multiples of 4" : "runs INT8"),
                  std::string::npos) << line;
      }
      const Tensor fp32 = Npy(Int8File("conv_fp32_ort.npy"));
      const double kiln_err = RelL2(fp32, r.out);
      // onnxruntime's own post-training quantization of the same model (MinMax, per-channel).
      const double ort_err = RelL2(fp32, Npy(Int8File("conv_qdq_s8_pc_ort.npy")));
      std::printf("conv %s: kiln INT8 vs onnxruntime FP32 rel L2 %.4f (onnxruntime quantize_static QDQ: %.4f)\n",
                  method, kiln_err, ort_err);
      EXPECT_LT(kiln_err, 0.05) << method;
      EXPECT_LT(kiln_err, 2 * ort_err + 0.01) << method;
      EXPECT_GT(kiln_err, 0.0) << method << ": identical to FP32, nothing was quantized";
    }
  }
}

TEST(Int8Implicit, CacheFileGivesTheSameGraph) {
  const std::string cache = testing::TempDir() + "/kiln_conv_int8.cache";
  BuildOptions o;
  o.calib_cache = cache;
  Implicit first = BuildImplicit("conv", o);
  ASSERT_TRUE(std::filesystem::exists(cache));
  BuildOptions from_cache;
  from_cache.calib = cache;
  Implicit second = BuildImplicit("conv", from_cache);
  ASSERT_TRUE(first.out.defined() && second.out.defined());
  EXPECT_EQ(RelL2(first.out, second.out), 0.0);
  bool noted = false;
  for (const std::string& n : second.notes) noted = noted || n.find("calibration cache") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST(Int8Implicit, LayerWhereInt8HurtsFallsBackToFp32) {
  const Tensor fp32 = Npy(Int8File("outlier_fp32_ort.npy"));
  BuildOptions o;
  o.calib_method = "max";
  Implicit kept = BuildImplicit("outlier", o);
  ASSERT_EQ(kept.report.size(), 2u);
  EXPECT_NE(kept.report[0].find("stays FP32: INT8 rel L2"), std::string::npos) << kept.report[0];
  EXPECT_NE(kept.report[1].find("runs INT8"), std::string::npos) << kept.report[1];
  o.int8_fallback_rel_l2 = 1e9;  // no fallback: every layer INT8
  o.int8_model_rel_l2 = 0;
  Implicit all = BuildImplicit("outlier", o);
  for (const std::string& line : all.report) EXPECT_NE(line.find("runs INT8"), std::string::npos) << line;
  const double e_kept = RelL2(fp32, kept.out), e_all = RelL2(fp32, all.out);
  std::printf("outlier MLP vs onnxruntime FP32: rel L2 %.4f with the fallback, %.4f all INT8\n", e_kept, e_all);
  EXPECT_LT(e_kept, 0.05);
  EXPECT_GT(e_all, 0.1);
}

// --int8 --fp16: the layer the fallback keeps runs FP16 (and the report says
// FP16, not FP32); the INT8 layer keeps its FP32 scales and epilogue.
TEST(Int8Fp16, FallbackLayerRunsFp16AndTheReportSaysSo) {
  BuildOptions o;
  o.calib_method = "max";
  o.fp16 = true;
  Implicit mixed = BuildImplicit("outlier", o);
  ASSERT_EQ(mixed.report.size(), 2u);
  EXPECT_NE(mixed.report[0].find("node '/l1/Gemm' (Gemm) stays FP16: INT8 rel L2"), std::string::npos)
      << mixed.report[0];
  EXPECT_NE(mixed.report[1].find("node '/l2/Gemm' (Gemm) runs INT8"), std::string::npos) << mixed.report[1];
  for (const std::string& line : mixed.report) EXPECT_EQ(line.find("stays FP32"), std::string::npos) << line;
  bool gemm_fp16 = false, qmatmul_fp32 = false;
  for (const Node* n : mixed.model->graph->nodes()) {
    if (n->op_type == "Gemm") gemm_fp16 = n->output(0)->dtype() == DataType::kFloat16;
    if (n->op_type == "QMatMul") qmatmul_fp32 = n->output(0)->dtype() == DataType::kFloat;
  }
  EXPECT_TRUE(gemm_fp16) << "the fallback Gemm does not compute in FP16";
  EXPECT_TRUE(qmatmul_fp32);
  const double e = RelL2(Npy(Int8File("outlier_fp32_ort.npy")), mixed.out);
  std::printf("outlier MLP, INT8 + FP16 fallback vs onnxruntime FP32: rel L2 %.4f\n", e);
  EXPECT_LT(e, 0.05);
  EXPECT_GT(e, 0.0);
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// `kiln compare --int8 --backend cpu` against onnxruntime FP32: with the
// fallback the outlier MLP passes and the report says which layer stayed FP32;
// with every layer INT8 it fails and --bisect names the layer INT8 breaks.
class KilnCompareInt8Test : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = fixtures::TestDir("kiln_compare_int8_test"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  fixtures::CliResult Compare(const std::string& name, const std::string& args) {
    return fixtures::RunKiln("compare '" + Int8File(name + ".onnx") + "' --backend cpu --int8 --input input='" +
                                 Int8File(name.substr(0, name.find('_')) + "_input.npy") + "' --python '" +
                                 fixtures::Python() + "' " + args,
                             dir_.string());
  }
  std::filesystem::path dir_;
};

TEST_F(KilnCompareInt8Test, FallbackPassesAndBisectFindsTheLayerInt8Breaks) {
  const std::string calib = "--calib '" + Int8File("outlier_calib") + "' --calib-method max --bisect";
  auto ok = Compare("outlier_fp32", calib);
  EXPECT_EQ(ok.rc, 0) << ok.out;
  EXPECT_NE(ok.out.find("node '/l1/Gemm' (Gemm) stays FP32: INT8 rel L2"), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("node '/l2/Gemm' (Gemm) runs INT8"), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("bisect: all"), std::string::npos) << ok.out;
  auto bad = Compare("outlier_fp32", calib + " --int8-fallback-rel-l2 100 --int8-model-rel-l2 0");
  EXPECT_EQ(bad.rc, 1) << bad.out;
  EXPECT_NE(bad.out.find("bisect: first node beyond tolerance: node '/l1/Gemm' (Gemm)"), std::string::npos)
      << bad.out;
  // Without the per-layer check, the whole-model one still keeps the layer float.
  auto whole = Compare("outlier_fp32", calib + " --int8-fallback-rel-l2 100");
  EXPECT_EQ(whole.rc, 0) << whole.out;
  EXPECT_NE(whole.out.find("node '/l1/Gemm' (Gemm) stays FP32: whole-model INT8 rel L2"), std::string::npos)
      << whole.out;
}

TEST_F(KilnCompareInt8Test, QdqModelAgainstOnnxruntime) {
  auto r = Compare("conv_qdq_s8_pc", "--bisect");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("runs INT8 as kiln.QConv"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("PASS: 2 outputs"), std::string::npos) << r.out;
}

// torch's fake-quant export: scales as Constant nodes (shared through Identity), weights quantized in the
// graph. Before 2026-12-06 the build failed ("fold_qdq pass left the model invalid": a QMatMul read a
// Constant node's output that came after it) and the weights' QuantizeLinear kept the convolutions float.
TEST_F(KilnCompareInt8Test, FakeQuantExportRunsEveryProductInt8) {
  auto r = Compare("conv_fq_u8_pc", "");
  EXPECT_EQ(r.rc, 0) << r.out;
  for (const char* node :
       {"'/Conv' (Conv) runs INT8 as kiln.QConv", "'/Conv_1' (Conv) runs INT8 as kiln.QConv",
        "'/Conv_2' (Conv) runs INT8 as kiln.QConv", "'/Gemm' (Gemm) runs INT8 as kiln.QMatMul"})
    EXPECT_NE(r.out.find(node), std::string::npos) << node << "\n" << r.out;
  EXPECT_NE(r.out.find("PASS: 2 outputs"), std::string::npos) << r.out;
}

// onnxruntime's QOperator form: the GPU builder lowers QLinearConv to kiln.QConv (passes/lower_qlinear.h);
// the built graph, run on the CPU reference, against onnxruntime on the model as written.
TEST_F(KilnCompareInt8Test, QOperatorModelAsBuiltAgainstOnnxruntime) {
  const std::string model = Int8File("conv_qop_u8_pc.onnx");
  auto check = fixtures::RunKiln("check --backend cuda '" + model + "'", dir_.string());
  EXPECT_EQ(check.rc, 0) << check.out;
  EXPECT_NE(check.out.find("kiln.QConv 3"), std::string::npos) << check.out;
  EXPECT_EQ(check.out.find("QLinearConv"), std::string::npos) << check.out;
  auto r = fixtures::RunKiln("compare '" + model + "' --backend cpu --as-built --input input='" +
                                 Int8File("conv_input.npy") + "' --python '" + fixtures::Python() + "'",
                             dir_.string());
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("PASS: 2 outputs"), std::string::npos) << r.out;
}

// onnxruntime's quantize_dynamic form (DynamicQuantizeLinear → MatMulInteger / ConvInteger → Cast → Mul):
// every node has a CUDA row (integer_ops.cu, quant.cu), and the CPU reference agrees with onnxruntime.
TEST_F(KilnCompareInt8Test, DynamicQuantizationRunsOnTheGpuBuilderAndMatchesOnnxruntime) {
  for (const std::string name : {"conv", "mlp"}) {
    const std::string model = Int8File(name + "_dyn.onnx");
    auto check = fixtures::RunKiln("check --backend cuda '" + model + "'", dir_.string());
    EXPECT_EQ(check.rc, 0) << check.out;
    EXPECT_NE(check.out.find("MatMulInteger"), std::string::npos) << check.out;
    if (name == "conv") {
      EXPECT_NE(check.out.find("ConvInteger 3"), std::string::npos) << check.out;
    }
    EXPECT_NE(check.out.find("0 of "), std::string::npos)
        << check.out;  // "0 of N nodes ... cannot run on the GPU"
    auto r = fixtures::RunKiln("compare '" + model + "' --backend cpu --input input='" +
                                   Int8File(name + "_input.npy") + "' --python '" + fixtures::Python() + "'",
                               dir_.string());
    EXPECT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("PASS"), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace kiln

#include "plan/plan_config.h"
#include "plan/plan_file.h"

namespace kiln {
namespace {

// `kiln inspect PLAN` prints the plan's precision report (INT8 layers and FP32 fallbacks).
TEST(Int8, InspectPlanPrintsThePrecisionReport) {
  const std::filesystem::path dir = fixtures::TestDir("kiln_inspect_plan");
  EngineConfig cfg;
  cfg.precision = {"node '/l1/Gemm' (Gemm) stays FP32: INT8 rel L2 0.983 > 0.05",
                   "node '/l2/Gemm' (Gemm) runs INT8: input scale 0.02032 (max), per-channel weights"};
  PlanFile plan;
  plan.header.kiln_version = KILN_VERSION;
  plan.header.gpu_name = "NVIDIA H200";
  plan.header.compute_capability = 90;
  plan.sections["config"] = ConfigToJson(cfg);
  const std::string path = (dir / "m.plan").string();
  ASSERT_TRUE(WritePlanFile(plan, path).ok());
  auto r = fixtures::RunKiln("inspect '" + path + "'", dir.string());
  EXPECT_EQ(r.rc, 0) << r.out;
  for (const std::string& line : cfg.precision) EXPECT_NE(r.out.find("  " + line), std::string::npos) << r.out;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// Without a GPU, `kiln check --backend cuda` says whether the INT8 graph of a
// QDQ model and of an implicitly quantized one fits the CUDA rows' declared
// capabilities (kiln.QConv/QMatMul, Quantize/DequantizeLinear).
TEST(Int8, CheckBackendCudaCoversTheInt8Graph) {
  const std::filesystem::path dir = fixtures::TestDir("kiln_check_int8");
  for (const std::string& args :
       {"'" + Int8File("conv_qdq_u8_pc.onnx") + "'",
        "'" + Int8File("conv_fp32.onnx") + "' --int8 --calib '" + Int8File("conv_calib") + "'"}) {
    auto r = fixtures::RunKiln("check --backend cuda " + args, dir.string());
    EXPECT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("0 of"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("runs INT8"), std::string::npos) << r.out;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// --int8 --fp16 on a zoo CNN (resnet18, calibrated BatchNorm): 4 random normal
// calibration batches, a fifth to evaluate; `kiln compare --backend cpu`
// against onnxruntime FP32. Measured (2026-12, these inputs, entropy
// calibration): rel L2 0.189 INT8 (rest FP32), 0.188 INT8 + FP16 (percentile,
// the default since 2026-12-05: 0.146 and 0.152; with the whole-model target
// at 0.1, the default since then too: 0.083 and 0.084); onnxruntime's
// own quantize_static (QDQ, per-channel, symmetric, MinMax) of the same model
// on the same batches: 0.219. Random-noise images are a hard case for INT8
// post-training quantization; the criterion here is that FP16 for the
// layers INT8 leaves costs next to nothing on top of INT8: mixed within 0.25
// (1.3x the measurement), and within 0.03 of INT8 with FP32.
// 4 calibration batches and an evaluation batch of random normal 64x64 images under `dir`.
void WriteRandomImages(const std::filesystem::path& dir) {
  std::mt19937 rng(21);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (int s = 0; s < 5; ++s) {
    const std::filesystem::path d = s < 4 ? dir / "calib" / ("s" + std::to_string(s)) : dir / "eval";
    std::filesystem::create_directories(d);
    Tensor x(DataType::kFloat, {2, 3, 64, 64});
    for (int64_t i = 0; i < x.numel(); ++i) x.mutable_data<float>()[i] = normal(rng);
    ASSERT_TRUE(WriteNpy((d / "input.npy").string(), x).ok());
  }
}

// `kiln compare --backend cpu --int8 ARGS` of a zoo model on the evaluation batch.
fixtures::CliResult CompareInt8(const std::string& model, const std::filesystem::path& dir, const std::string& args) {
  return fixtures::RunKiln("compare '" + fixtures::ZooModel(model) + "' --backend cpu --int8 --calib '" +
                               (dir / "calib").string() + "' --input input='" + (dir / "eval" / "input.npy").string() +
                               "' --python '" + fixtures::Python() + "' --rel-l2 1 " + args,
                           dir.string());
}

TEST(Int8Fp16, ResNet18AgainstOnnxruntimeFp32) {
  const std::filesystem::path dir = fixtures::TestDir("kiln_int8_fp16");
  WriteRandomImages(dir);
  double err[2] = {-1, -1};
  for (int fp16 = 0; fp16 < 2; ++fp16) {
    auto r = CompareInt8("resnet18", dir, fp16 ? "--fp16" : "");
    EXPECT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("runs INT8"), std::string::npos) << r.out;
    err[fp16] = fixtures::CompareRelL2(r.out, "output");
  }
  std::printf("resnet18 vs onnxruntime FP32: rel L2 %.4f INT8 (rest FP32), %.4f INT8 + FP16\n", err[0], err[1]);
  EXPECT_GT(err[1], 0.0);
  EXPECT_LT(err[1], 0.25);
  EXPECT_LT(std::fabs(err[1] - err[0]), 0.03);
  std::filesystem::remove_all(dir);
}

// The whole-model criterion (--int8-model-rel-l2, 0.1 by default, 0.25 before): the
// per-layer isolated check passes most layers of efficientnet_b0, yet the INT8
// model is far off (error builds up through its depthwise and SE stacks). Measured (2026-12-05, layers
// ranked by their effect on the output): the evaluation batch, not seen in calibration, gives 0.120 with
// the criterion and 0.474 without it (0), entropy calibration, depthwise convolutions INT8; with
// percentile calibration (the default since) and the depthwise convolutions float (the CUDA build's
// shape rule), 0.195 and 0.358; with the 0.1 target (the default since), 0.079 and 0.358. resnet18
// (0.15 on these noise images) is left alone by a 0.25 target.
TEST(Int8WholeModel, ErrorThatBuildsUpKeepsMoreLayersFloat) {
  const std::filesystem::path dir = fixtures::TestDir("kiln_int8_whole_model");
  WriteRandomImages(dir);
  auto on = CompareInt8("efficientnet_b0", dir, "");
  auto off = CompareInt8("efficientnet_b0", dir, "--int8-model-rel-l2 0");
  ASSERT_EQ(on.rc, 0) << on.out;
  ASSERT_EQ(off.rc, 0) << off.out;
  const double with = fixtures::CompareRelL2(on.out, "output"), without = fixtures::CompareRelL2(off.out, "output");
  std::printf("efficientnet_b0 INT8 vs onnxruntime FP32: rel L2 %.3f with the whole-model criterion, %.3f without\n",
              with, without);
  EXPECT_NE(on.out.find("whole-model INT8 rel L2"), std::string::npos) << on.out;
  EXPECT_NE(on.out.find("runs INT8"), std::string::npos) << on.out;
  EXPECT_EQ(off.out.find("whole-model INT8 rel L2"), std::string::npos) << off.out;
  EXPECT_GT(without, 0.3);  // well above the target, or the criterion would have nothing to do
  EXPECT_LT(with, 0.25);
  auto r18 = CompareInt8("resnet18", dir, "--int8-model-rel-l2 0.25");
  EXPECT_EQ(r18.out.find("whole-model INT8 rel L2"), std::string::npos) << r18.out;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kiln
