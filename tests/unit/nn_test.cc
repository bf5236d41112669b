// Tests of the nn op family (src/ops/nn_*.cc): the blocked Gemm against a
// naive product, Conv / ConvTranspose / pools against naive loops on random
// shapes (groups, dilations, strides, pads, 1-D..3-D), symbolic shape
// inference, and a disabled-by-default walker over the family's ONNX node
// tests (run with --gtest_also_run_disabled_tests; KILN_NN_FILTER=conv,pool
// narrows it).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <sstream>

#include "onnx/import.h"
#include "ops/nn_common.h"
#include "ops/nn_gemm.h"
#include "ops/op_table.h"
#include "passes/shape_inference.h"
#include "reference/executor.h"

namespace kiln {
namespace {

// ---- Gemm ----

template <class T>
void CheckGemm(int64_t m, int64_t n, int64_t k, bool ta, bool tb, bool acc) {
  std::mt19937 rng(static_cast<uint32_t>(m * 131 + n * 17 + k));
  std::uniform_int_distribution<int> dist(-8, 8);
  std::vector<T> a(static_cast<size_t>(m * k)), b(static_cast<size_t>(k * n)), c(static_cast<size_t>(m * n));
  for (auto& v : a) v = static_cast<T>(dist(rng));
  for (auto& v : b) v = static_cast<T>(dist(rng));
  for (auto& v : c) v = static_cast<T>(dist(rng));
  std::vector<T> want = c;
  auto A = [&](int64_t i, int64_t p) {
    return ta ? a[static_cast<size_t>(p * m + i)] : a[static_cast<size_t>(i * k + p)];
  };
  auto B = [&](int64_t p, int64_t j) {
    return tb ? b[static_cast<size_t>(j * k + p)] : b[static_cast<size_t>(p * n + j)];
  };
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      T s = acc ? want[static_cast<size_t>(i * n + j)] : T(0);
      for (int64_t p = 0; p < k; ++p) s += A(i, p) * B(p, j);
      want[static_cast<size_t>(i * n + j)] = s;
    }
  MatrixRef<T> ar = ta ? MatrixRef<T>::Transposed(a.data(), m) : MatrixRef<T>::RowMajor(a.data(), k);
  MatrixRef<T> br = tb ? MatrixRef<T>::Transposed(b.data(), k) : MatrixRef<T>::RowMajor(b.data(), n);
  Gemm<T>(m, n, k, ar, br, c.data(), n, acc);
  for (size_t i = 0; i < c.size(); ++i) ASSERT_EQ(c[i], want[i]) << m << "x" << n << "x" << k << " at " << i;
}

TEST(NnGemm, MatchesNaive) {
  for (int64_t m : {1, 3, 4, 9, 70})
    for (int64_t n : {1, 7, 8, 33, 1100})
      for (int64_t k : {0, 1, 5, 300}) {
        CheckGemm<float>(m, n, k, false, false, false);
        CheckGemm<int32_t>(m, n, k, m % 2 == 1, n % 2 == 1, true);
      }
  CheckGemm<double>(130, 257, 513, true, false, true);
  CheckGemm<int64_t>(17, 19, 23, false, true, false);
}

// ---- Graph helpers ----

struct OneNode {
  Model model;
  Node* node = nullptr;
  explicit OneNode(const std::string& op, int64_t opset = 22) {
    model.opsets[""] = opset;
    model.graph = std::make_shared<Graph>();
    node = model.graph->AddNode(op, "n");
  }
  Value* Input(const std::string& name, DataType dt, Shape s) {
    Value* v = model.graph->AddValue(name);
    v->type = TypeInfo::Tensor(dt, std::move(s));
    model.graph->inputs.push_back(v);
    node->AddInput(v);
    return v;
  }
  Value* Const(const std::string& name, Tensor t) {
    Value* v = model.graph->AddValue(name);
    v->type = TypeInfo::Tensor(t.dtype(), t.shape());
    v->data = std::move(t);
    model.graph->initializers.push_back(v);
    node->AddInput(v);
    return v;
  }
  void Output(const std::string& name) {
    Value* v = model.graph->AddValue(name);
    node->AddOutput(v);
    model.graph->outputs.push_back(v);
  }
  void Ints(const std::string& name, std::vector<int64_t> v) {
    Attribute a;
    a.type = Attribute::Type::kInts;
    a.ints = std::move(v);
    node->attrs[name] = a;
  }
  void Int(const std::string& name, int64_t v) {
    Attribute a;
    a.type = Attribute::Type::kInt;
    a.i = v;
    node->attrs[name] = a;
  }
  void Str(const std::string& name, const std::string& v) {
    Attribute a;
    a.type = Attribute::Type::kString;
    a.s = v;
    node->attrs[name] = a;
  }
  std::string Infer() {
    const OpInfo* op = FindOp("", node->op_type);
    InferContext ctx(*node, model.opsets[""]);
    Status s = op->infer(ctx);
    if (!s.ok()) return s.ToString();
    std::string r;
    for (size_t i = 0; i < node->num_outputs(); ++i) r += (i ? " " : "") + node->output(i)->type.ToString();
    return r;
  }
  Expected<std::vector<RtValue>> Run(const std::vector<Tensor>& inputs) {
    std::map<std::string, RtValue> in;
    size_t k = 0;
    for (Value* v : model.graph->inputs) in[v->name()] = RtValue::FromTensor(inputs[k++]);
    return ReferenceExecutor(model).Run(in);
  }
};

Tensor Random(std::vector<int64_t> dims, uint32_t seed, DataType dt = DataType::kFloat) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  Tensor t(dt, std::move(dims));
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (dt == DataType::kDouble) {
      t.mutable_data<double>()[i] = dist(rng);
    } else {
      t.mutable_data<float>()[i] = dist(rng);
    }
  }
  return t;
}

