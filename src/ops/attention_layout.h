// Geometry of kiln.Attention (src/ops/kiln_attention.cc), shared by its CPU
// reference and the CUDA kernels (src/backend/cuda/attention*.{cc,cu}).
//
// Q, K and V are 3-D or 4-D, all of one rank, in one of three layouts:
//   "bhsd": [B, H, S, D]  (3-D: [H, S, D])   — the logical layout
//   "bshd": [B, S, H, D]  (3-D: [S, H, D])   — sequence before heads, as a
//           linear layer's output reshaped to heads is before its Transpose
//   "sbhd": [S, B, H, D]  (4-D only)         — sequence first, as
//           nn.MultiheadAttention keeps it
// Each of Q, K, V and Y may have its own layout (the optional attribute
// "layouts": four names; else "layout" for all): the kernels read every
// tensor through its own strides, so a Transpose between layouts around the
// op is absorbed (passes/attention_views.h). Y's dims are Q's B, H, S with
// V's head size, in Y's layout. 3-D tensors have B = 1.
// B is equal across Q, K, V (no broadcasting). K and V have the same head
// count, Q's or a divisor of it (grouped-query and multi-query attention): Q
// head h reads K/V head h / (H / H_kv). Q and K share D; K and V share S. The bias, when given, broadcasts
// (numpy rules, right-aligned) to the logical scores [B, H, Sq, Skv] (3-D: [H, Sq, Skv]) without growing it.
// Head ranges (optional attribute "head_ranges": six ints, Q's first head and
// head count, then K's, then V's): each of Q, K and V is that range of heads of
// its tensor, not the whole tensor. One packed projection [B, S, Hq+Hk+Hv, D]
// given as all three inputs is read in place (passes/pack_qkv.h); the dims
// above are then the ranges' (the logical Q, K and V).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

enum class AttentionLayout { kBhsd, kBshd, kSbhd };

// The layouts of Q, K, V and Y.
struct AttentionLayouts {
  AttentionLayout q = AttentionLayout::kBhsd, k = AttentionLayout::kBhsd, v = AttentionLayout::kBhsd,
                  y = AttentionLayout::kBhsd;
  static AttentionLayouts All(AttentionLayout l) { return {l, l, l, l}; }
  bool Uniform() const { return k == q && v == q && y == q; }
};

struct AttentionShape {
  AttentionLayouts layouts;
  int rank = 4;  // of Q, K, V and Y
  int64_t batch = 1, heads = 0, q_seq = 0, kv_seq = 0, head_dim = 0, v_head_dim = 0;
  int64_t kv_heads = 0;  // K's and V's head count: heads, or a divisor of it
  // The K/V head that query head h reads.
  int64_t KvHead(int64_t h) const { return h / (heads / kv_heads); }
};

// A range of heads along a tensor's head axis; count -1: the whole axis.
struct AttentionHeadRange {
  int64_t first = 0, count = -1;
  bool whole() const { return first == 0 && count < 0; }
};

// Q's, K's and V's head ranges (all whole when the attribute is absent).
using AttentionHeadRanges = std::array<AttentionHeadRange, 3>;

// Element (b, h, s, d) of a tensor lives at b*b + h*h + s*s + d.
struct AttentionStrides {
  int64_t b = 0, h = 0, s = 0;
};

// Bias element (b, h, i, j) lives at b*b + h*h + i*q + j*k (0 for broadcast axes).
struct BiasStrides {
  int64_t b = 0, h = 0, q = 0, k = 0;
};

