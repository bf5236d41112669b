// Attention (opset 23-25: 3-D/4-D Q/K/V, GQA, bool/float masks, causal and
// sliding-window masks, KV cache via past/present or nonpad_kv_seqlen,
// softcap, qk_matmul_output modes, softmax_precision) and the preview
// FlexAttention (score_mod / prob_mod subgraphs).
//
// Internally everything is double in [batch, heads, seq, head_size] layout;
// values are rounded to the input type (or softmax_precision) exactly where
// the ONNX reference (onnx/reference/ops/op_attention.py) materialises a
// tensor of that type, so float16/bfloat16 results match it and the
// *_expanded function bodies.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ops/linalg_util.h"
#include "ops/op_table.h"
#include "ops/shape_util.h"

namespace kiln {
namespace ops {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// [B, S, H*D] (3-D) or [B, H, S, D] (4-D) as a [B, H, S, D] double array.
std::vector<double> ToBhsd(const Tensor& x, bool packed, int64_t heads) {
  std::vector<double> v = linalg::ReadAs<double>(x);
  if (!packed) return v;
  const int64_t B = x.dim(0), S = x.dim(1), D = x.dim(2) / heads;
  std::vector<double> out(v.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t d = 0; d < D; ++d)
          out[static_cast<size_t>(((b * heads + h) * S + s) * D + d)] =
              v[static_cast<size_t>(((b * S + s) * heads + h) * D + d)];
  return out;
}

// Concatenates [B, H, P, D] and [B, H, S, D] along the sequence axis.
std::vector<double> ConcatSeq(const std::vector<double>& past, int64_t P, const std::vector<double>& cur,
                              int64_t S, int64_t BH, int64_t D) {
  std::vector<double> out(static_cast<size_t>(BH * (P + S) * D));
  for (int64_t bh = 0; bh < BH; ++bh) {
    std::copy(past.begin() + bh * P * D, past.begin() + (bh + 1) * P * D, out.begin() + bh * (P + S) * D);
    std::copy(cur.begin() + bh * S * D, cur.begin() + (bh + 1) * S * D,
              out.begin() + bh * (P + S) * D + P * D);
  }
  return out;
}

// Softmax of one row, rounding every materialised value to `prec` like numpy
// does for that dtype. With `zero_masked`, an all -inf row gives zeros (the
// Attention reference); without, it gives NaN (plain numpy, FlexAttention).
void SoftmaxRow(double* x, int64_t n, DataType prec, bool zero_masked) {
  double mx = kNegInf;
  bool nan = false;
  for (int64_t j = 0; j < n; ++j) {
    nan = nan || std::isnan(x[j]);
    mx = std::max(mx, x[j]);
  }
  if (nan) {
    std::fill(x, x + n, std::numeric_limits<double>::quiet_NaN());
    return;
  }
  const double safe = zero_masked && std::isinf(mx) && mx < 0 ? 0.0 : mx;
  double sum = 0.0;
  for (int64_t j = 0; j < n; ++j) {
    x[j] = linalg::RoundToType(prec, std::exp(linalg::RoundToType(prec, x[j] - safe)));
    // numpy sums bfloat16 (an ml_dtypes type) in bfloat16, one rounding per add.
    sum = prec == DataType::kBFloat16 ? linalg::RoundToType(prec, sum + x[j]) : sum + x[j];
  }
  sum = linalg::RoundToType(prec, sum);
  if (zero_masked && sum == 0.0) sum = 1.0;
  for (int64_t j = 0; j < n; ++j) x[j] = linalg::RoundToType(prec, x[j] / sum);
}

bool IsSoftmaxPrecision(int64_t p) { return p == 1 || p == 10 || p == 11 || p == 16; }

// Shape facts shared by inference and execution.
struct AttnGeometry {
  bool packed = false;  // 3-D inputs
  int64_t q_heads = 0, kv_heads = 0;
};

Status AttnHeads(const NodeContext& ctx, int rank, AttnGeometry* g) {
  if (rank != 3 && rank != 4) return ctx.Error("Q, K and V must be 3-D or 4-D");
  g->packed = rank == 3;
  if (g->packed) {
    g->q_heads = ctx.attr_int("q_num_heads", 0);
    g->kv_heads = ctx.attr_int("kv_num_heads", 0);
    if (g->q_heads <= 0 || g->kv_heads <= 0)
      return ctx.Error("3-D inputs need positive q_num_heads and kv_num_heads attributes");
    if (g->q_heads > linalg::kMaxHeads || g->kv_heads > linalg::kMaxHeads)
      return ctx.Error("q_num_heads/kv_num_heads above " + std::to_string(linalg::kMaxHeads));
  }
  return Status::Ok();
}

}  // namespace

Status InferAttention(InferContext& ctx) {
  const Shape& q = ctx.input_shape(0);
  const Shape& k = ctx.input_shape(1);
  const Shape& v = ctx.input_shape(2);
  const DataType qt = ctx.input_dtype(0);
  if (!q.rank_known() || !k.rank_known() || !v.rank_known()) {
    const Shape unknown4(std::vector<Dim>(4));
    ctx.set_output(0, qt, q.rank_known() ? Shape(std::vector<Dim>(q.rank())) : Shape());
    ctx.set_output(1, ctx.input_dtype(1), unknown4);
    ctx.set_output(2, ctx.input_dtype(2), unknown4);
    ctx.set_output(3, qt, unknown4);
    return Status::Ok();
  }
  if (q.rank() != k.rank() || q.rank() != v.rank()) return ctx.Error("Q, K and V must have the same rank");
  AttnGeometry g;
  KILN_RETURN_IF_ERROR(AttnHeads(ctx, q.rank(), &g));
  Dim batch = q[0], q_seq, kv_seq, head, v_head, q_heads, kv_heads;
  if (g.packed) {
    q_heads = g.q_heads;
    kv_heads = g.kv_heads;
    q_seq = q[1];
    kv_seq = k[1];
    head = k[2].known() ? Dim(k[2].value() / g.kv_heads) : Dim();
    v_head = v[2].known() ? Dim(v[2].value() / g.kv_heads) : Dim();
    if (v[2].known() && v[2].value() % g.kv_heads != 0)
      return ctx.Error("V hidden size is not divisible by kv_num_heads");
  } else {
    q_heads = q[1];
    kv_heads = k[1];
    q_seq = q[2];
    kv_seq = k[2];
    head = k[3];
    v_head = v[3];
  }
  Dim total = kv_seq;
  if (ctx.has_input(4)) {
    const Shape& pk = ctx.input_shape(4);
    total = pk.rank_known() && pk.rank() == 4 ? pk[2] + kv_seq : Dim();
  }
  if (g.packed)
    ctx.set_output(0, qt, Shape({batch, q_seq, v_head * Dim(g.q_heads)}));  // unknown on overflow
  else
    ctx.set_output(0, qt, Shape({batch, q_heads, q_seq, v_head}));
  ctx.set_output(1, ctx.input_dtype(1), Shape({batch, kv_heads, total, head}));
  ctx.set_output(2, ctx.input_dtype(2), Shape({batch, kv_heads, total, v_head}));
  ctx.set_output(3, qt, Shape({batch, q_heads, q_seq, total}));
  return Status::Ok();
}

namespace {

template <class T>
Status RunAttentionTyped(RunContext& ctx) {
  const Tensor& qt = ctx.input(0);
  const Tensor& kt = ctx.input(1);
  const Tensor& vt = ctx.input(2);
  const DataType dt = qt.dtype();
  if (kt.rank() != qt.rank() || vt.rank() != qt.rank())
    return ctx.Error("Q, K and V must have the same rank");
  AttnGeometry g;
  KILN_RETURN_IF_ERROR(AttnHeads(ctx, qt.rank(), &g));
  const int64_t B = qt.dim(0);
  if (kt.dim(0) != B || vt.dim(0) != B) return ctx.Error("Q, K and V batch sizes differ");
  int64_t Hq, Hkv, Sq, S, D, Dv;
  if (g.packed) {
    Hq = g.q_heads;
    Hkv = g.kv_heads;
    if (qt.dim(2) % Hq || kt.dim(2) % Hkv || vt.dim(2) % Hkv)
      return ctx.Error("hidden sizes must be divisible by the head counts");
    Sq = qt.dim(1);
    S = kt.dim(1);
    D = qt.dim(2) / Hq;
    if (kt.dim(2) / Hkv != D) return ctx.Error("Q and K head sizes differ");
    Dv = vt.dim(2) / Hkv;
    if (vt.dim(1) != S) return ctx.Error("K and V sequence lengths differ");
  } else {
    Hq = qt.dim(1);
    Hkv = kt.dim(1);
    Sq = qt.dim(2);
    S = kt.dim(2);
    D = qt.dim(3);
    Dv = vt.dim(3);
    if (kt.dim(3) != D) return ctx.Error("Q and K head sizes differ");
    if (vt.dim(1) != Hkv || vt.dim(2) != S) return ctx.Error("K and V shapes disagree");
  }
  if (Hkv <= 0 || Hq % Hkv != 0) return ctx.Error("q_num_heads must be a multiple of kv_num_heads");
  const int64_t group = Hq / Hkv;
  // The output and the scores (before a KV cache lengthens them) fit: the
  // products below stay in int64 even for empty tensors with huge dims.
  KILN_RETURN_IF_ERROR(shape_ops::CheckDims(ctx, {B, Hq, Sq, Dv}));
  KILN_RETURN_IF_ERROR(shape_ops::CheckDims(ctx, {B, Hq, Sq, S}));

  // Scale: sqrt(scale) applied to Q and K, cast to T as the reference does.
  const double scale =
      ctx.has_attr("scale") ? ctx.attr_float("scale", 1.0f) : 1.0 / std::sqrt(static_cast<double>(D));
  const double sqrt_scale = linalg::RoundTo<T>(std::sqrt(scale));
  std::vector<double> q = ToBhsd(qt, g.packed, Hq), k = ToBhsd(kt, g.packed, Hkv),
                      v = ToBhsd(vt, g.packed, Hkv);

  // KV cache.
  const bool has_past = ctx.has_input(4) && ctx.input(4).defined();
  if (has_past != (ctx.has_input(5) && ctx.input(5).defined()))
    return ctx.Error("past_key and past_value must be given together");
  int64_t P = 0;
  if (has_past) {
    const Tensor& pk = ctx.input(4);
    const Tensor& pv = ctx.input(5);
    if (pk.rank() != 4 || pv.rank() != 4 || pk.dim(0) != B || pk.dim(1) != Hkv || pk.dim(3) != D ||
        pv.dim(0) != B || pv.dim(1) != Hkv || pv.dim(3) != Dv || pv.dim(2) != pk.dim(2))
      return ctx.Error("past_key/past_value shapes do not match K/V");
    P = pk.dim(2);
    k = ConcatSeq(linalg::ReadAs<double>(pk), P, k, S, B * Hkv, D);
    v = ConcatSeq(linalg::ReadAs<double>(pv), P, v, S, B * Hkv, Dv);
  }
  const int64_t L = P + S;  // total kv length
  KILN_RETURN_IF_ERROR(shape_ops::CheckDims(ctx, {B, Hq, Sq, L}));
  std::vector<double> ks(k.size());
  for (size_t i = 0; i < k.size(); ++i) ks[i] = linalg::RoundTo<T>(k[i] * sqrt_scale);
  if (ctx.wants_output(1)) ctx.set_output(1, linalg::WriteAs<double>(kt.dtype(), {B, Hkv, L, D}, k));
  if (ctx.wants_output(2)) ctx.set_output(2, linalg::WriteAs<double>(vt.dtype(), {B, Hkv, L, Dv}, v));

  // External cache lengths.
  std::vector<int64_t> nonpad;
  const bool has_nonpad = ctx.has_input(6) && ctx.input(6).defined();
  if (has_nonpad) {
    if (has_past) return ctx.Error("nonpad_kv_seqlen cannot be combined with past_key/past_value");
    nonpad = ctx.input(6).ToInt64s();
    if (static_cast<int64_t>(nonpad.size()) != B)
      return ctx.Error("nonpad_kv_seqlen must have shape [batch]");
  }

  // Mask: right-aligned broadcast to [B, Hq, Sq, L]; a short last dim is
  // padded with -inf (false).
  const bool has_mask = ctx.has_input(3) && ctx.input(3).defined();
  std::vector<double> mask;
  std::vector<int64_t> mstride(4, 0);
  int64_t mask_len = 0;
  bool mask_bool = false;
  if (has_mask) {
    const Tensor& m = ctx.input(3);
    if (m.rank() < 1 || m.rank() > 4) return ctx.Error("attn_mask must have rank 1 to 4");
    mask_bool = m.dtype() == DataType::kBool;
    mask = linalg::ReadAs<double>(m);
    std::vector<int64_t> md(4 - static_cast<size_t>(m.rank()), 1);
    md.insert(md.end(), m.dims().begin(), m.dims().end());
    const int64_t target[3] = {B, Hq, Sq};
    for (int i = 0; i < 3; ++i)
      if (md[i] != 1 && md[i] != target[i])
        return ctx.Error("attn_mask " + m.Describe() +
                         " does not broadcast to [batch, heads, q_len, kv_len]");
    mask_len = md[3];
    if (mask_len > L) return ctx.Error("attn_mask is longer than the key sequence");
    std::vector<int64_t> st = Strides(md);
    for (int i = 0; i < 4; ++i) mstride[i] = md[i] == 1 ? 0 : st[i];
  }
  const bool causal = ctx.attr_int("is_causal", 0) != 0;
  const int64_t left = ctx.attr_int("left_window_size", -1), right = ctx.attr_int("right_window_size", -1);
  const double softcap = ctx.attr_float("softcap", 0.0f);
  const int64_t mode = ctx.attr_int("qk_matmul_output_mode", 0);
  const int64_t prec_attr = ctx.attr_int("softmax_precision", 0);
  if (ctx.has_attr("softmax_precision") && !IsSoftmaxPrecision(prec_attr))
    return ctx.Error("unsupported softmax_precision " + std::to_string(prec_attr));
  const DataType prec = ctx.has_attr("softmax_precision") ? static_cast<DataType>(prec_attr) : dt;

  // Additive bias of one (b, h, i, j).
  auto bias_at = [&](int64_t b, int64_t h, int64_t i, int64_t j) {
    const int64_t offset = has_past ? P : (has_nonpad ? nonpad[static_cast<size_t>(b)] - Sq : 0);
    double bias = 0.0;
    if (has_mask) {
      double m;
      if (j >= mask_len) {
        m = kNegInf;
      } else {
        m = mask[static_cast<size_t>(b * mstride[0] + h * mstride[1] + i * mstride[2] + j * mstride[3])];
        if (mask_bool) m = m != 0.0 ? 0.0 : kNegInf;
      }
      bias = m;
    }
    if (causal && j > i + offset) bias += kNegInf;
    if (left >= 0 || right >= 0) {
      const int64_t diff = i + offset - j;
      if ((left >= 0 && diff > left) || (right >= 0 && -diff > right)) bias += kNegInf;
    }
    if (has_nonpad && j >= nonpad[static_cast<size_t>(b)]) bias += kNegInf;
    return linalg::RoundTo<T>(bias);
  };

  std::vector<double> y(static_cast<size_t>(B * Hq * Sq * Dv), 0.0);
  std::vector<double> qk_out;
  if (ctx.wants_output(3)) qk_out.resize(static_cast<size_t>(B * Hq * Sq * L));
  std::vector<double> row(static_cast<size_t>(L)), with_bias(static_cast<size_t>(L));
  std::vector<double> qs(static_cast<size_t>(D));
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t hk = h / group;
      const double* kb = ks.data() + (b * Hkv + hk) * L * D;
      const double* vb = v.data() + (b * Hkv + hk) * L * Dv;
      for (int64_t i = 0; i < Sq; ++i) {
        const double* qrow = q.data() + ((b * Hq + h) * Sq + i) * D;
        for (int64_t d = 0; d < D; ++d) qs[d] = linalg::RoundTo<T>(qrow[d] * sqrt_scale);
        bool all_masked = true;
        for (int64_t j = 0; j < L; ++j) {
          double dot = 0.0;
          for (int64_t d = 0; d < D; ++d) dot += qs[d] * kb[j * D + d];
          double s = linalg::RoundTo<T>(dot);
          if (softcap > 0.0) {
            const double c = linalg::RoundTo<T>(static_cast<double>(softcap));
            s = linalg::RoundTo<T>(linalg::RoundTo<T>(std::tanh(linalg::RoundTo<T>(s / c))) * c);
          }
          row[j] = s;
          const double bias = bias_at(b, h, i, j);
          if (!(std::isinf(bias) && bias < 0)) all_masked = false;
          with_bias[j] = linalg::RoundTo<T>(s + bias);
        }
        double* qk_row = qk_out.empty() ? nullptr : qk_out.data() + ((b * Hq + h) * Sq + i) * L;
        if (qk_row && mode <= 1) std::copy(row.begin(), row.end(), qk_row);
        if (qk_row && mode == 2) std::copy(with_bias.begin(), with_bias.end(), qk_row);
        for (int64_t j = 0; j < L; ++j) with_bias[j] = linalg::RoundToType(prec, with_bias[j]);
        SoftmaxRow(with_bias.data(), L, prec, true);
        if (all_masked) std::fill(with_bias.begin(), with_bias.end(), 0.0);
        if (qk_row && mode == 3) std::copy(with_bias.begin(), with_bias.end(), qk_row);
        double* yrow = y.data() + ((b * Hq + h) * Sq + i) * Dv;
        for (int64_t j = 0; j < L; ++j) {
          const double p = linalg::RoundTo<T>(with_bias[j]);
          for (int64_t d = 0; d < Dv; ++d) yrow[d] += p * vb[j * Dv + d];
        }
      }
    }
  }
  if (!qk_out.empty()) ctx.set_output(3, linalg::WriteAs<double>(dt, {B, Hq, Sq, L}, qk_out));
  if (!g.packed) {
    ctx.set_output(0, linalg::WriteAs<double>(dt, {B, Hq, Sq, Dv}, y));
    return Status::Ok();
  }
  std::vector<double> packed(y.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h)
      for (int64_t i = 0; i < Sq; ++i)
        for (int64_t d = 0; d < Dv; ++d)
          packed[static_cast<size_t>(((b * Sq + i) * Hq + h) * Dv + d)] =
              y[static_cast<size_t>(((b * Hq + h) * Sq + i) * Dv + d)];
  ctx.set_output(0, linalg::WriteAs<double>(dt, {B, Sq, Hq * Dv}, packed));
  return Status::Ok();
}

}  // namespace

