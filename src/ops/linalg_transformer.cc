// Transformer building blocks: RotaryEmbedding, SwiGLU, LinearAttention (the
// linear / gated / delta / gated_delta recurrences) and TensorScatter (KV
// cache update). Float16/bfloat16 values are rounded where the ONNX reference
// materialises a tensor of that type.
#include <cmath>
#include <string>
#include <vector>

#include "ops/linalg_util.h"
#include "ops/op_table.h"
#include "ops/shape_util.h"

namespace kiln {
namespace ops {

// ---- RotaryEmbedding ----

Status InferRotaryEmbedding(InferContext& ctx) {
  const Shape& x = ctx.input_shape(0);
  if (x.rank_known() && x.rank() != 3 && x.rank() != 4) return ctx.Error("input must be 3-D or 4-D");
  if (x.rank() == 3 && ctx.attr_int("num_heads", 0) <= 0)
    return ctx.Error("3-D input needs the num_heads attribute");
  return InferSameAsInput(ctx);
}

namespace {

template <class T>
Status RunRotaryTyped(RunContext& ctx) {
  const Tensor& xt = ctx.input(0);
  const Tensor& cos_t = ctx.input(1);
  const Tensor& sin_t = ctx.input(2);
  const bool has_pos = ctx.has_input(3) && ctx.input(3).defined();
  const bool interleaved = ctx.attr_int("interleaved", 0) != 0;
  // Work in [B, S, H, Dh] index space over the input's own layout.
  int64_t B, S, H, Dh;
  int64_t sb, ss, sh;  // element strides of batch, seq, head
  if (xt.rank() == 4) {
    B = xt.dim(0), H = xt.dim(1), S = xt.dim(2), Dh = xt.dim(3);
    sb = H * S * Dh, sh = S * Dh, ss = Dh;
  } else if (xt.rank() == 3) {
    H = ctx.attr_int("num_heads", 0);
    if (H <= 0 || xt.dim(2) % H != 0) return ctx.Error("hidden size must be a multiple of num_heads");
    B = xt.dim(0), S = xt.dim(1), Dh = xt.dim(2) / H;
    sb = S * H * Dh, ss = H * Dh, sh = Dh;
  } else {
    return ctx.Error("input must be 3-D or 4-D");
  }
  int64_t rot = ctx.attr_int("rotary_embedding_dim", 0);
  if (rot == 0) rot = Dh;
  if (rot < 0 || rot > Dh || rot % 2 != 0)
    return ctx.Error("rotary_embedding_dim must be even and <= head size");
  const int64_t half = rot / 2;
  if (cos_t.dims() != sin_t.dims() || cos_t.rank() < 1 || cos_t.dims().back() != half)
    return ctx.Error("cos_cache/sin_cache last dim must be rotary_embedding_dim / 2 = " +
                     std::to_string(half));
  std::vector<int64_t> pos;
  if (has_pos) {
    pos = ctx.input(3).ToInt64s();
    if (ctx.input(3).dims() != std::vector<int64_t>{B, S})
      return ctx.Error("position_ids must be [batch, seq]");
    if (cos_t.rank() != 2) return ctx.Error("with position_ids the caches must be 2-D");
    for (int64_t p : pos)
      if (p < 0 || p >= cos_t.dim(0)) return ctx.Error("position id " + std::to_string(p) + " out of range");
  } else if (cos_t.dims() != std::vector<int64_t>{B, S, half}) {
    return ctx.Error("without position_ids the caches must be [batch, seq, rotary_embedding_dim / 2]");
  }
  std::vector<double> x = linalg::ReadAs<double>(xt), cs = linalg::ReadAs<double>(cos_t),
                      sn = linalg::ReadAs<double>(sin_t);
  std::vector<double> y = x;
  auto R = [](double v) { return linalg::RoundTo<T>(v); };
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s) {
      const int64_t row = has_pos ? pos[static_cast<size_t>(b * S + s)] : b * S + s;
      const double* c = cs.data() + row * half;
      const double* sv = sn.data() + row * half;
      for (int64_t h = 0; h < H; ++h) {
        const int64_t base = b * sb + s * ss + h * sh;
        for (int64_t i = 0; i < half; ++i) {
          const int64_t i1 = base + (interleaved ? 2 * i : i);
          const int64_t i2 = base + (interleaved ? 2 * i + 1 : i + half);
          const double x1 = x[static_cast<size_t>(i1)], x2 = x[static_cast<size_t>(i2)];
          y[static_cast<size_t>(i1)] = R(R(c[i] * x1) - R(sv[i] * x2));
          y[static_cast<size_t>(i2)] = R(R(sv[i] * x1) + R(c[i] * x2));
        }
      }
    }
  ctx.set_output(0, linalg::WriteAs<double>(xt.dtype(), xt.dims(), y));
  return Status::Ok();
}

}  // namespace

Status RunRotaryEmbedding(RunContext& ctx) {
  Status st = ctx.UnsupportedError("element type " + std::string(DataTypeName(ctx.input(0).dtype())));
  DispatchFloat(ctx.input(0).dtype(), [&](auto tag) { st = RunRotaryTyped<decltype(tag)>(ctx); });
  return st;
}

// ---- SwiGLU ----

Status InferSwiGLU(InferContext& ctx) {
  const Shape& a = ctx.input_shape(0);
  const Shape& b = ctx.input_shape(1);
  if (a.rank_known() && b.rank_known()) {
    if (a.rank() != b.rank()) return ctx.Error("A and B must have the same shape");
    for (int i = 0; i < a.rank(); ++i)
      if (a[i].known() && b[i].known() && a[i].value() != b[i].value())
        return ctx.Error("A and B must have the same shape");
  }
  return InferSameAsInput(ctx);
}

Status RunSwiGLU(RunContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  if (a.dims() != b.dims() || a.dtype() != b.dtype())
    return ctx.Error("A and B must have the same shape and type");
  const double alpha = ctx.attr_float("alpha", 1.0f);
  Status st = ctx.UnsupportedError("element type " + std::string(DataTypeName(a.dtype())));
  DispatchFloat(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    auto R = [](double v) { return linalg::RoundTo<T>(v); };
    std::vector<double> av = linalg::ReadAs<double>(a), bv = linalg::ReadAs<double>(b);
    const double neg_alpha = R(-alpha);
    for (size_t i = 0; i < av.size(); ++i) {
      const double sig = R(1.0 / R(1.0 + R(std::exp(R(neg_alpha * av[i])))));
      av[i] = R(R(av[i] * sig) * bv[i]);
    }
    ctx.set_output(0, linalg::WriteAs<double>(a.dtype(), a.dims(), av));
    st = Status::Ok();
  });
  return st;
}

