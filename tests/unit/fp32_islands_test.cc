// FP32 islands (passes/fp32_islands.h): which nodes of the overflow-prone
// patterns stay FP32 and why, and, end to end through the GPU builder's passes
// with --fp16, that a decomposed LayerNorm/Softmax whose squares/exponentials
// leave FP16's range computes what the FP32 model computes on the CPU
// reference (which stores FP16 values as FP16, so the overflow reproduces)
// while the same build without the islands does not.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <filesystem>

#include "build/build_passes.h"
#include "io/npy.h"
#include "graph_builder.h"
#include "graph_nodes.h"
#include "kiln/engine.h"
#include "passes/fp16.h"
#include "passes/fp32_islands.h"
#include "plan/plan_config.h"

namespace kiln {
namespace {

using testing_build::GraphBuilder;

AttributeMap Axes(std::vector<int64_t> axes, int64_t keepdims = 1) {
  return {{"axes", Attribute::FromInts(std::move(axes))}, {"keepdims", Attribute::FromInt(keepdims)}};
}

// Node name → reason.
std::map<std::string, std::string> Islands(const Model& m, Fp32IslandOptions o = {}) {
  std::map<std::string, std::string> out;
  for (const Fp32Node& f : FindFp32Islands(m, o)) {
    EXPECT_FALSE(f.reason.empty()) << f.node->name;
    EXPECT_TRUE(out.emplace(f.node->name, f.reason).second) << "listed twice: " << f.node->name;
  }
  return out;
}

std::set<std::string> Names(const std::map<std::string, std::string>& islands) {
  std::set<std::string> s;
  for (const auto& [name, reason] : islands) s.insert(name);
  return s;
}

// x (opset 11 so that every reduction takes its axes as an attribute).
GraphBuilder Builder() {
  GraphBuilder b;
  b.Opset(11);
  return b;
}

// y = (x - E[x]) / sqrt(E[x²] - E[x]² + eps) * gamma + beta over the last axis of x [rows, cols].
std::unique_ptr<Model> VarianceLayerNorm(int64_t cols, bool sum_form) {
  GraphBuilder b = Builder();
  Value* x = b.Input("x", Shape({Dim(8), Dim(cols)}));
  Value* m = b.Op("ReduceMean", "mean", {x}, Axes({-1}));
  Value* sq = b.Op("Mul", "sq", {x, x});
  Value* m2 = sum_form ? b.Op("Div", "m2", {b.Op("ReduceSum", "sumsq", {sq}, Axes({-1})),
                                             b.Scalar("n", static_cast<double>(cols))})
                       : b.Op("ReduceMean", "m2", {sq}, Axes({-1}));
  Value* var = b.Op("Sub", "var", {m2, b.Op("Mul", "mm", {m, m})});
  Value* sd = b.Op("Sqrt", "sd", {b.Op("Add", "ve", {var, b.Scalar("eps", 1e-5)})});
  Value* y = b.Op("Div", "y", {b.Op("Sub", "xc", {x, m}), sd});
  Value* out = b.Op("Add", "out", {b.Op("Mul", "scaled", {y, b.Const("gamma", {cols})}), b.Const("beta", {cols})});
  b.Output(out);
  return b.Done();
}

// softmax(x) over the last axis without the max subtraction: Exp overflows
// FP16 above 11.
std::unique_ptr<Model> DecomposedSoftmax(bool then_matmul) {
  GraphBuilder b = Builder();
  Value* x = b.Input("x", Shape({Dim(4), Dim(32)}));
  Value* e = b.Op("Exp", "e", {x});
  Value* p = b.Op("Div", "p", {e, b.Op("ReduceSum", "s", {e}, Axes({-1}))});
  b.Output(then_matmul ? b.Op("MatMul", "mm", {p, b.Const("w", {32, 16})}) : p);
  return b.Done();
}

// x * rsqrt(mean(x²) + eps) * gamma.
std::unique_ptr<Model> RmsNorm(bool pow_form) {
  GraphBuilder b = Builder();
  Value* x = b.Input("x", Shape({Dim(8), Dim(64)}));
  Value* sq = pow_form ? b.Op("Pow", "sq", {x, b.Scalar("two", 2.0)}) : b.Op("Mul", "sq", {x, x});
  Value* ms = b.Op("ReduceMean", "ms", {sq}, Axes({-1}));
  Value* rs = b.Op("Reciprocal", "rs", {b.Op("Sqrt", "rms", {b.Op("Add", "mse", {ms, b.Scalar("eps", 1e-6)})})});
  b.Output(b.Op("Mul", "g", {b.Op("Mul", "y", {x, rs}), b.Const("gamma", {64})}));
  return b.Done();
}

// Largest rel L2 over the outputs; infinity when `got` has a non-finite value.
double RelL2(const std::vector<RtValue>& want, const std::vector<RtValue>& got) {
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const Tensor& w = want[i].tensor;
    const Tensor& o = got[i].tensor;
    double num = 0, den = 0;
    for (int64_t k = 0; k < w.numel(); ++k) {
      double a = w.ScalarAt(k), b = o.ScalarAt(k);
      if (!std::isfinite(b)) return std::numeric_limits<double>::infinity();
      num += (a - b) * (a - b);
      den += a * a;
    }
    worst = std::max(worst, std::sqrt(num / den));
  }
  return worst;
}

// x with magnitudes in [lo, hi] and random signs (or all positive).
std::map<std::string, RtValue> Feed(const Model& m, double lo, double hi, bool signs = true) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> mag(lo, hi);
  std::map<std::string, RtValue> feed;
  for (const Value* in : m.graph->inputs) {
    std::vector<int64_t> dims;
    for (const Dim& d : in->shape().dims()) dims.push_back(d.value());
    Tensor t(DataType::kFloat, dims);
    for (int64_t i = 0; i < t.numel(); ++i)
      t.mutable_data<float>()[i] = static_cast<float>(signs && (rng() & 1u) ? -mag(rng) : mag(rng));
    feed[in->name()] = RtValue::FromTensor(t);
  }
  return feed;
}