Shape Sym(std::vector<Dim> d) { return Shape(std::move(d)); }

// ---- Shape inference ----

TEST(NnInfer, ConvKeepsBatchSymbol) {
  OneNode g("Conv");
  g.Input("x", DataType::kFloat, Sym({Dim::Symbol("batch"), 3, 224, 224}));
  g.Const("w", Tensor(DataType::kFloat, {64, 3, 7, 7}));
  g.Output("y");
  g.Ints("strides", {2, 2});
  g.Ints("pads", {3, 3, 3, 3});
  EXPECT_EQ(g.Infer(), "float32[batch,64,112,112]");
}

TEST(NnInfer, ConvSymbolicSpatialAndSame) {
  OneNode g("Conv");
  g.Input("x", DataType::kFloat, Sym({Dim::Symbol("n"), 8, Dim::Symbol("h"), Dim::Symbol("w")}));
  g.Input("w", DataType::kFloat, Shape::Of({16, 4, 3, 3}));
  g.Output("y");
  g.Int("group", 2);
  g.Ints("pads", {1, 1, 1, 1});
  EXPECT_EQ(g.Infer(), "float32[n,16,h,w]");
  g.Str("auto_pad", "SAME_UPPER");
  g.node->attrs.erase("pads");
  g.Ints("strides", {2, 2});
  EXPECT_EQ(g.Infer(), "float32[n,16,(h+1)/2,(w+1)/2]");
}

TEST(NnInfer, ConvChannelMismatchIsAnError) {
  OneNode g("Conv");
  g.Input("x", DataType::kFloat, Shape::Of({1, 4, 8, 8}));
  g.Const("w", Tensor(DataType::kFloat, {64, 3, 7, 7}));
  g.Output("y");
  std::string s = g.Infer();
  EXPECT_NE(s.find("does not match"), std::string::npos) << s;
  EXPECT_NE(s.find("node 'n' (Conv)"), std::string::npos) << s;
}

