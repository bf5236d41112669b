// Linalg op family: symbolic shape inference (MatMul, Gemm, Attention,
// Einsum, RNNs), the shared blocked GEMM (nn_gemm.h) against a naive product (odd sizes,
// threads, transposes), dtype handling (integer wrap-around, float16), Einsum
// equation forms, Det, and errors on bad input.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <random>

#include "op_test_util.h"
#include "ops/nn_gemm.h"

namespace kiln {
namespace {

using testing::OneNode;
using testing::Values;

Dim Sym(const std::string& s) { return Dim::Symbol(s); }

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// ---- inference ----

TEST(LinalgInfer, MatMulKeepsSymbols) {
  OneNode m("MatMul");
  m.Input("a", DataType::kFloat, Shape({Sym("batch"), Sym("seq"), Dim(768)}))
      .Input("b", DataType::kFloat, Shape::Of({768, 3072}))
      .Output("y");
  ASSERT_TRUE(m.Infer().ok());
  EXPECT_EQ(m.OutType(0).ToString(), "float32[batch,seq,3072]");
}

TEST(LinalgInfer, MatMulVectorsAndBroadcast) {
  OneNode a("MatMul");
  a.Input("a", DataType::kFloat, Shape::Of({4}))
      .Input("b", DataType::kFloat, Shape({Sym("n"), Dim(4), Dim(2)}))
      .Output("y");
  ASSERT_TRUE(a.Infer().ok());
  EXPECT_EQ(a.OutType(0).ToString(), "float32[n,2]");
  OneNode b("MatMul");
  b.Input("a", DataType::kFloat, Shape({Dim(3), Dim(1), Sym("m"), Dim(4)}))
      .Input("b", DataType::kFloat, Shape::Of({2, 4, 5}))
      .Output("y");
  ASSERT_TRUE(b.Infer().ok());
  EXPECT_EQ(b.OutType(0).ToString(), "float32[3,2,m,5]");
  OneNode c("MatMul");
  c.Input("a", DataType::kFloat, Shape::Of({3})).Input("b", DataType::kFloat, Shape::Of({3})).Output("y");
  ASSERT_TRUE(c.Infer().ok());
  EXPECT_EQ(c.OutType(0).ToString(), "float32[]");
}

TEST(LinalgInfer, MatMulInnerMismatchIsAnError) {
  OneNode m("MatMul");
  m.Input("a", DataType::kFloat, Shape::Of({2, 3}))
      .Input("b", DataType::kFloat, Shape::Of({4, 5}))
      .Output("y");
  Status s = m.Infer();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("(MatMul)"), std::string::npos) << s.message();
}

TEST(LinalgInfer, GemmTransposes) {
  OneNode m("Gemm", 13);
  m.Input("a", DataType::kFloat, Shape({Dim(64), Sym("batch")}))
      .Input("b", DataType::kFloat, Shape::Of({10, 64}))
      .Input("c", DataType::kFloat, Shape::Of({10}))
      .Output("y")
      .AttrInt("transA", 1)
      .AttrInt("transB", 1);
  ASSERT_TRUE(m.Infer().ok());
  EXPECT_EQ(m.OutType(0).ToString(), "float32[batch,10]");
}

TEST(LinalgInfer, Attention3dWithPast) {
  OneNode m("Attention", 23);
  m.Input("q", DataType::kFloat, Shape({Sym("b"), Sym("s"), Dim(64)}))
      .Input("k", DataType::kFloat, Shape({Sym("b"), Sym("s"), Dim(32)}))
      .Input("v", DataType::kFloat, Shape({Sym("b"), Sym("s"), Dim(48)}))
      .Omitted()
      .Input("pk", DataType::kFloat, Shape({Sym("b"), Dim(2), Sym("p"), Dim(16)}))
      .Input("pv", DataType::kFloat, Shape({Sym("b"), Dim(2), Sym("p"), Dim(24)}))
      .Output("y")
      .Output("present_k")
      .Output("present_v")
      .Output("qk")
      .AttrInt("q_num_heads", 4)
      .AttrInt("kv_num_heads", 2);
  ASSERT_TRUE(m.Infer().ok());
  EXPECT_EQ(m.OutType(0).ToString(), "float32[b,s,96]");
  EXPECT_EQ(m.OutType(1).ToString(), "float32[b,2,p+s,16]");
  EXPECT_EQ(m.OutType(2).ToString(), "float32[b,2,p+s,24]");
  EXPECT_EQ(m.OutType(3).ToString(), "float32[b,4,s,p+s]");
}

TEST(LinalgInfer, EinsumImplicitAndEllipsis) {
  OneNode m("Einsum", 12);
  m.Input("x", DataType::kFloat, Shape({Sym("b"), Dim(2), Dim(3)}))
      .Input("y", DataType::kFloat, Shape::Of({3, 4}))
      .Output("z")
      .AttrString("equation", "...ij,jk");
  ASSERT_TRUE(m.Infer().ok());
  EXPECT_EQ(m.OutType(0).ToString(), "float32[b,2,4]");
}

TEST(LinalgInfer, LstmLayouts) {
  OneNode m("LSTM", 22);
  m.Input("x", DataType::kFloat, Shape({Sym("batch"), Sym("seq"), Dim(8)}))
      .Input("w", DataType::kFloat, Shape::Of({2, 16, 8}))
      .Input("r", DataType::kFloat, Shape::Of({2, 16, 4}))
      .Output("y")
      .Output("yh")
      .Output("yc")
      .AttrInt("hidden_size", 4)
      .AttrInt("layout", 1)
      .AttrString("direction", "bidirectional");
  ASSERT_TRUE(m.Infer().ok());
  EXPECT_EQ(m.OutType(0).ToString(), "float32[batch,seq,2,4]");
  EXPECT_EQ(m.OutType(1).ToString(), "float32[batch,2,4]");
  EXPECT_EQ(m.OutType(2).ToString(), "float32[batch,2,4]");
}

// ---- GEMM kernel ----

TEST(LinalgGemm, MatchesNaiveAtOddSizesAndTransposes) {
  for (auto [M, N, K] :
       {std::array<int64_t, 3>{1, 1, 1}, {5, 7, 3}, {37, 531, 300}, {130, 70, 129}, {9, 3, 0}}) {
    for (int ta = 0; ta < 2; ++ta) {
      for (int tb = 0; tb < 2; ++tb) {
        std::vector<float> a = Random(static_cast<size_t>(M * K), 1),
                           b = Random(static_cast<size_t>(K * N), 2);
        std::vector<float> c(static_cast<size_t>(M * N), 99.0f);
        // Stored as [K, M] when transposed, so the view swaps strides.
        auto view = [](const float* p, int64_t ld, bool t) {
          return t ? MatrixRef<float>::Transposed(p, ld) : MatrixRef<float>::RowMajor(p, ld);
        };
        Gemm<float>(M, N, K, view(a.data(), ta ? M : K, ta), view(b.data(), tb ? K : N, tb), c.data(), N);
        double max_err = 0.0;
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j) {
            double ref = 0.0;
            for (int64_t k = 0; k < K; ++k)
              ref +=
                  static_cast<double>(ta ? a[k * M + i] : a[i * K + k]) * (tb ? b[j * K + k] : b[k * N + j]);
            max_err = std::max(max_err, std::fabs(ref - c[i * N + j]));
          }
        EXPECT_LT(max_err, 1e-4) << M << "x" << N << "x" << K << " ta=" << ta << " tb=" << tb;
      }
    }
  }
}