// Builds `fp32` through the GPU builder's passes with --fp16 (islands on or
// off) and returns the rel L2 of its CPU-reference outputs against the FP32
// model's.
double Fp16BuildRelL2(const Model& fp32, const std::map<std::string, RtValue>& feed, bool islands,
                      std::vector<std::string>* precision = nullptr, const std::string& calib = "") {
  std::unique_ptr<Model> built = CloneModel(fp32);
  BuildOptions opt;
  opt.fp16 = true;
  opt.fp32_islands = islands;
  opt.calib_inputs = calib;
  std::vector<std::string> notes;
  Status s = RunBuildPasses(*built, opt, &notes, precision);
  EXPECT_TRUE(s.ok()) << s.ToString();
  Status valid = VerifyModel(*built);
  EXPECT_TRUE(valid.ok()) << valid.ToString() << "\n" << PrintGraph(*built);
  auto want = ReferenceExecutor(fp32).Run(feed);
  auto got = ReferenceExecutor(*built).Run(feed);
  EXPECT_TRUE(want.ok() && got.ok()) << PrintGraph(*built);
  if (!want.ok() || !got.ok()) return std::numeric_limits<double>::infinity();
  for (const RtValue& v : *got) EXPECT_EQ(v.tensor.dtype(), DataType::kFloat);
  return RelL2(*want, *got);
}

TEST(Fp32Islands, VarianceLayerNormFromTheSquareToTheNormalisingDivision) {
  auto m = VarianceLayerNorm(64, false);
  auto islands = Islands(*m);
  EXPECT_EQ(Names(islands), (std::set<std::string>{"sq", "m2", "mm", "var", "ve", "sd", "y"}));
  EXPECT_NE(islands["sq"].find("squares 'x'"), std::string::npos) << islands["sq"];
  EXPECT_NE(islands["mm"].find("squares 'mean'"), std::string::npos) << islands["mm"];
  EXPECT_NE(islands["var"].find("from Mul 'sq'"), std::string::npos) << islands["var"];
  EXPECT_NE(islands["y"].find("normalising division"), std::string::npos) << islands["y"];

  auto sum_form = VarianceLayerNorm(64, true);
  EXPECT_EQ(Names(Islands(*sum_form)), (std::set<std::string>{"sq", "sumsq", "m2", "mm", "var", "ve", "sd", "y"}));
}