// ---- LinearAttention ----

namespace {
Status CheckLinearAttentionHeads(const NodeContext& ctx, int64_t hq, int64_t hkv) {
  if (hq <= 0 || hkv <= 0 || hq % hkv != 0)
    return ctx.Error("q_num_heads must be a positive multiple of kv_num_heads");
  if (hq > linalg::kMaxHeads)
    return ctx.Error("q_num_heads " + std::to_string(hq) + " is above " + std::to_string(linalg::kMaxHeads));
  return Status::Ok();
}
}  // namespace

Status InferLinearAttention(InferContext& ctx) {
  const int64_t hq = ctx.attr_int("q_num_heads", 0), hkv = ctx.attr_int("kv_num_heads", 0);
  KILN_RETURN_IF_ERROR(CheckLinearAttentionHeads(ctx, hq, hkv));
  const Shape& q = ctx.input_shape(0);
  const Shape& v = ctx.input_shape(2);
  for (const Shape* s : {&q, &ctx.input_shape(1), &v})
    if (s->rank_known() && s->rank() != 3) return ctx.Error("query, key and value must be 3-D [B, T, H*D]");
  Dim b = q.rank_known() ? q[0] : Dim(), t = q.rank_known() ? q[1] : Dim();
  Dim dk = q.rank_known() && q[2].known() ? Dim(q[2].value() / hq) : Dim();
  Dim dv = v.rank_known() && v[2].known() ? Dim(v[2].value() / hkv) : Dim();
  ctx.set_output(0, ctx.input_dtype(0), Shape({b, t, dv * Dim(hq)}));  // unknown on overflow
  const DataType state_dt = ctx.has_input(3) ? ctx.input_dtype(3) : ctx.input_dtype(0);
  ctx.set_output(1, state_dt, Shape({b, Dim(hkv), dk, dv}));
  return Status::Ok();
}

