// The short-sequence attention kernel (src/backend/cuda/attention.cu, SmallAttentionFits) against a host
// computation in double: MaxViT's windows read from a packed Q/K/V projection with a per-head bias, head size
// 64 with grouped-query heads and 64 keys, one key, a masked bias with a fully masked row (NaN, as Softmax
// gives), FP32 and FP16. attention.cc only runs the kernel where it times faster than cuDNN's graph, so the
// op harness may never run it: this test does. Skipped without a GPU.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/attention.h"
#include "kernel_test_util.h"

namespace kiln::cuda {
namespace {

using namespace test;  // NOLINT: kernel_test_util.h's helpers

struct Case {
  int64_t batch, heads, kv_heads, q_seq, kv_seq, dim;
  bool
      packed;  // Q, K, V as head ranges of one [B, S, 3H, D] tensor (then q_seq == kv_seq, kv_heads == heads)
  int bias;    // 0 none, 1 [H, Sq, Skv] shared by the batch, 2 [B, 1, Sq, Skv] with -inf entries
  bool half;
  bool shifted = false;  // Q, K, V one element past an aligned address: element loads, not 16-byte chunks
};

void RunCase(const Case& c) {
  SCOPED_TRACE(std::string(c.half ? "float16" : "float32") + " B " + std::to_string(c.batch) + " H " +
               std::to_string(c.heads) + "/" + std::to_string(c.kv_heads) + " Sq " + std::to_string(c.q_seq) +
               " Skv " + std::to_string(c.kv_seq) + " D " + std::to_string(c.dim) + " bias " +
               std::to_string(c.bias));
  const DataType dt = c.half ? DataType::kFloat16 : DataType::kFloat;
  AttentionArgs a;
  a.g.batch = c.batch, a.g.heads = c.heads, a.g.kv_heads = c.kv_heads, a.g.q_seq = c.q_seq;
  a.g.kv_seq = c.kv_seq, a.g.head_dim = c.dim, a.g.v_head_dim = c.dim;
  a.scale = 1.f / std::sqrt(static_cast<float>(c.dim));
  ASSERT_TRUE(SmallAttentionFits(dt, a));
  std::mt19937 rng(5);
  const int64_t d = c.dim;
  std::vector<float> q, k, v;
  int64_t q_off = 0, k_off = 0, v_off = 0;
  if (c.packed) {
    const int64_t s = c.q_seq, row = 3 * c.heads * d;
    q = RandomValues(static_cast<size_t>(c.batch * s * row), c.half, rng);
    a.q = a.k = a.v = {s * row, d, row};
    k_off = c.heads * d, v_off = 2 * c.heads * d;
  } else {
    const size_t shift = c.shifted ? 1 : 0;
    q = RandomValues(static_cast<size_t>(c.batch * c.heads * c.q_seq * d) + shift, c.half, rng);
    k = RandomValues(static_cast<size_t>(c.batch * c.kv_heads * c.kv_seq * d) + shift, c.half, rng);
    v = RandomValues(k.size(), c.half, rng);
    q_off = k_off = v_off = static_cast<int64_t>(shift);
    a.q = {c.heads * c.q_seq * d, c.q_seq * d, d};
    a.k = a.v = {c.kv_heads * c.kv_seq * d, c.kv_seq * d, d};
  }
  a.y = {c.q_seq * c.heads * d, d, c.heads * d};  // [B, Sq, H, D]
  std::vector<float> bias;
  if (c.bias == 1) {
    bias = RandomValues(static_cast<size_t>(c.heads * c.q_seq * c.kv_seq), c.half, rng);
    a.bias = {0, c.q_seq * c.kv_seq, c.kv_seq, 1};
  } else if (c.bias == 2) {
    bias = RandomValues(static_cast<size_t>(c.batch * c.q_seq * c.kv_seq), c.half, rng);
    for (size_t i = 0; i < bias.size(); i += 3) bias[i] = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < c.kv_seq; ++j)
      bias[static_cast<size_t>(j)] = -std::numeric_limits<float>::infinity();
    a.bias = {c.q_seq * c.kv_seq, 0, c.kv_seq, 1};
  }
  const std::vector<float>& kh = c.packed ? q : k;
  const std::vector<float>& vh = c.packed ? q : v;
  Buf dq, dk, dv, db, dy;
  Upload(dq, q, c.half);
  if (!c.packed) Upload(dk, k, c.half), Upload(dv, v, c.half);
  if (c.bias) Upload(db, bias, c.half);
  const size_t out = static_cast<size_t>(c.batch * c.q_seq * c.heads * d);
  ASSERT_EQ(cudaMalloc(&dy.p, out * (c.half ? 2 : 4)), cudaSuccess);
  const size_t es = c.half ? 2 : 4;
  const char* base_q = static_cast<const char*>(dq.p);
  const void* pk = static_cast<const char*>(c.packed ? dq.p : dk.p) + k_off * es;
  const void* pv = static_cast<const char*>(c.packed ? dq.p : dv.p) + v_off * es;
  Status st =
      LaunchSmallAttention(dt, a, base_q + q_off * es, pk, pv, c.bias ? db.p : nullptr, dy.p, nullptr);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> got(out);
  Download(dy, &got, c.half);
  int64_t bad = 0;
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t h = 0; h < c.heads; ++h)
      for (int64_t i = 0; i < c.q_seq; ++i) {
        const int64_t kvh = h / (c.heads / c.kv_heads);
        std::vector<double> s(static_cast<size_t>(c.kv_seq));
        double m = -INFINITY;
        for (int64_t j = 0; j < c.kv_seq; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < d; ++e)
            dot += static_cast<double>(q[q_off + b * a.q.b + h * a.q.h + i * a.q.s + e]) *
                   kh[k_off + b * a.k.b + kvh * a.k.h + j * a.k.s + e];
          dot *= a.scale;
          if (c.bias) dot += bias[b * a.bias.b + h * a.bias.h + i * a.bias.q + j * a.bias.k];
          s[static_cast<size_t>(j)] = dot;
          m = std::max(m, dot);
        }
        double l = 0;
        for (double& x : s) l += (x = x == -INFINITY ? 0.0 : std::exp(x - m));
        for (int64_t e = 0; e < d; ++e) {
          double acc = 0;
          for (int64_t j = 0; j < c.kv_seq; ++j)
            acc += s[static_cast<size_t>(j)] * vh[v_off + b * a.v.b + kvh * a.v.h + j * a.v.s + e];
          const double want = acc / l;  // NaN for a fully masked row (l == 0)
          const float g = got[static_cast<size_t>(b * a.y.b + h * a.y.h + i * a.y.s + e)];
          const double tol = c.half ? 1e-2 + 4e-3 * std::fabs(want) : 1e-5 + 1e-5 * std::fabs(want);
          const bool ok = std::isnan(want) ? std::isnan(g) : std::fabs(g - want) <= tol;
          if (!ok && bad++ < 5)
            ADD_FAILURE() << "b " << b << " h " << h << " row " << i << " dim " << e << ": got " << g
                          << ", want " << want;
        }
      }
  EXPECT_EQ(bad, 0);
}