// Criterion 3 of issue #14: values of 300–1000 square past 65504.
TEST(Fp32Islands, Fp16BuildOfAnOverflowingVarianceLayerNormMatchesFp32) {
  for (bool sum_form : {false, true}) {
    auto m = VarianceLayerNorm(256, sum_form);
    auto feed = Feed(*m, 300, 1000);
    std::vector<std::string> report;
    double with = Fp16BuildRelL2(*m, feed, true, &report);
    double without = Fp16BuildRelL2(*m, feed, false);
    std::printf("variance LayerNorm (%s): fp16 rel L2 %.3g with FP32 islands, %.3g without\n",
                sum_form ? "ReduceSum/n" : "ReduceMean", with, without);
    EXPECT_LE(with, 1e-2);
    EXPECT_GT(without, 0.1);  // the test can fail: FP16 alone overflows
    ASSERT_FALSE(report.empty());
    EXPECT_NE(report[0].find("stays FP32: squares 'x'"), std::string::npos) << report[0];
  }
}

TEST(Fp32Islands, DecomposedSoftmaxEndsAtTheDivision) {
  auto m = DecomposedSoftmax(true);
  auto islands = Islands(*m);
  EXPECT_EQ(Names(islands), (std::set<std::string>{"e", "s", "p"}));
  EXPECT_NE(islands["e"].find("Exp"), std::string::npos);

  auto plain = DecomposedSoftmax(false);
  auto feed = Feed(*plain, 0, 20, false);
  double with = Fp16BuildRelL2(*plain, feed, true);
  double without = Fp16BuildRelL2(*plain, feed, false);
  std::printf("decomposed softmax of x in [0, 20]: fp16 rel L2 %.3g with FP32 islands, %.3g without\n", with,
              without);
  EXPECT_LE(with, 1e-2);
  EXPECT_GT(without, 0.1);
}

TEST(Fp32Islands, RmsNormThroughTheNormalisingProduct) {
  for (bool pow_form : {false, true}) {
    auto m = RmsNorm(pow_form);
    auto islands = Islands(*m);
    EXPECT_EQ(Names(islands), (std::set<std::string>{"sq", "ms", "mse", "rms", "rs", "y"}));
    EXPECT_NE(islands["sq"].find(pow_form ? "Pow('x', 2" : "squares 'x'"), std::string::npos) << islands["sq"];
    EXPECT_NE(islands["y"].find("normalising product"), std::string::npos) << islands["y"];
    auto feed = Feed(*m, 300, 1000);
    EXPECT_LE(Fp16BuildRelL2(*m, feed, true), 1e-2);
    EXPECT_GT(Fp16BuildRelL2(*m, feed, false), 0.1);
  }
}

TEST(Fp32Islands, L2NormsAndSumsOfSquares) {
  GraphBuilder b = Builder();
  Value* x = b.Input("x", Shape({Dim(4), Dim(16)}));
  b.Output(b.Op("Div", "n1", {x, b.Op("ReduceL2", "l2", {x}, Axes({-1}))}));
  Value* ss = b.Op("ReduceSumSquare", "ss", {x}, Axes({-1}));
  b.Output(b.Op("Div", "n2", {x, b.Op("Sqrt", "norm", {ss})}));
  auto m = b.Done();
  auto islands = Islands(*m);
  EXPECT_EQ(Names(islands), (std::set<std::string>{"l2", "n1", "ss", "norm", "n2"}));
  EXPECT_NE(islands["ss"].find("sum of squares"), std::string::npos);
  EXPECT_NE(islands["l2"].find("L2 norm"), std::string::npos);
}

TEST(Fp32Islands, LogSumExpChains) {
  GraphBuilder b = Builder();
  Value* x = b.Input("x", Shape({Dim(4), Dim(16)}));
  Value* lse = b.Op("Log", "lse", {b.Op("ReduceSum", "s", {b.Op("Exp", "e", {x})}, Axes({-1}))});
  b.Output(b.Op("Sub", "logp", {x, lse}));
  b.Output(b.Op("ReduceLogSumExp", "rlse", {x}, Axes({-1})));
  auto m = b.Done();
  auto islands = Islands(*m);
  EXPECT_EQ(Names(islands), (std::set<std::string>{"e", "s", "lse", "rlse"}));
  EXPECT_NE(islands["rlse"].find("log-sum-exp"), std::string::npos);
}

