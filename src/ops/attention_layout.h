// Geometry of kiln.Attention (src/ops/kiln_attention.cc), shared by its CPU
// reference and the CUDA kernels (src/backend/cuda/attention*.{cc,cu}).
//
// Q, K and V are 3-D or 4-D, all of one rank, in one of three layouts:
//   "bhsd": [B, H, S, D]  (3-D: [H, S, D])   — the logical layout
//   "bshd": [B, S, H, D]  (3-D: [S, H, D])   — sequence before heads, as a
//           linear layer's output reshaped to heads is before its Transpose
//   "sbhd": [S, B, H, D]  (4-D only)         — sequence first, as
//           nn.MultiheadAttention keeps it
// Y has Q's layout with D replaced by V's head size. 3-D tensors have B = 1.
// B is equal across Q, K, V (no broadcasting). K and V have the same head
// count, Q's or a divisor of it (grouped-query and multi-query attention): Q
// head h reads K/V head h / (H / H_kv). Q and K share D; K and V share S. The bias, when given, broadcasts (numpy rules, right-aligned)
// to the logical scores [B, H, Sq, Skv] (3-D: [H, Sq, Skv]) without growing it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

enum class AttentionLayout { kBhsd, kBshd, kSbhd };

struct AttentionShape {
  AttentionLayout layout = AttentionLayout::kBhsd;
  int rank = 4;  // of Q, K, V and Y
  int64_t batch = 1, heads = 0, q_seq = 0, kv_seq = 0, head_dim = 0, v_head_dim = 0;
  int64_t kv_heads = 0;  // K's and V's head count: heads, or a divisor of it
  // The K/V head that query head h reads.
  int64_t KvHead(int64_t h) const { return h / (heads / kv_heads); }
};

// Element (b, h, s, d) of a tensor lives at b*b + h*h + s*s + d.
struct AttentionStrides {
  int64_t b = 0, h = 0, s = 0;
};

// Bias element (b, h, i, j) lives at b*b + h*h + i*q + j*k (0 for broadcast axes).
struct BiasStrides {
  int64_t b = 0, h = 0, q = 0, k = 0;
};

// Parses the layout attribute; false when it is none of the three.
inline bool ParseAttentionLayout(const std::string& name, AttentionLayout* layout) {
  if (name == "bhsd") *layout = AttentionLayout::kBhsd;
  else if (name == "bshd") *layout = AttentionLayout::kBshd;
  else if (name == "sbhd") *layout = AttentionLayout::kSbhd;
  else return false;
  return true;
}

inline const char* AttentionLayoutName(AttentionLayout l) {
  return l == AttentionLayout::kBhsd ? "bhsd" : l == AttentionLayout::kBshd ? "bshd" : "sbhd";
}

// Where B, H and S sit in a tensor of `rank` (B: -1 when 3-D); D is last.
struct AttentionAxes {
  int b = -1, h = 0, s = 1;
};
inline bool AttentionAxesOf(AttentionLayout l, int rank, AttentionAxes* axes) {
  if (rank != 3 && rank != 4) return false;
  const int o = rank - 3;
  switch (l) {
    case AttentionLayout::kBhsd: *axes = {o ? 0 : -1, o, o + 1}; return true;
    case AttentionLayout::kBshd: *axes = {o ? 0 : -1, o + 1, o}; return true;
    case AttentionLayout::kSbhd:
      if (rank != 4) return false;
      *axes = {1, 2, 0};
      return true;
  }
  return false;
}

// Fills `out` from Q/K/V dims; returns an error message ("" on success).
inline std::string AttentionGeometry(const std::vector<int64_t>& q, const std::vector<int64_t>& k,
                                     const std::vector<int64_t>& v, AttentionLayout layout, AttentionShape* out) {
  const size_t r = q.size();
  AttentionAxes ax;
  if (k.size() != r || v.size() != r || !AttentionAxesOf(layout, static_cast<int>(r), &ax))
    return std::string("Q, K and V must all be ") + (layout == AttentionLayout::kSbhd ? "4-D" : "3-D or all 4-D");
  AttentionShape g;
  g.layout = layout;
  g.rank = static_cast<int>(r);
  g.batch = ax.b >= 0 ? q[static_cast<size_t>(ax.b)] : 1;
  g.heads = q[static_cast<size_t>(ax.h)];
  g.q_seq = q[static_cast<size_t>(ax.s)];
  g.kv_seq = k[static_cast<size_t>(ax.s)];
  g.head_dim = q[r - 1];
  g.v_head_dim = v[r - 1];
  const size_t bi = static_cast<size_t>(ax.b), hi = static_cast<size_t>(ax.h), si = static_cast<size_t>(ax.s);
  g.kv_heads = k[hi];
  if ((ax.b >= 0 && (k[bi] != g.batch || v[bi] != g.batch)) || v[hi] != g.kv_heads || g.kv_heads <= 0 ||
      g.heads % g.kv_heads != 0)
    return "Q, K and V must have the same batch count, and K and V one head count that divides Q's";
  if (k[r - 1] != g.head_dim) return "Q and K must have the same head size";
  if (v[si] != g.kv_seq) return "K and V must have the same sequence length";
  *out = g;
  return "";
}

// Y's dims: Q's with V's head size.
inline std::vector<int64_t> AttentionOutputDims(const std::vector<int64_t>& q, const AttentionShape& g) {
  std::vector<int64_t> y = q;
  y.back() = g.v_head_dim;
  return y;
}

// Strides of a contiguous Q/K/V/Y tensor of `dims` (layout g.layout).
inline AttentionStrides AttentionTensorStrides(const AttentionShape& g, const std::vector<int64_t>& dims) {
  std::vector<int64_t> st(dims.size(), 1);
  for (size_t i = dims.size() - 1; i > 0; --i) st[i - 1] = st[i] * dims[i];
  AttentionAxes ax;
  AttentionAxesOf(g.layout, g.rank, &ax);
  AttentionStrides s;
  s.b = ax.b >= 0 ? st[static_cast<size_t>(ax.b)] : 0;
  s.h = st[static_cast<size_t>(ax.h)];
  s.s = st[static_cast<size_t>(ax.s)];
  return s;
}

// The bias's broadcast strides; returns an error message ("" on success).
inline std::string AttentionBiasStrides(const AttentionShape& g, const std::vector<int64_t>& bias,
                                        BiasStrides* out) {
  const std::vector<int64_t> scores = g.rank == 4
                                          ? std::vector<int64_t>{g.batch, g.heads, g.q_seq, g.kv_seq}
                                          : std::vector<int64_t>{g.heads, g.q_seq, g.kv_seq};
  if (bias.size() > scores.size()) return "the bias has a higher rank than the scores";
  int64_t strides[4] = {0, 0, 0, 0};  // per scores axis, right-aligned
  int64_t stride = 1;
  for (size_t i = 0; i < bias.size(); ++i) {
    const size_t bi = bias.size() - 1 - i, si = scores.size() - 1 - i;
    if (bias[bi] != 1 && bias[bi] != scores[si]) return "the bias does not broadcast to the scores";
    strides[si] = bias[bi] == 1 ? 0 : stride;
    stride *= bias[bi];
  }
  const size_t o = scores.size() - 3;  // scores axis of H
  *out = BiasStrides{g.rank == 4 ? strides[0] : 0, strides[o], strides[o + 1], strides[o + 2]};
  return "";
}

}  // namespace kiln