// BERT's FFN product (the blocked, threaded path) against double-precision
// dot products on a sample of elements. Its speed is in bench/cpu_reference_bench.cc.
TEST(LinalgGemm, BertSizedMatMulMatchesDotProducts) {
  OneNode m("MatMul", 13);
  m.Input("a", DataType::kFloat, Shape::Of({128, 768}))
      .Input("b", DataType::kFloat, Shape::Of({768, 3072}))
      .Output("y");
  std::vector<float> av = Random(128 * 768, 3), bv = Random(768 * 3072, 4);
  auto r = m.Run({Tensor::FromVector<float>(DataType::kFloat, {128, 768}, av),
                  Tensor::FromVector<float>(DataType::kFloat, {768, 3072}, bv)});
  ASSERT_TRUE(r.ok()) << r.status().message();
  const float* y = (*r)[0].data<float>();
  for (int64_t i = 0; i < 128; i += 9) {
    for (int64_t j = 0; j < 3072; j += 97) {
      double dot = 0;
      for (int64_t k = 0; k < 768; ++k) dot += double(av[size_t(i * 768 + k)]) * bv[size_t(k * 3072 + j)];
      ASSERT_NEAR(y[i * 3072 + j], dot, 1e-4 * (1 + std::fabs(dot))) << "element [" << i << "," << j << "]";
    }
  }
}

// ---- CPU reference ----

TEST(LinalgRun, MatMulBroadcastBatchAndVector) {
  OneNode m("MatMul", 13);
  m.Input("a", DataType::kFloat, Shape::Of({2, 1, 2, 3}))
      .Input("b", DataType::kFloat, Shape::Of({3}))
      .Output("y");
  auto r = m.Run(
      {Tensor::FromVector<float>(DataType::kFloat, {2, 1, 2, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}),
       Tensor::FromVector<float>(DataType::kFloat, {3}, {1, 0, -1})});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)[0].dims(), (std::vector<int64_t>{2, 1, 2}));
  EXPECT_EQ(Values<float>((*r)[0]), (std::vector<float>{-2, -2, -2, -2}));
}