TEST(Fp32Islands, LargeAxisSumsAndMeans) {
  GraphBuilder b = Builder();
  Value* x = b.Input("x", Shape({Dim(2), Dim(8192)}));
  b.Output(b.Op("Relu", "after_sum", {b.Op("ReduceSum", "big_sum", {x}, Axes({1}))}));
  b.Output(b.Op("Relu", "after_mean", {b.Op("ReduceMean", "big_mean", {x}, Axes({1}))}));
  b.Output(b.Op("ReduceSum", "small_sum", {x}, Axes({0})));
  b.Output(b.Op("ReduceSum", "all_sum", {x}, {{"keepdims", Attribute::FromInt(0)}}));
  auto m = b.Done();
  auto islands = Islands(*m);
  // The large sum may overflow: its consumer reads FP32; a mean is back in range.
  EXPECT_EQ(Names(islands), (std::set<std::string>{"big_sum", "after_sum", "big_mean", "all_sum"}));
  EXPECT_NE(islands["big_sum"].find("ReduceSum over 8192 elements (more than 4096)"), std::string::npos)
      << islands["big_sum"];
  Fp32IslandOptions high;
  high.large_reduction = 1 << 20;
  EXPECT_TRUE(Islands(*m, high).empty());
}

// GroupNorm exported as Reshape → mean → (x - m)² → mean → √ → Div → Reshape.
TEST(Fp32Islands, DecomposedGroupNorm) {
  GraphBuilder b = Builder();
  Value* x = b.Input("x", Shape({Dim(2), Dim(8), Dim(4), Dim(4)}));
  Value* shape = b.Op("Constant", "shape", {},
                      {{"value", Attribute::FromTensor(Tensor::FromVector<int64_t>(DataType::kInt64, {3}, {2, 2, -1}))}});
  Value* g = b.Op("Reshape", "groups", {x, shape});
  Value* xc = b.Op("Sub", "xc", {g, b.Op("ReduceMean", "mean", {g}, Axes({-1}))});
  Value* var = b.Op("ReduceMean", "var", {b.Op("Pow", "sq", {xc, b.Scalar("two", 2.0)})}, Axes({-1}));
  Value* y = b.Op("Div", "y", {xc, b.Op("Sqrt", "sd", {b.Op("Add", "ve", {var, b.Scalar("eps", 1e-5)})})});
  b.Output(b.Op("Mul", "scaled", {b.Op("Reshape", "back", {y, b.Op("Shape", "xshape", {x})}), b.Scalar("gamma", 0.5)}));
  auto m = b.Done();
  EXPECT_EQ(Names(Islands(*m)), (std::set<std::string>{"sq", "var", "ve", "sd", "y"}));
  auto feed = Feed(*m, 300, 1000);
  EXPECT_LE(Fp16BuildRelL2(*m, feed, true), 1e-2);
  EXPECT_GT(Fp16BuildRelL2(*m, feed, false), 0.1);
}

// A conv/relu/matmul network has no island: the pass converts it exactly as
// without the analysis.
TEST(Fp32Islands, PlainConvReluMatMulStaysFp16) {
  GraphBuilder b = Builder();
  Value* x = b.Input("x", Shape({Dim(1), Dim(3), Dim(8), Dim(8)}));
  Value* c = b.Op("Relu", "relu", {b.Op("Conv", "conv", {x, b.Const("w", {4, 3, 3, 3}), b.Const("bias", {4})})});
  Value* flat = b.Op("Flatten", "flat", {c});
  Value* mm = b.Op("MatMul", "fc", {flat, b.Const("fc_w", {144, 10})});
  b.Output(b.Op("Softmax", "prob", {b.Op("Add", "logits", {mm, b.Const("fc_b", {10})})}));
  auto m = b.Done();
  EXPECT_TRUE(Islands(*m).empty());

  auto with = CloneModel(*m), without = CloneModel(*m);
  PassContext ctx;
  std::vector<Fp32Node> report;
  Fp16Options on;
  on.report = &report;
  Fp16Options off;
  off.fp32_islands = false;
  ASSERT_TRUE(RunConvertToFp16(*with, ctx, on).ok());
  ASSERT_TRUE(RunConvertToFp16(*without, ctx, off).ok());
  EXPECT_TRUE(report.empty());
  EXPECT_EQ(PrintGraph(*with), PrintGraph(*without));
}