TEST(NnInfer, PoolsAndNorms) {
  {
    OneNode g("MaxPool");
    g.Input("x", DataType::kFloat, Sym({Dim::Symbol("batch"), 64, 112, 112}));
    g.Output("y");
    g.Output("i");
    g.Ints("kernel_shape", {3, 3});
    g.Ints("strides", {2, 2});
    g.Ints("pads", {1, 1, 1, 1});
    EXPECT_EQ(g.Infer(), "float32[batch,64,56,56] int64[batch,64,56,56]");
  }
  {
    OneNode g("GlobalAveragePool");
    g.Input("x", DataType::kFloat16, Sym({Dim::Symbol("batch"), 2048, 7, 7}));
    g.Output("y");
    EXPECT_EQ(g.Infer(), "float16[batch,2048,1,1]");
  }
  {
    OneNode g("LayerNormalization", 17);
    g.Input("x", DataType::kFloat16, Sym({Dim::Symbol("batch"), Dim::Symbol("seq"), 768}));
    g.Input("s", DataType::kFloat16, Shape::Of({768}));
    g.Output("y");
    g.Output("mean");
    g.Output("inv");
    EXPECT_EQ(g.Infer(), "float16[batch,seq,768] float32[batch,seq,1] float32[batch,seq,1]");
  }
  {
    OneNode g("ConvTranspose");
    g.Input("x", DataType::kFloat, Sym({Dim::Symbol("batch"), 8, Dim::Symbol("h"), 5}));
    g.Input("w", DataType::kFloat, Shape::Of({8, 3, 4, 4}));
    g.Output("y");
    g.Int("group", 2);
    g.Ints("strides", {2, 2});
    g.Ints("pads", {1, 1, 1, 1});
    EXPECT_EQ(g.Infer(), "float32[batch,6,h*2,10]");
  }
}

// ---- Conv against naive loops ----

struct ConvCase {
  std::vector<int64_t> x, w, strides, dilations, pads;
  int64_t group;
};

// Naive direct N-D convolution in double.
std::vector<double> NaiveConv(const Tensor& x, const Tensor& w, const Tensor* b, const ConvCase& c,
                              std::vector<int64_t>* ydims) {
  const size_t nd = c.x.size() - 2;
  std::vector<int64_t> out(nd);
  for (size_t i = 0; i < nd; ++i)
    out[i] =
        (c.x[i + 2] + c.pads[i] + c.pads[nd + i] - (c.w[i + 2] - 1) * c.dilations[i] - 1) / c.strides[i] + 1;
  const int64_t n = c.x[0], cin = c.x[1], m = c.w[0], cg = cin / c.group, mg = m / c.group;
  *ydims = {n, m};
  ydims->insert(ydims->end(), out.begin(), out.end());
  const int64_t osz = nn::Product(out), ksz = nn::Product(std::vector<int64_t>(c.w.begin() + 2, c.w.end()));
  const std::vector<int64_t> xs = Strides(c.x), ws = Strides(c.w);
  std::vector<double> y(static_cast<size_t>(n * m * osz));
  std::vector<int64_t> op(nd), kp(nd);
  for (int64_t b0 = 0; b0 < n; ++b0)
    for (int64_t oc = 0; oc < m; ++oc)
      for (int64_t o = 0; o < osz; ++o) {
        int64_t r = o;
        for (size_t d = nd; d-- > 0;) op[d] = r % out[d], r /= out[d];
        double s = b ? b->ScalarAt(oc) : 0.0;
        const int64_t g = oc / mg;
        for (int64_t ic = 0; ic < cg; ++ic)
          for (int64_t k = 0; k < ksz; ++k) {
            int64_t q = k;
            for (size_t d = nd; d-- > 0;) kp[d] = q % c.w[d + 2], q /= c.w[d + 2];
            int64_t xoff = b0 * xs[0] + (g * cg + ic) * xs[1];
            bool inside = true;
            for (size_t d = 0; d < nd; ++d) {
              const int64_t pos = op[d] * c.strides[d] - c.pads[d] + kp[d] * c.dilations[d];
              inside = inside && pos >= 0 && pos < c.x[d + 2];
              xoff += pos * xs[d + 2];
            }
            if (!inside) continue;
            int64_t woff = oc * ws[0] + ic * ws[1];
            for (size_t d = 0; d < nd; ++d) woff += kp[d] * ws[d + 2];
            s += x.ScalarAt(xoff) * w.ScalarAt(woff);
          }
        y[static_cast<size_t>((b0 * m + oc) * osz + o)] = s;
      }
  return y;
}