Status RunLinearAttention(RunContext& ctx) {
  const std::string rule = ctx.attr_string("update_rule", "gated_delta");
  if (rule != "linear" && rule != "gated" && rule != "delta" && rule != "gated_delta")
    return ctx.Error("unknown update_rule '" + rule + "'");
  const int64_t Hq = ctx.attr_int("q_num_heads", 0), Hkv = ctx.attr_int("kv_num_heads", 0);
  KILN_RETURN_IF_ERROR(CheckLinearAttentionHeads(ctx, Hq, Hkv));
  const bool gating = rule == "gated" || rule == "gated_delta";
  const bool delta = rule == "delta" || rule == "gated_delta";
  auto present = [&](size_t i) { return ctx.has_input(i) && ctx.input(i).defined(); };
  if (gating != present(4))
    return ctx.Error("update_rule '" + rule + (gating ? "' requires" : "' forbids") + " decay");
  if (delta != present(5))
    return ctx.Error("update_rule '" + rule + (delta ? "' requires" : "' forbids") + " beta");
  const Tensor& qt = ctx.input(0);
  const Tensor& kt = ctx.input(1);
  const Tensor& vt = ctx.input(2);
  if (qt.rank() != 3 || kt.rank() != 3 || vt.rank() != 3)
    return ctx.Error("query, key and value must be 3-D");
  const int64_t B = qt.dim(0), T = qt.dim(1);
  if (qt.dim(2) % Hq || kt.dim(2) % Hkv || vt.dim(2) % Hkv)
    return ctx.Error("hidden sizes must divide by head counts");
  const int64_t dk = qt.dim(2) / Hq, dv = vt.dim(2) / Hkv, group = Hq / Hkv;
  if (kt.dims() != std::vector<int64_t>{B, T, Hkv * dk} || vt.dim(0) != B || vt.dim(1) != T)
    return ctx.Error("key/value shapes do not match query");
  int64_t out_hidden = 0;
  if (__builtin_mul_overflow(Hq, dv, &out_hidden))
    return ctx.Error("q_num_heads x value head size overflows");
  KILN_RETURN_IF_ERROR(shape_ops::CheckDims(ctx, {B, T, out_hidden}));
  KILN_RETURN_IF_ERROR(shape_ops::CheckDims(ctx, {B, Hkv, dk, dv}));
  // The reference computes in float32 whatever the input type.
  std::vector<float> q = linalg::ReadAs<float>(qt), k = linalg::ReadAs<float>(kt),
                     v = linalg::ReadAs<float>(vt);
  std::vector<float> decay, beta;
  bool decay_per_head = false;
  int64_t beta_heads = 0;
  if (gating) {
    const Tensor& d = ctx.input(4);
    if (d.rank() != 3 || d.dim(0) != B || d.dim(1) != T) return ctx.Error("decay must be [B, T, H_kv(*d_k)]");
    decay_per_head = d.dim(2) == Hkv;
    if (!decay_per_head && d.dim(2) != Hkv * dk)
      return ctx.Error("decay last dim must be kv_num_heads or kv_num_heads*d_k");
    decay = linalg::ReadAs<float>(d);
  }
  if (delta) {
    const Tensor& bt = ctx.input(5);
    if (bt.rank() != 3 || bt.dim(0) != B || bt.dim(1) != T || (bt.dim(2) != Hkv && bt.dim(2) != 1))
      return ctx.Error("beta must be [B, T, kv_num_heads] or [B, T, 1]");
    beta_heads = bt.dim(2);
    beta = linalg::ReadAs<float>(bt);
  }
  const std::vector<int64_t> state_dims = {B, Hkv, dk, dv};
  std::vector<float> state(static_cast<size_t>(B * Hkv * dk * dv), 0.0f);
  DataType state_dt = qt.dtype();
  if (present(3)) {
    if (ctx.input(3).dims() != state_dims) return ctx.Error("past_state must be " + DimsToString(state_dims));
    state = linalg::ReadAs<float>(ctx.input(3));
    state_dt = ctx.input(3).dtype();
  }
  const float scale_attr = ctx.attr_float("scale", 0.0f);
  const float scale =
      scale_attr == 0.0f ? static_cast<float>(1.0 / std::sqrt(static_cast<double>(dk))) : scale_attr;

  std::vector<float> out(static_cast<size_t>(B * T * Hq * dv), 0.0f);
  std::vector<float> vt_row(static_cast<size_t>(dv));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t h = 0; h < Hkv; ++h) {
        float* S = state.data() + (b * Hkv + h) * dk * dv;
        const float* kr = k.data() + (b * T + t) * Hkv * dk + h * dk;
        const float* vr = v.data() + (b * T + t) * Hkv * dv + h * dv;
        if (gating) {
          for (int64_t i = 0; i < dk; ++i) {
            const float g = decay_per_head ? decay[static_cast<size_t>((b * T + t) * Hkv + h)]
                                           : decay[static_cast<size_t>((b * T + t) * Hkv * dk + h * dk + i)];
            const float e = std::exp(g);
            for (int64_t m = 0; m < dv; ++m) S[i * dv + m] *= e;
          }
        }
        for (int64_t m = 0; m < dv; ++m) vt_row[m] = vr[m];
        if (delta) {
          const float bb = beta[static_cast<size_t>((b * T + t) * beta_heads + (beta_heads == 1 ? 0 : h))];
          for (int64_t m = 0; m < dv; ++m) {
            float retrieved = 0.0f;
            for (int64_t i = 0; i < dk; ++i) retrieved += S[i * dv + m] * kr[i];
            vt_row[m] = bb * (vr[m] - retrieved);
          }
        }
        for (int64_t i = 0; i < dk; ++i)
          for (int64_t m = 0; m < dv; ++m) S[i * dv + m] += kr[i] * vt_row[m];
      }
      for (int64_t h = 0; h < Hq; ++h) {
        const float* S = state.data() + (b * Hkv + h / group) * dk * dv;
        const float* qr = q.data() + (b * T + t) * Hq * dk + h * dk;
        float* o = out.data() + (b * T + t) * Hq * dv + h * dv;
        for (int64_t m = 0; m < dv; ++m) {
          float acc = 0.0f;
          for (int64_t i = 0; i < dk; ++i) acc += qr[i] * S[i * dv + m];
          o[m] = scale * acc;
        }
      }
    }
  ctx.set_output(0, linalg::WriteAs<float>(qt.dtype(), {B, T, out_hidden}, out));
  if (ctx.wants_output(1)) ctx.set_output(1, linalg::WriteAs<float>(state_dt, state_dims, state));
  return Status::Ok();
}