TEST(LinalgRun, MatMulInt8WrapsAndFloat16Rounds) {
  OneNode m("MatMul", 13);
  m.Input("a", DataType::kInt8, Shape::Of({1, 2})).Input("b", DataType::kInt8, Shape::Of({2, 1})).Output("y");
  auto r = m.Run({Tensor::FromVector<int8_t>(DataType::kInt8, {1, 2}, {100, 100}),
                  Tensor::FromVector<int8_t>(DataType::kInt8, {2, 1}, {1, 1})});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Values<int8_t>((*r)[0])[0], static_cast<int8_t>(-56));  // 200 wraps like numpy

  OneNode h("MatMul", 13);
  h.Input("a", DataType::kFloat16, Shape::Of({1, 3}))
      .Input("b", DataType::kFloat16, Shape::Of({3, 1}))
      .Output("y");
  auto rh =
      h.Run({Tensor::FromVector<Half>(DataType::kFloat16, {1, 3}, {Half(1.0f), Half(1e-3f), Half(1e-3f)}),
             Tensor::FromVector<Half>(DataType::kFloat16, {3, 1}, {Half(1.0f), Half(1.0f), Half(1.0f)})});
  ASSERT_TRUE(rh.ok());
  // Accumulated in float (1.002) and rounded once: 1.001953125 in float16.
  EXPECT_FLOAT_EQ(static_cast<float>(Values<Half>((*rh)[0])[0]), 1.001953125f);
}

TEST(LinalgRun, MatMulBadShapesAreErrors) {
  OneNode m("MatMul", 13);
  m.Input("a", DataType::kFloat, Shape({Dim(), Dim()}))
      .Input("b", DataType::kFloat, Shape({Dim(), Dim()}))
      .Output("y");
  auto r = m.Run({Tensor(DataType::kFloat, {2, 3}), Tensor(DataType::kFloat, {4, 2})});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("inner dimensions"), std::string::npos) << r.status().message();
}

TEST(LinalgRun, GemmScalarBiasNoTranspose) {
  OneNode m("Gemm", 13);
  m.Input("a", DataType::kFloat, Shape::Of({2, 2}))
      .Input("b", DataType::kFloat, Shape::Of({2, 2}))
      .Input("c", DataType::kFloat, Shape::Scalar())
      .Output("y")
      .AttrInt("transB", 1);
  auto r = m.Run({Tensor::FromVector<float>(DataType::kFloat, {2, 2}, {1, 2, 3, 4}),
                  Tensor::FromVector<float>(DataType::kFloat, {2, 2}, {1, 0, 1, 1}), Tensor::Scalar(10.0f)});
  ASSERT_TRUE(r.ok()) << r.status().message();
  // A * B^T with B^T = [[1,1],[0,1]].
  EXPECT_EQ(Values<float>((*r)[0]), (std::vector<float>{11, 13, 13, 17}));
}