TEST(NnConv, MatchesNaive) {
  const std::vector<ConvCase> cases = {
      {{2, 3, 9, 8}, {4, 3, 3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1},
      {{1, 4, 11, 7}, {6, 2, 3, 2}, {2, 3}, {2, 1}, {0, 1, 2, 0}, 2},
      {{1, 8, 10, 10}, {8, 1, 3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 8},  // depthwise
      {{1, 4, 10, 10}, {8, 1, 5, 5}, {1, 1}, {2, 2}, {4, 4, 4, 4}, 4},  // depthwise, multiplier 2
      {{2, 5, 17}, {3, 5, 4}, {3}, {2}, {2, 1}, 1},                     // 1-D
      {{1, 2, 5, 6, 4}, {3, 2, 2, 3, 2}, {1, 2, 1}, {1, 1, 2}, {0, 1, 1, 1, 0, 0}, 1},  // 3-D
      {{1, 16, 6, 6}, {8, 16, 1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 1},                  // pointwise
      {{1, 64, 20, 20}, {32, 64, 3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1},               // threaded Gemm
  };
  uint32_t seed = 1;
  for (const ConvCase& c : cases) {
    OneNode g("Conv");
    Tensor x = Random(c.x, seed++), w = Random(c.w, seed++), b = Random({c.w[0]}, seed++);
    g.Input("x", DataType::kFloat, x.shape());
    g.Input("w", DataType::kFloat, w.shape());
    g.Input("b", DataType::kFloat, b.shape());
    g.Output("y");
    g.Ints("strides", c.strides);
    g.Ints("dilations", c.dilations);
    g.Ints("pads", c.pads);
    g.Int("group", c.group);
    auto r = g.Run({x, w, b});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    std::vector<int64_t> ydims;
    std::vector<double> want = NaiveConv(x, w, &b, c, &ydims);
    const Tensor& y = (*r)[0].tensor;
    ASSERT_EQ(y.dims(), ydims);
    for (int64_t i = 0; i < y.numel(); ++i)
      ASSERT_NEAR(y.ScalarAt(i), want[static_cast<size_t>(i)], 1e-4) << i;
  }
}

TEST(NnConv, Float16RoundsOutputs) {
  OneNode g("Conv");
  Tensor x(DataType::kFloat16, {1, 1, 3, 3}), w(DataType::kFloat16, {1, 1, 2, 2});
  for (int64_t i = 0; i < 9; ++i) x.mutable_data<Half>()[i] = Half(0.1f * static_cast<float>(i + 1));
  for (int64_t i = 0; i < 4; ++i) w.mutable_data<Half>()[i] = Half(1.0f / 3.0f);
  g.Input("x", DataType::kFloat16, x.shape());
  g.Input("w", DataType::kFloat16, w.shape());
  g.Output("y");
  auto r = g.Run({x, w});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Tensor& y = (*r)[0].tensor;
  ASSERT_EQ(y.dtype(), DataType::kFloat16);
  float want = 0;
  for (int64_t i : {0, 1, 3, 4})
    want += static_cast<float>(x.data<Half>()[i]) * static_cast<float>(w.data<Half>()[0]);
  EXPECT_EQ(y.data<Half>()[0].bits, Half(want).bits);
}

TEST(NnConv, BadWeightIsAnErrorNotACrash) {
  OneNode g("Conv");
  g.Input("x", DataType::kFloat, Shape::Of({1, 3, 4, 4}));
  g.Input("w", DataType::kFloat, Shape::Of({2, 3, 5, 5}));
  g.Output("y");
  auto r = g.Run({Tensor(DataType::kFloat, {1, 3, 4, 4}), Tensor(DataType::kFloat, {2, 3, 5, 5})});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("does not fit"), std::string::npos) << r.status().ToString();
}

// ConvTranspose is the adjoint of Conv: <conv(x), y> == <x, convT(y)>.
TEST(NnConvTranspose, IsAdjointOfConv) {
  const std::vector<ConvCase> cases = {
      {{1, 4, 7, 6}, {6, 2, 3, 3}, {2, 1}, {1, 2}, {1, 0, 1, 2}, 2},
      {{2, 3, 9}, {4, 3, 4}, {3}, {1}, {2, 2}, 1},
  };
  uint32_t seed = 100;
  for (const ConvCase& c : cases) {
    Tensor x = Random(c.x, seed++, DataType::kDouble), w = Random(c.w, seed++, DataType::kDouble);
    OneNode conv("Conv");
    conv.Input("x", DataType::kDouble, x.shape());
    conv.Input("w", DataType::kDouble, w.shape());
    conv.Output("y");
    conv.Ints("strides", c.strides);
    conv.Ints("dilations", c.dilations);
    conv.Ints("pads", c.pads);
    conv.Int("group", c.group);
    auto cy = conv.Run({x, w});
    ASSERT_TRUE(cy.ok()) << cy.status().ToString();
    Tensor y = Random((*cy)[0].tensor.dims(), seed++, DataType::kDouble);
    // ConvTranspose weights are [C_in, C_out / group, k...]: with C_in the
    // conv's output channels, the conv's weight tensor as it is.
    const Tensor& wt = w;
    OneNode ct("ConvTranspose");
    ct.Input("y", DataType::kDouble, y.shape());
    ct.Input("w", DataType::kDouble, wt.shape());
    ct.Output("x");
    ct.Ints("strides", c.strides);
    ct.Ints("dilations", c.dilations);
    ct.Ints("pads", c.pads);
    ct.Int("group", c.group);
    std::vector<int64_t> op(c.x.size() - 2);
    const std::vector<int64_t>& yd = (*cy)[0].tensor.dims();
    for (size_t i = 0; i < op.size(); ++i)  // output_padding restores the rounded-away rows
      op[i] = c.x[i + 2] - ((yd[i + 2] - 1) * c.strides[i] + (c.w[i + 2] - 1) * c.dilations[i] + 1 -
                            c.pads[i] - c.pads[op.size() + i]);
    ct.Ints("output_padding", op);
    auto cx = ct.Run({y, wt});
    ASSERT_TRUE(cx.ok()) << cx.status().ToString();
    ASSERT_EQ((*cx)[0].tensor.dims(), x.dims());
    double lhs = 0, rhs = 0;
    for (int64_t i = 0; i < y.numel(); ++i) lhs += (*cy)[0].tensor.data<double>()[i] * y.data<double>()[i];
    for (int64_t i = 0; i < x.numel(); ++i) rhs += x.data<double>()[i] * (*cx)[0].tensor.data<double>()[i];
    EXPECT_NEAR(lhs, rhs, 1e-9 * (1 + std::fabs(lhs)));
  }
}

TEST(NnPool, AveragePoolCeilAndPads) {
  // 1x1x4x4 ramp, 3x3 window, stride 2, ceil: windows clipped at the edge.
  OneNode g("AveragePool");
  Tensor x(DataType::kFloat, {1, 1, 4, 4});
  for (int64_t i = 0; i < 16; ++i) x.mutable_data<float>()[i] = static_cast<float>(i + 1);
  g.Input("x", DataType::kFloat, x.shape());
  g.Output("y");
  g.Ints("kernel_shape", {3, 3});
  g.Ints("strides", {2, 2});
  g.Int("ceil_mode", 1);
  auto r = g.Run({x});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const float* y = (*r)[0].tensor.data<float>();
  EXPECT_FLOAT_EQ(y[0], 6.f);
  EXPECT_FLOAT_EQ(y[1], 7.5f);
  EXPECT_FLOAT_EQ(y[2], 12.f);
  EXPECT_FLOAT_EQ(y[3], 13.5f);
}

TEST(NnPool, GlobalLpAndInt8MaxWithIndices) {
  {
    OneNode g("GlobalLpPool");
    Tensor x = Tensor::FromVector<float>(DataType::kFloat, {1, 2, 2}, {3.f, -4.f, 1.f, 0.f});
    g.Input("x", DataType::kFloat, x.shape());
    g.Output("y");
    auto r = g.Run({x});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ((*r)[0].tensor.dims(), (std::vector<int64_t>{1, 2, 1}));
    EXPECT_FLOAT_EQ((*r)[0].tensor.data<float>()[0], 5.f);
    EXPECT_FLOAT_EQ((*r)[0].tensor.data<float>()[1], 1.f);
  }
  {
    // int8 2x3 plane, 2x2 window stride 1: indices in column-major order.
    OneNode g("MaxPool");
    Tensor x = Tensor::FromVector<int8_t>(DataType::kInt8, {1, 1, 2, 3}, {-5, 7, -128, 3, 2, 9});
    g.Input("x", DataType::kInt8, x.shape());
    g.Output("y");
    g.Output("i");
    g.Ints("kernel_shape", {2, 2});
    g.Int("storage_order", 1);
    auto r = g.Run({x});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const Tensor& y = (*r)[0].tensor;
    const Tensor& idx = (*r)[1].tensor;
    ASSERT_EQ(y.dims(), (std::vector<int64_t>{1, 1, 1, 2}));
    EXPECT_EQ(y.data<int8_t>()[0], 7);
    EXPECT_EQ(y.data<int8_t>()[1], 9);
    EXPECT_EQ(idx.data<int64_t>()[0], 2);  // (h=0, w=1) -> 0 + 1 * 2
    EXPECT_EQ(idx.data<int64_t>()[1], 5);  // (h=1, w=2) -> 1 + 2 * 2
  }
}

TEST(NnDropout, TrainingMaskIsSeededAndScaled) {
  OneNode g("Dropout");
  Tensor x(DataType::kFloat, {1000});
  for (int64_t i = 0; i < 1000; ++i) x.mutable_data<float>()[i] = 1.f;
  g.Input("x", DataType::kFloat, x.shape());
  g.Input("r", DataType::kFloat, Shape::Scalar());
  g.Input("t", DataType::kBool, Shape::Scalar());
  g.Output("y");
  g.Output("mask");
  g.Int("seed", 3);
  Tensor t(DataType::kBool, {});
  t.mutable_data<bool>()[0] = true;
  auto a = g.Run({x, Tensor::Scalar(0.25f), t});
  auto b = g.Run({x, Tensor::Scalar(0.25f), t});
  ASSERT_TRUE(a.ok() && b.ok());
  int kept = 0;
  for (int64_t i = 0; i < 1000; ++i) {
    const bool m = (*a)[1].tensor.data<bool>()[i];
    kept += m;
    EXPECT_EQ(m, (*b)[1].tensor.data<bool>()[i]);
    EXPECT_FLOAT_EQ((*a)[0].tensor.data<float>()[i], m ? 1.f / 0.75f : 0.f);
  }
  EXPECT_NEAR(kept, 750, 60);
}

// The ONNX backend node tests of these ops run through `kiln conformance`
// (tests/conformance, with a per-case baseline), not here.

}  // namespace
}  // namespace kiln