// ---- TensorScatter ----

Status InferTensorScatter(InferContext& ctx) {
  const std::string mode = ctx.attr_string("mode", "linear");
  if (mode != "linear" && mode != "circular") return ctx.Error("mode must be 'linear' or 'circular'");
  return InferSameAsInput(ctx);
}

Status RunTensorScatter(RunContext& ctx) {
  const Tensor& past = ctx.input(0);
  const Tensor& update = ctx.input(1);
  const std::string mode = ctx.attr_string("mode", "linear");
  if (mode != "linear" && mode != "circular") return ctx.Error("mode must be 'linear' or 'circular'");
  if (past.dtype() != update.dtype() || past.rank() != update.rank() || past.rank() < 2)
    return ctx.Error("past_cache and update must have the same type and rank (>= 2)");
  int64_t axis = 0;
  KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", -2), past.rank(), &axis));
  if (axis == 0) return ctx.Error("axis cannot be the batch axis");
  for (int i = 0; i < past.rank(); ++i)
    if (i == axis ? update.dim(i) > past.dim(i) : update.dim(i) != past.dim(i))
      return ctx.Error("update shape is not compatible with past_cache");
  const int64_t B = past.dim(0);
  std::vector<int64_t> write(static_cast<size_t>(B), 0);
  if (ctx.has_input(2) && ctx.input(2).defined()) {
    write = ctx.input(2).ToInt64s();
    if (static_cast<int64_t>(write.size()) != B) return ctx.Error("write_indices must have shape [batch]");
  }
  const int64_t max_len = past.dim(static_cast<int>(axis)), len = update.dim(static_cast<int>(axis));
  int64_t inner = 1, outer_per_batch = 1;
  for (int i = static_cast<int>(axis) + 1; i < past.rank(); ++i) inner *= past.dim(i);
  for (int i = 1; i < static_cast<int>(axis); ++i) outer_per_batch *= past.dim(i);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t w = write[static_cast<size_t>(b)];
    if (w < 0 || (mode == "linear" && w + len > max_len))
      return ctx.Error("write index " + std::to_string(w) + " + update length exceeds the cache length");
  }
  Tensor out = past.Clone();
  ElementCopier copy(update, out);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t o = 0; o < outer_per_batch; ++o)
      for (int64_t s = 0; s < len; ++s) {
        int64_t dst_s = write[static_cast<size_t>(b)] + s;
        if (mode == "circular") dst_s %= max_len;
        const int64_t outer = b * outer_per_batch + o;
        for (int64_t i = 0; i < inner; ++i)
          copy.Copy((outer * len + s) * inner + i, (outer * max_len + dst_s) * inner + i);
      }
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