TEST(GpuSmallAttention, MatchesAHostComputation) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  RunCase({16, 2, 2, 49, 49, 32, true, 1, true});  // MaxViT-T's windows: packed Q/K/V, relative-position bias
  RunCase({3, 2, 2, 49, 49, 32, true, 1, false});  // the same in FP32
  RunCase({2, 8, 2, 33, 64, 64, false, 0, true});  // head size 64, grouped-query heads, the most keys
  RunCase({2, 4, 4, 70, 1, 32, false, 0, false});  // one key; more query rows than a warp's passes
  RunCase({3, 2, 1, 17, 23, 64, false, 2, true});  // masked bias, the first row fully masked: NaN
  RunCase({2, 2, 2, 49, 49, 32, false, 1, true, true});   // rows not 16-byte aligned: element loads
  RunCase({2, 4, 2, 20, 37, 64, false, 0, false, true});  // the same in FP32
}

TEST(GpuSmallAttention, WhatItTakes) {
  AttentionArgs a;
  a.g.batch = 1, a.g.heads = 2, a.g.kv_heads = 2, a.g.q_seq = 49, a.g.kv_seq = 49, a.g.head_dim = 32,
  a.g.v_head_dim = 32;
  EXPECT_TRUE(SmallAttentionFits(DataType::kFloat16, a));
  EXPECT_FALSE(SmallAttentionFits(DataType::kDouble, a));
  a.g.kv_seq = 65;
  EXPECT_FALSE(SmallAttentionFits(DataType::kFloat16, a));  // more keys than two per lane
  a.g.kv_seq = 49, a.g.v_head_dim = 64;
  EXPECT_FALSE(SmallAttentionFits(DataType::kFloat16, a));  // head sizes differ
  a.g.head_dim = a.g.v_head_dim = 48;
  EXPECT_FALSE(SmallAttentionFits(DataType::kFloat16, a));
}

}  // namespace
}  // namespace kiln::cuda