inline std::string AttentionDimsText(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

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

// The node's layouts from its "layout" (default "bhsd") and optional
// "layouts" (Q, K, V, Y) attribute values; an error message, "" on success.
inline std::string ParseAttentionLayouts(const std::string& layout, const std::vector<std::string>* layouts,
                                         AttentionLayouts* out) {
  AttentionLayout all = AttentionLayout::kBhsd;
  if (!ParseAttentionLayout(layout, &all)) return "layout must be \"bhsd\", \"bshd\" or \"sbhd\", got \"" + layout + "\"";
  *out = AttentionLayouts::All(all);
  if (!layouts) return "";
  if (layouts->size() != 4) return "layouts must name four layouts (Q, K, V, Y)";
  AttentionLayout* each[4] = {&out->q, &out->k, &out->v, &out->y};
  for (size_t i = 0; i < 4; ++i)
    if (!ParseAttentionLayout((*layouts)[i], each[i]))
      return "layouts: \"" + (*layouts)[i] + "\" is not \"bhsd\", \"bshd\" or \"sbhd\"";
  return "";
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
                                     const std::vector<int64_t>& v, const AttentionLayouts& layouts,
                                     AttentionShape* out) {
  const size_t r = q.size();
  AttentionAxes aq, ak, av, ay;
  const int rank = static_cast<int>(r);
  if (k.size() != r || v.size() != r || !AttentionAxesOf(layouts.q, rank, &aq) ||
      !AttentionAxesOf(layouts.k, rank, &ak) || !AttentionAxesOf(layouts.v, rank, &av) ||
      !AttentionAxesOf(layouts.y, rank, &ay))
    return "Q, K and V must all be 3-D or all 4-D (\"sbhd\": 4-D)";
  auto at = [](const std::vector<int64_t>& d, int axis) { return d[static_cast<size_t>(axis)]; };
  AttentionShape g;
  g.layouts = layouts;
  g.rank = rank;
  g.batch = aq.b >= 0 ? at(q, aq.b) : 1;
  g.heads = at(q, aq.h);
  g.q_seq = at(q, aq.s);
  g.kv_seq = at(k, ak.s);
  g.head_dim = q[r - 1];
  g.v_head_dim = v[r - 1];
  g.kv_heads = at(k, ak.h);
  if ((aq.b >= 0 && (at(k, ak.b) != g.batch || at(v, av.b) != g.batch)) || at(v, av.h) != g.kv_heads ||
      g.kv_heads <= 0 || g.heads % g.kv_heads != 0)
    return "Q, K and V must have the same batch count, and K and V one head count that divides Q's";
  if (k[r - 1] != g.head_dim) return "Q and K must have the same head size";
  if (at(v, av.s) != g.kv_seq) return "K and V must have the same sequence length";
  *out = g;
  return "";
}

// Y's dims: Q's batch, heads and sequence with V's head size, in Y's layout.
inline std::vector<int64_t> AttentionOutputDims(const AttentionShape& g) {
  std::vector<int64_t> y(static_cast<size_t>(g.rank));
  AttentionAxes ay;
  AttentionAxesOf(g.layouts.y, g.rank, &ay);
  if (ay.b >= 0) y[static_cast<size_t>(ay.b)] = g.batch;
  y[static_cast<size_t>(ay.h)] = g.heads;
  y[static_cast<size_t>(ay.s)] = g.q_seq;
  y.back() = g.v_head_dim;
  return y;
}

// Strides of a contiguous tensor of `dims` in `layout`.
inline AttentionStrides AttentionTensorStrides(AttentionLayout layout, const std::vector<int64_t>& dims) {
  std::vector<int64_t> st(dims.size(), 1);
  for (size_t i = dims.size() - 1; i > 0; --i) st[i - 1] = st[i] * dims[i];
  AttentionAxes ax;
  AttentionAxesOf(layout, static_cast<int>(dims.size()), &ax);
  AttentionStrides s;
  s.b = ax.b >= 0 ? st[static_cast<size_t>(ax.b)] : 0;
  s.h = st[static_cast<size_t>(ax.h)];
  s.s = st[static_cast<size_t>(ax.s)];
  return s;
}

// The "head_ranges" attribute's values (six: first head and count for Q, K,
// V); an error message, "" on success.
inline std::string ParseAttentionHeadRanges(const std::vector<int64_t>& v, AttentionHeadRanges* out) {
  constexpr int64_t kMaxHeads = (int64_t{1} << 31) - 1;
  if (v.size() != 6) return "head_ranges must hold six ints (first head and head count for Q, K and V)";
  for (size_t i = 0; i < 3; ++i) {
    // Bounded so that first + count cannot overflow (a hostile model's values).
    if (v[2 * i] < 0 || v[2 * i + 1] <= 0 || v[2 * i] > kMaxHeads || v[2 * i + 1] > kMaxHeads)
      return "head_ranges must have first heads in [0, 2^31) and counts in (0, 2^31)";
    (*out)[i] = AttentionHeadRange{v[2 * i], v[2 * i + 1]};
  }
  return "";
}

// How the op reads one of Q, K, V: the logical tensor's dims (a head range's
// count on the head axis), the stored tensor's strides, and the element
// offset of the range's first head.
struct AttentionView {
  std::vector<int64_t> dims;
  AttentionStrides strides;
  int64_t offset = 0;
};

// The view of a stored tensor of `dims` in `layout` through head range `r`;
// an error message when the range does not lie inside the head axis.
inline std::string AttentionViewOf(AttentionLayout layout, const std::vector<int64_t>& dims,
                                   const AttentionHeadRange& r, AttentionView* out) {
  AttentionAxes ax;
  if (!AttentionAxesOf(layout, static_cast<int>(dims.size()), &ax)) return "";  // AttentionGeometry says why
  AttentionView v;
  v.dims = dims;
  v.strides = AttentionTensorStrides(layout, dims);
  if (!r.whole()) {
    const int64_t heads = dims[static_cast<size_t>(ax.h)];
    if (r.first + r.count > heads)
      return "head range [" + std::to_string(r.first) + ", " + std::to_string(r.first + r.count) +
             ") lies outside the " + std::to_string(heads) + " heads of a tensor of dims " +
             AttentionDimsText(dims);
    v.dims[static_cast<size_t>(ax.h)] = r.count;
    v.offset = r.first * v.strides.h;
  }
  *out = std::move(v);
  return "";
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