// Island nodes in an If branch and a Loop body: the branch squares a captured
// outer value; the body normalises its carried value (a body input, float16
// after the pass) and returns the island's output.
TEST(Fp32Islands, IfAndLoopBodies) {
  auto model = std::make_unique<Model>();
  model->ir_version = 8;
  model->opsets[""] = 17;
  model->graph = std::make_shared<Graph>();
  Graph* g = model->graph.get();
  testing_ir::Builder b(g);
  auto sub = [&](const char* name) {
    auto sg = std::make_shared<Graph>();
    sg->name = name;
    sg->parent = g;
    return sg;
  };
  auto axes = [](testing_ir::Builder& bb) { return bb.Const(Tensor::FromVector<int64_t>(DataType::kInt64, {1}, {-1})); };
  Value* cond = b.Input("cond", DataType::kBool, Shape::Scalar());
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim(4), Dim(32)}));
  Value* r = b.Op1("Relu", {x});
  auto then_g = sub("then");
  testing_ir::Builder tb(then_g.get());
  Value* ms = tb.Op1("ReduceSum", {tb.Op1("Mul", {r, r}), axes(tb)});
  tb.Output(tb.Op1("Div", {r, tb.Op1("Sqrt", {ms})}));
  auto else_g = sub("else");
  testing_ir::Builder eb(else_g.get());
  eb.Output(eb.Op1("Mul", {r, eb.Const(Tensor::FromVector<float>(DataType::kFloat, {}, {1e-3f}))}));
  b.Output(b.Op1("If", {cond}, {{"then_branch", Attribute::FromGraph(then_g)}, {"else_branch", Attribute::FromGraph(else_g)}}));

  auto body = sub("body");
  testing_ir::Builder bb(body.get());
  bb.Input("i", DataType::kInt64, Shape::Scalar());
  Value* c = bb.Input("c", DataType::kBool, Shape::Scalar());
  Value* acc = bb.Input("acc", DataType::kFloat, Shape({Dim(4), Dim(32)}));
  Value* rms = bb.Op1("Sqrt", {bb.Op1("ReduceMean", {bb.Op1("Mul", {acc, acc})}, {{"axes", Attribute::FromInts({-1})}})});
  Value* next = bb.Op1("Div", {acc, rms});
  bb.Output(bb.Op1("Identity", {c}));
  bb.Output(next);
  auto outs = b.Op("Loop", {b.Const(Tensor::ScalarInt64(2)), nullptr, x}, {{"body", Attribute::FromGraph(body)}}, 1);
  b.Output(b.Op1("Mul", {outs[0], b.Const(Tensor::FromVector<float>(DataType::kFloat, {}, {300.f}))}));
  ASSERT_TRUE(InferShapes(*model).ok());

  auto islands = FindFp32Islands(*model);
  EXPECT_EQ(islands.size(), 8u);  // then and body: Mul, the reduction, Sqrt, Div
  for (bool on : {true, false}) {
    auto after = CloneModel(*model);
    PassContext ctx;
    Fp16Options opt;
    opt.fp32_islands = on;
    Status s = RunConvertToFp16(*after, ctx, opt);
    ASSERT_TRUE(s.ok()) << s.ToString();
    Status valid = VerifyModel(*after);
    ASSERT_TRUE(valid.ok()) << valid.ToString() << "\n" << PrintGraph(*after);
    for (bool branch : {true, false}) {
      auto feed = Feed(*model, 300, 1000);
      feed["cond"] = RtValue::FromTensor(Tensor::FromVector<bool>(DataType::kBool, {}, {branch}));
      auto want = ReferenceExecutor(*model).Run(feed);
      auto got = ReferenceExecutor(*after).Run(feed);
      ASSERT_TRUE(want.ok() && got.ok()) << PrintGraph(*after);
      double rel = RelL2(*want, *got);
      if (on) {
        EXPECT_LE(rel, 1e-2) << "branch " << branch << "\n" << PrintGraph(*after);
      } else {
        EXPECT_GT(rel, 0.1) << "branch " << branch;
      }
    }
  }
}

