// Geometry of kiln.Attention (src/ops/kiln_attention.cc), shared by its CPU
// reference and the CUDA kernels (src/backend/cuda/attention*.{cc,cu}).
//
// Q, K and V are 3-D or 4-D, all of one rank, in one of two layouts:
//   "bhsd": [B, H, S, D]  (3-D: [H, S, D])   — the logical layout
//   "bshd": [B, S, H, D]  (3-D: [S, H, D])   — sequence before heads, as a
//           linear layer's output reshaped to heads is before its Transpose
// Y has Q's layout with D replaced by V's head size. 3-D tensors have B = 1.
// B and H are equal across Q, K, V (no broadcasting); Q and K share D; K
// and V share S. The bias, when given, broadcasts (numpy rules, right-aligned)
// to the logical scores [B, H, Sq, Skv] (3-D: [H, Sq, Skv]) without growing it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

struct AttentionShape {
  bool seq_first = false;  // layout "bshd"
  int rank = 4;            // of Q, K, V and Y
  int64_t batch = 1, heads = 0, q_seq = 0, kv_seq = 0, head_dim = 0, v_head_dim = 0;
};

// Element (b, h, s, d) of a tensor lives at b*b + h*h + s*s + d.
struct AttentionStrides {
  int64_t b = 0, h = 0, s = 0;
};

// Bias element (b, h, i, j) lives at b*b + h*h + i*q + j*k (0 for broadcast axes).
struct BiasStrides {
  int64_t b = 0, h = 0, q = 0, k = 0;
};

// Parses the layout attribute ("bhsd" or "bshd"); false when it is neither.
inline bool ParseAttentionLayout(const std::string& layout, bool* seq_first) {
  if (layout != "bhsd" && layout != "bshd") return false;
  *seq_first = layout == "bshd";
  return true;
}

// Fills `out` from Q/K/V dims; returns an error message ("" on success).
inline std::string AttentionGeometry(const std::vector<int64_t>& q, const std::vector<int64_t>& k,
                                     const std::vector<int64_t>& v, bool seq_first, AttentionShape* out) {
  const size_t r = q.size();
  if ((r != 3 && r != 4) || k.size() != r || v.size() != r) return "Q, K and V must all be 3-D or all 4-D";
  const size_t o = r - 3;  // index of the first of (H, S) / (S, H)
  const size_t hi = seq_first ? o + 1 : o, si = seq_first ? o : o + 1;
  AttentionShape g;
  g.seq_first = seq_first;
  g.rank = static_cast<int>(r);
  g.batch = r == 4 ? q[0] : 1;
  g.heads = q[hi];
  g.q_seq = q[si];
  g.kv_seq = k[si];
  g.head_dim = q[r - 1];
  g.v_head_dim = v[r - 1];
  if ((r == 4 && (k[0] != g.batch || v[0] != g.batch)) || k[hi] != g.heads || v[hi] != g.heads)
    return "Q, K and V must have the same batch and head counts";
  if (k[r - 1] != g.head_dim) return "Q and K must have the same head size";
  if (v[si] != g.kv_seq) return "K and V must have the same sequence length";
  *out = g;
  return "";
}

// Y's dims (Q's layout, V's head size).
inline std::vector<int64_t> AttentionOutputDims(const AttentionShape& g) {
  std::vector<int64_t> y;
  if (g.rank == 4) y.push_back(g.batch);
  if (g.seq_first) {
    y.push_back(g.q_seq);
    y.push_back(g.heads);
  } else {
    y.push_back(g.heads);
    y.push_back(g.q_seq);
  }
  y.push_back(g.v_head_dim);
  return y;
}

// Strides of a contiguous Q/K/V/Y tensor with sequence length `seq` and head size `dim`.
inline AttentionStrides AttentionTensorStrides(const AttentionShape& g, int64_t seq, int64_t dim) {
  AttentionStrides s;
  if (g.seq_first) {
    s.h = dim;
    s.s = g.heads * dim;
  } else {
    s.s = dim;
    s.h = seq * dim;
  }
  s.b = g.rank == 4 ? seq * g.heads * dim : 0;
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