TEST(LinalgRun, EinsumForms) {
  auto run = [](const std::string& eq, std::vector<Tensor> in) {
    OneNode m("Einsum", 12);
    for (size_t i = 0; i < in.size(); ++i) m.Input("x" + std::to_string(i), in[i].dtype(), in[i].shape());
    m.Output("y").AttrString("equation", eq);
    return m.Run(in);
  };
  Tensor sq = Tensor::FromVector<float>(DataType::kFloat, {2, 2}, {1, 2, 3, 4});
  auto trace = run("ii", {sq});
  ASSERT_TRUE(trace.ok()) << trace.status().message();
  EXPECT_EQ(Values<float>((*trace)[0]), (std::vector<float>{5}));
  auto diag = run("ii->i", {sq});
  ASSERT_TRUE(diag.ok());
  EXPECT_EQ(Values<float>((*diag)[0]), (std::vector<float>{1, 4}));
  auto implicit = run("ba", {sq});  // implicit output sorts labels: transposes
  ASSERT_TRUE(implicit.ok());
  EXPECT_EQ(Values<float>((*implicit)[0]), (std::vector<float>{1, 3, 2, 4}));
  auto outer = run("i,j->ij", {Tensor::FromVector<float>(DataType::kFloat, {2}, {1, 2}),
                               Tensor::FromVector<float>(DataType::kFloat, {3}, {1, 10, 100})});
  ASSERT_TRUE(outer.ok());
  EXPECT_EQ(Values<float>((*outer)[0]), (std::vector<float>{1, 10, 100, 2, 20, 200}));
  auto ell = run("...j,j->...", {Tensor::FromVector<int32_t>(DataType::kInt32, {2, 1, 2}, {1, 2, 3, 4}),
                                 Tensor::FromVector<int32_t>(DataType::kInt32, {2}, {1, -1})});
  ASSERT_TRUE(ell.ok());
  EXPECT_EQ((*ell)[0].dims(), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(Values<int32_t>((*ell)[0]), (std::vector<int32_t>{-1, -1}));
  EXPECT_FALSE(run("ij,jk->ik", {sq}).ok());  // operand count mismatch
  EXPECT_FALSE(run("i1->i", {sq}).ok());      // bad label
  EXPECT_FALSE(run("ij->ii", {sq}).ok());     // repeated output label
}

TEST(LinalgRun, EinsumContractionMatchesNaive) {
  // "bqd,bkd->bkq" goes through the GEMM path (batch b, m q, n k, k d) and
  // writes the output in a permuted label order.
  const int64_t B = 2, Q = 5, K = 3, D = 7;
  std::vector<float> x = Random(B * Q * D, 5), y = Random(B * K * D, 6);
  OneNode m("Einsum", 12);
  m.Input("x", DataType::kFloat, Shape::Of({B, Q, D}))
      .Input("y", DataType::kFloat, Shape::Of({B, K, D}))
      .Output("z")
      .AttrString("equation", "bqd,bkd->bkq");
  auto r = m.Run({Tensor::FromVector<float>(DataType::kFloat, {B, Q, D}, x),
                  Tensor::FromVector<float>(DataType::kFloat, {B, K, D}, y)});
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ((*r)[0].dims(), (std::vector<int64_t>{B, K, Q}));
  std::vector<float> got = Values<float>((*r)[0]);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t q = 0; q < Q; ++q) {
        double ref = 0.0;
        for (int64_t d = 0; d < D; ++d) ref += x[(b * Q + q) * D + d] * y[(b * K + k) * D + d];
        EXPECT_NEAR(got[(b * K + k) * Q + q], ref, 1e-5);
      }
}

TEST(LinalgRun, DetSingularAndPivoted) {
  OneNode m("Det", 22);
  m.Input("x", DataType::kFloat, Shape::Of({2, 2, 2})).Output("y");
  auto r = m.Run({Tensor::FromVector<float>(DataType::kFloat, {2, 2, 2}, {1, 2, 2, 4, 0, 1, 1, 0})});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Values<float>((*r)[0]), (std::vector<float>{0, -1}));
}

TEST(LinalgRun, AttentionCausalRowsAndGqa) {
  // One query head group of two over one KV head; causal: query 0 sees key 0 only.
  OneNode m("Attention", 23);
  m.Input("q", DataType::kFloat, Shape::Of({1, 2, 2, 1}))
      .Input("k", DataType::kFloat, Shape::Of({1, 1, 2, 1}))
      .Input("v", DataType::kFloat, Shape::Of({1, 1, 2, 1}))
      .Output("y")
      .AttrInt("is_causal", 1);
  auto r = m.Run({Tensor::FromVector<float>(DataType::kFloat, {1, 2, 2, 1}, {1, 1, 1, 1}),
                  Tensor::FromVector<float>(DataType::kFloat, {1, 1, 2, 1}, {0, 0}),
                  Tensor::FromVector<float>(DataType::kFloat, {1, 1, 2, 1}, {2, 4})});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(Values<float>((*r)[0]), (std::vector<float>{2, 3, 2, 3}));
}

TEST(LinalgRun, RecurrentBadDirectionIsAnError) {
  OneNode m("RNN", 22);
  m.Input("x", DataType::kFloat, Shape::Of({1, 1, 1}))
      .Input("w", DataType::kFloat, Shape::Of({1, 1, 1}))
      .Input("r", DataType::kFloat, Shape::Of({1, 1, 1}))
      .Output("y")
      .AttrInt("hidden_size", 1)
      .AttrString("direction", "sideways");
  Status s = m.Infer();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("(RNN)"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("sideways"), std::string::npos) << s.message();
}

TEST(LinalgRun, TensorScatterCircularWraps) {
  OneNode m("TensorScatter", 24);
  m.Input("past", DataType::kFloat, Shape::Of({1, 3, 1}))
      .Input("upd", DataType::kFloat, Shape::Of({1, 2, 1}))
      .Input("idx", DataType::kInt64, Shape::Of({1}))
      .Output("y")
      .AttrString("mode", "circular");
  auto r = m.Run({Tensor::FromVector<float>(DataType::kFloat, {1, 3, 1}, {0, 0, 0}),
                  Tensor::FromVector<float>(DataType::kFloat, {1, 2, 1}, {7, 8}), Tensor::Int64s({2})});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(Values<float>((*r)[0]), (std::vector<float>{8, 0, 7}));
}

}  // namespace
}  // namespace kiln