// No structural pattern, but x·2000 leaves FP16's range on real inputs:
// --calib-inputs measures it and keeps it FP32.
TEST(Fp32Islands, CalibrationInputsKeepMeasuredOverflowsInFp32) {
  GraphBuilder b = Builder();
  Value* x = b.Input("x", Shape({Dim(4), Dim(64)}));
  Value* h = b.Op("Mul", "h", {x, b.Scalar("k", 2000.0)});
  Value* y = b.Op("Add", "y", {h, b.Const("bias", {64})});
  b.Output(b.Op("Mul", "out", {y, b.Scalar("scale", 1e-3)}));
  auto m = b.Done();
  EXPECT_TRUE(Islands(*m).empty());

  std::string dir = ::testing::TempDir() + "/kiln_fp32_calib";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir + "/sample1");
  auto feed = Feed(*m, 50, 100);
  ASSERT_TRUE(WriteNpy(dir + "/sample1/x.npy", feed["x"].tensor).ok());
  std::vector<std::string> report;
  double with = Fp16BuildRelL2(*m, feed, true, &report, dir);
  double without = Fp16BuildRelL2(*m, feed, true);
  std::printf("x*2000 with x in [50, 100]: fp16 rel L2 %.3g with --calib-inputs, %.3g without\n", with, without);
  EXPECT_LE(with, 1e-2);
  EXPECT_GT(without, 0.1);
  ASSERT_EQ(report.size(), 3u);
  EXPECT_NE(report[0].find("measured |max| "), std::string::npos) << report[0];

  // A sample set without the input's file is an error naming it.
  std::filesystem::create_directories(dir + "/sample2");
  ASSERT_TRUE(WriteNpy(dir + "/sample2/other.npy", feed["x"].tensor).ok());
  auto built = CloneModel(*m);
  BuildOptions opt;
  opt.fp16 = true;
  opt.calib_inputs = dir;
  std::vector<std::string> notes;
  Status s = RunBuildPasses(*built, opt, &notes);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("x.npy"), std::string::npos) << s.message();
}

// The plan records whether the build kept islands (refit re-runs the same
// passes) and the report; a plan from before the islands had none.
TEST(Fp32Islands, PlanConfigRecordsTheIslandsForRefit) {
  EngineConfig c;
  c.fp16 = true;
  c.fp32_islands = true;
  c.precision = {"node 'sq' (Mul) stays FP32: squares 'x'"};
  auto back = ConfigFromJson(ConfigToJson(c));
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->fp32_islands);
  EXPECT_EQ(back->precision, c.precision);
  EXPECT_TRUE(BuildOptionsOf(*back).fp32_islands);
  auto old = ConfigFromJson(R"({"fp16": true})");
  ASSERT_TRUE(old.ok());
  EXPECT_FALSE(BuildOptionsOf(*old).fp32_islands);
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// A node whose CUDA row takes float32 but not float16 keeps float32 in an
// FP16 build (with Casts around it), even with --no-fp32-islands, and the
// report says why; without this the build would fail at the GPU check.
// Rotary positions as Llama exports them: Range(0.0, Cast(seq), 1.0) ⊗ inv_freq, doubled, Cos/Sin, times x.
std::unique_ptr<Model> RotaryTables() {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("seq"), Dim(64)}));
  Value* seq = b.Op("Squeeze", "seq", {b.Op("Gather", "dim", {b.Op("Shape", "shape", {x}), b.Int64s("i0", {0})}),
                                       b.Int64s("a0", {0})});
  Value* count = b.Op("Cast", "count", {seq}, {{"to", Attribute::FromInt(static_cast<int64_t>(DataType::kFloat))}});
  Value* pos = b.Op("Range", "pos", {b.Scalar("start", 0.0), count, b.Scalar("step", 1.0)});
  Value* col = b.Op("Unsqueeze", "col", {pos, b.Int64s("a1", {1})});
  Value* inv_freq = b.Scalar("inv_freq", 1.0, {32});
  Value* angles = b.Op("Mul", "angles", {col, inv_freq});
  Value* twice = b.Op("Concat", "twice", {angles, angles}, {{"axis", Attribute::FromInt(-1)}});
  Value* rot = b.Op("Add", "rot", {b.Op("Mul", "xc", {x, b.Op("Cos", "cos", {twice})}),
                                   b.Op("Mul", "xs", {x, b.Op("Sin", "sin", {twice})})});
  b.Output(rot);
  return b.Done();
}