Status RunAttention(RunContext& ctx) {
  Status st = ctx.UnsupportedError("element type " + std::string(DataTypeName(ctx.input(0).dtype())));
  DispatchFloat(ctx.input(0).dtype(), [&](auto tag) { st = RunAttentionTyped<decltype(tag)>(ctx); });
  return st;
}

Status InferFlexAttention(InferContext& ctx) {
  const Shape& q = ctx.input_shape(0);
  const Shape& k = ctx.input_shape(1);
  const Shape& v = ctx.input_shape(2);
  for (const Shape* s : {&q, &k, &v})
    if (s->rank_known() && s->rank() != 4) return ctx.Error("Q, K and V must be 4-D");
  Dim b = q.rank_known() ? q[0] : Dim(), h = q.rank_known() ? q[1] : Dim(), l = q.rank_known() ? q[2] : Dim();
  Dim e = v.rank_known() ? v[3] : Dim();
  ctx.set_output(0, ctx.input_dtype(0), Shape({b, h, l, e}));
  return Status::Ok();
}

namespace {

// Runs a modifier subgraph (score_mod / prob_mod) on x, checking it keeps the shape.
Status ApplyModifier(RunContext& ctx, const Graph& g, DataType dt, const std::vector<int64_t>& dims,
                     std::vector<double>* x) {
  std::vector<RtValue> in = {RtValue::FromTensor(linalg::WriteAs<double>(dt, dims, *x))};
  KILN_ASSIGN_OR_RETURN(std::vector<RtValue> out, ctx.RunSubgraph(g, in));
  if (out.size() != 1 || out[0].kind != ValueKind::kTensor || out[0].tensor.dims() != dims)
    return ctx.Error("modifier subgraph '" + g.name + "' must return one tensor of shape " +
                     DimsToString(dims));
  *x = linalg::ReadAs<double>(out[0].tensor);
  for (double& e : *x) e = linalg::RoundToType(dt, e);
  return Status::Ok();
}

template <class T>
Status RunFlexAttentionTyped(RunContext& ctx) {
  const Tensor& qt = ctx.input(0);
  const Tensor& kt = ctx.input(1);
  const Tensor& vt = ctx.input(2);
  if (qt.rank() != 4 || kt.rank() != 4 || vt.rank() != 4) return ctx.Error("Q, K and V must be 4-D");
  const int64_t B = qt.dim(0), Hq = qt.dim(1), Sq = qt.dim(2), E = qt.dim(3);
  const int64_t Hkv = kt.dim(1), L = kt.dim(2), Ev = vt.dim(3);
  if (kt.dim(0) != B || vt.dim(0) != B || kt.dim(3) != E || vt.dim(1) != Hkv || vt.dim(2) != L)
    return ctx.Error("Q, K and V shapes disagree");
  if (Hkv <= 0 || Hq % Hkv != 0) return ctx.Error("Q heads must be a multiple of K/V heads");
  const int64_t group = Hq / Hkv;
  DataType prec = qt.dtype() == DataType::kDouble ? DataType::kDouble : DataType::kFloat;
  if (ctx.has_attr("softmax_precision")) {
    const int64_t p = ctx.attr_int("softmax_precision", 1);
    if (!IsSoftmaxPrecision(p)) return ctx.Error("unsupported softmax_precision " + std::to_string(p));
    prec = static_cast<DataType>(p);
  }
  // sqrt(scale) is formed in float32 and cast to T, as the reference does.
  const float scale = ctx.has_attr("scale") ? ctx.attr_float("scale", 1.0f)
                                            : static_cast<float>(1.0 / std::sqrt(static_cast<double>(E)));
  const double sqrt_scale = linalg::RoundTo<T>(static_cast<double>(std::sqrt(scale)));
  std::vector<double> q = linalg::ReadAs<double>(qt), k = linalg::ReadAs<double>(kt),
                      v = linalg::ReadAs<double>(vt);
  for (double& x : q) x = linalg::RoundTo<T>(x * sqrt_scale);
  for (double& x : k) x = linalg::RoundTo<T>(x * sqrt_scale);
  const std::vector<int64_t> sdims = {B, Hq, Sq, L};
  std::vector<double> scores(static_cast<size_t>(B * Hq * Sq * L));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h)
      for (int64_t i = 0; i < Sq; ++i)
        for (int64_t j = 0; j < L; ++j) {
          const double* qr = q.data() + ((b * Hq + h) * Sq + i) * E;
          const double* kr = k.data() + ((b * Hkv + h / group) * L + j) * E;
          double dot = 0.0;
          for (int64_t d = 0; d < E; ++d) dot += qr[d] * kr[d];
          scores[static_cast<size_t>(((b * Hq + h) * Sq + i) * L + j)] =
              linalg::RoundToType(prec, linalg::RoundTo<T>(dot));
        }
  if (const Graph* g = ctx.attr_graph("score_mod"))
    KILN_RETURN_IF_ERROR(ApplyModifier(ctx, *g, prec, sdims, &scores));
  for (int64_t r = 0; r < B * Hq * Sq; ++r) SoftmaxRow(scores.data() + r * L, L, prec, false);
  if (const Graph* g = ctx.attr_graph("prob_mod"))
    KILN_RETURN_IF_ERROR(ApplyModifier(ctx, *g, prec, sdims, &scores));
  std::vector<double> y(static_cast<size_t>(B * Hq * Sq * Ev), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h)
      for (int64_t i = 0; i < Sq; ++i) {
        double* yr = y.data() + ((b * Hq + h) * Sq + i) * Ev;
        const double* pr = scores.data() + ((b * Hq + h) * Sq + i) * L;
        for (int64_t j = 0; j < L; ++j) {
          const double* vr = v.data() + ((b * Hkv + h / group) * L + j) * Ev;
          for (int64_t d = 0; d < Ev; ++d) yr[d] += pr[j] * vr[d];
        }
        for (int64_t d = 0; d < Ev; ++d) yr[d] = linalg::RoundToType(prec, yr[d]);
      }
  ctx.set_output(0, linalg::WriteAs<double>(vt.dtype(), {B, Hq, Sq, Ev}, y));
  return Status::Ok();
}

}  // namespace

Status RunFlexAttention(RunContext& ctx) {
  Status st = ctx.UnsupportedError("element type " + std::string(DataTypeName(ctx.input(0).dtype())));
  DispatchFloat(ctx.input(0).dtype(), [&](auto tag) { st = RunFlexAttentionTyped<decltype(tag)>(ctx); });
  return st;
}

}  // namespace ops
}  // namespace kiln