TEST(Fp32Islands, RotaryPositionsStayFp32UpToCosAndSin) {
  auto m = RotaryTables();
  auto islands = Islands(*m);
  EXPECT_EQ(Names(islands), (std::set<std::string>{"pos", "col", "angles", "twice", "cos", "sin"}));
  EXPECT_NE(islands["pos"].find("positions"), std::string::npos) << islands["pos"];

  // 2049 positions: a Cast to float16 would make the count 2048 (or 2050) and the angles near 2049 are
  // whole numbers apart in FP16. The FP16 build keeps the count's Cast a Cast to float32.
  Tensor x(DataType::kFloat, {2049, 64});
  for (int64_t i = 0; i < x.numel(); ++i) x.mutable_data<float>()[i] = 0.5f + 0.5f * static_cast<float>(i % 7) / 7;
  std::map<std::string, RtValue> feed{{"x", RtValue::FromTensor(x)}};
  double with = Fp16BuildRelL2(*m, feed, true);
  std::printf("rotary tables at 2049 positions: fp16 rel L2 %.3g with FP32 islands\n", with);
  EXPECT_LE(with, 2e-3);

  std::unique_ptr<Model> built = CloneModel(*m);
  BuildOptions opt;
  opt.fp16 = true;
  std::vector<std::string> notes;
  ASSERT_TRUE(RunBuildPasses(*built, opt, &notes, nullptr).ok());
  int ranges = 0;
  for (const Node* n : built->graph->nodes()) {
    if (n->op_type != "Range") continue;
    ++ranges;
    EXPECT_EQ(n->input(1)->dtype(), DataType::kFloat) << PrintGraph(*built);
  }
  EXPECT_EQ(ranges, 1) << PrintGraph(*built);

  // Without the islands the positions are float16: the table has the wrong length or the angles are off.
  std::unique_ptr<Model> plain = CloneModel(*m);
  opt.fp32_islands = false;
  ASSERT_TRUE(RunBuildPasses(*plain, opt, &notes, nullptr).ok());
  auto want = ReferenceExecutor(*m).Run(feed);
  auto got = ReferenceExecutor(*plain).Run(feed);
  ASSERT_TRUE(want.ok());
  EXPECT_TRUE(!got.ok() || RelL2(*want, *got) > 0.1);  // the test can fail: FP16 positions are wrong here
}

// CoordConv: a coordinate grid concatenated to a feature map. The Concat stays FP32 (it reads positions), but
// its output is safe: the convolution after it runs FP16.
TEST(Fp32Islands, PositionsMixedWithActivationsEndTheIsland) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({1, 4, 8, 8}));
  Value* pos = b.Op("Range", "pos", {b.Scalar("start", 0.0), b.Scalar("limit", 8.0), b.Scalar("step", 1.0)});
  Value* grid = b.Op("Expand", "grid", {b.Op("Div", "coords", {pos, b.Scalar("w", 8.0)}), b.Int64s("s", {1, 1, 8, 8})});
  Value* cat = b.Op("Concat", "cat", {x, grid}, {{"axis", Attribute::FromInt(1)}});
  b.Output(b.Op("Conv", "conv", {cat, b.Const("k", {8, 5, 3, 3})}, {{"pads", Attribute::FromInts({1, 1, 1, 1})}}));
  auto m = b.Done();
  EXPECT_EQ(Names(Islands(*m)), (std::set<std::string>{"pos", "coords", "grid", "cat"}));
}

TEST(Fp32Islands, Float32OnlyKernelsKeepFloat32) {
  for (bool islands : {true, false}) {
    GraphBuilder b;
    Value* boxes = b.Input("boxes", Shape({1, 6, 4}));
    Value* scores = b.Input("scores", Shape({1, 1, 6}));
    b.Output(b.Op("NonMaxSuppression", "nms", {b.Op("Relu", "r", {boxes}), scores}));
    auto m = b.Done();
    PassContext ctx;
    std::vector<Fp32Node> report;
    Fp16Options o;
    o.fp32_islands = islands;
    o.report = &report;
    ASSERT_TRUE(RunConvertToFp16(*m, ctx, o).ok());
    const Node* nms = nullptr;
    for (const Node* n : m->graph->nodes())
      if (n->op_type == "NonMaxSuppression") nms = n;
    ASSERT_TRUE(nms);
    EXPECT_EQ(nms->input(0)->dtype(), DataType::kFloat);
    EXPECT_EQ(nms->input(1)->dtype(), DataType::kFloat);
    bool reported = false;
    for (const Fp32Node& f : report) reported |= f.node == nms && f.reason.find("float32 only") != std::string::npos;
    EXPECT_TRUE(reported);
  }
}

}  // namespace
}  // namespace kiln
