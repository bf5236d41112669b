// kiln.Attention(Q, K, V, bias?) — scaled dot-product attention, made by the
// GPU build pass src/passes/fuse_attention.cc from the exporters'
// MatMul → [scale] → [Add bias] → Softmax → MatMul chains:
//   Y = softmax(scale · Q·Kᵀ + bias) · V        (softmax over the keys)
// Attributes: scale (float, required), layout ("bhsd" default, "bshd", "sbhd"),
// layouts (optional: one per Q, K, V, Y), head_ranges (optional: Q, K and V as
// head ranges of their tensors, e.g. of one packed projection); shapes,
// layouts and head ranges as in src/ops/attention_layout.h.
// The reference computes in double and rounds once to the storage type (the
// fused GPU kernels keep scores and probabilities in FP32 too), so it differs
// from the unfused chain, which rounds after every op, by those roundings.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ops/attention_layout.h"
#include "ops/op_table.h"
#include "ops/op_util.h"

namespace kiln {
namespace ops {
namespace {

Status ReadLayouts(const NodeContext& ctx, AttentionLayouts* layouts) {
  std::vector<std::string> each;
  if (ctx.has_attr("layouts")) each = ctx.attr_strings("layouts");
  std::string err = ParseAttentionLayouts(ctx.attr_string("layout", "bhsd"), ctx.has_attr("layouts") ? &each : nullptr,
                                          layouts);
  return err.empty() ? Status::Ok() : ctx.Error(err);
}

Status ReadHeadRanges(const NodeContext& ctx, AttentionHeadRanges* ranges) {
  *ranges = AttentionHeadRanges();
  if (!ctx.has_attr("head_ranges")) return Status::Ok();
  std::string err = ParseAttentionHeadRanges(ctx.attr_ints("head_ranges"), ranges);
  return err.empty() ? Status::Ok() : ctx.Error(err);
}

// Two dims that cannot be equal at run time.
bool Differ(const Dim& a, const Dim& b) { return a.known() && b.known() && a.value() != b.value(); }

// views: how Q, K and V are read from qt, kt, vt (attention_layout.h).
template <class T>
void AttentionTyped(const Tensor& qt, const Tensor& kt, const Tensor& vt, const Tensor* bt,
                    const std::array<AttentionView, 3>& views, const AttentionShape& g, const BiasStrides& bs,
                    double scale, Tensor* yt) {
  const AttentionStrides qs = views[0].strides, ks = views[1].strides, vs = views[2].strides;
  const AttentionStrides ys = AttentionTensorStrides(g.layouts.y, yt->dims());
  const T* q = qt.data<T>() + views[0].offset;
  const T* k = kt.data<T>() + views[1].offset;
  const T* v = vt.data<T>() + views[2].offset;
  const T* bias = bt ? bt->data<T>() : nullptr;
  T* y = yt->mutable_data<T>();
  auto val = [](T x) { return static_cast<double>(ToCompute(x)); };
  std::vector<double> p(static_cast<size_t>(g.kv_seq));
  std::vector<double> acc(static_cast<size_t>(g.v_head_dim));
  for (int64_t b = 0; b < g.batch; ++b)
    for (int64_t h = 0; h < g.heads; ++h)
      for (int64_t i = 0; i < g.q_seq; ++i) {
        const T* qi = q + b * qs.b + h * qs.h + i * qs.s;
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < g.kv_seq; ++j) {
          const T* kj = k + b * ks.b + g.KvHead(h) * ks.h + j * ks.s;
          double dot = 0;
          for (int64_t d = 0; d < g.head_dim; ++d) dot += val(qi[d]) * val(kj[d]);
          double s = scale * dot;
          if (bias) s += val(bias[b * bs.b + h * bs.h + i * bs.q + j * bs.k]);
          p[static_cast<size_t>(j)] = s;
          mx = std::max(mx, s);
        }
        // A row that is all -inf (fully masked) gives NaN, as the unfused Softmax does.
        double sum = 0;
        for (double& e : p) sum += e = std::exp(e - mx);
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t j = 0; j < g.kv_seq; ++j) {
          const T* vj = v + b * vs.b + g.KvHead(h) * vs.h + j * vs.s;
          const double w = p[static_cast<size_t>(j)] / sum;
          for (int64_t d = 0; d < g.v_head_dim; ++d) acc[static_cast<size_t>(d)] += w * val(vj[d]);
        }
        T* yi = y + b * ys.b + h * ys.h + i * ys.s;
        for (int64_t d = 0; d < g.v_head_dim; ++d)
          yi[d] = FromCompute<T>(static_cast<compute_t<T>>(acc[static_cast<size_t>(d)]));
      }
}

}  // namespace

Status InferKilnAttention(InferContext& ctx) {
  if (ctx.num_inputs() < 3 || ctx.num_inputs() > 4 || !ctx.has_input(0) || !ctx.has_input(1) ||
      !ctx.has_input(2))
    return ctx.Error("expects inputs Q, K, V and an optional bias");
  AttentionLayouts layouts;
  KILN_RETURN_IF_ERROR(ReadLayouts(ctx, &layouts));
  if (!ctx.has_attr("scale")) return ctx.Error("needs the float attribute scale");
  const DataType dt = ctx.input_dtype(0);
  for (size_t i = 1; i < ctx.num_inputs(); ++i)
    if (ctx.has_input(i) && ctx.input_dtype(i) != DataType::kUndefined && dt != DataType::kUndefined &&
        ctx.input_dtype(i) != dt)
      return ctx.Error("Q, K, V and the bias must have one type");
  AttentionHeadRanges ranges;
  KILN_RETURN_IF_ERROR(ReadHeadRanges(ctx, &ranges));
  Shape q = ctx.input_shape(0);
  Shape k = ctx.input_shape(1);
  Shape v = ctx.input_shape(2);
  if (!q.rank_known() || !k.rank_known() || !v.rank_known()) {
    ctx.set_output(0, dt, q.rank_known() ? Shape(std::vector<Dim>(static_cast<size_t>(q.rank()))) : Shape());
    return Status::Ok();
  }
  const int r = q.rank();
  AttentionAxes aq, ak, av, ay;
  auto describe = [&] {
    return "Q " + q.ToString() + ", K " + k.ToString() + " and V " + v.ToString() + " (layouts " +
           AttentionLayoutName(layouts.q) + ", " + AttentionLayoutName(layouts.k) + ", " +
           AttentionLayoutName(layouts.v) + ", " + AttentionLayoutName(layouts.y) + ")";
  };
  if (k.rank() != r || v.rank() != r || !AttentionAxesOf(layouts.q, r, &aq) || !AttentionAxesOf(layouts.k, r, &ak) ||
      !AttentionAxesOf(layouts.v, r, &av) || !AttentionAxesOf(layouts.y, r, &ay))
    return ctx.Error(describe() + " must all be 3-D or all 4-D (\"sbhd\": 4-D)");
  auto at = [](const Shape& s, int axis) { return s[static_cast<size_t>(axis)]; };
  // A head range's tensor: the range's heads on the head axis.
  Shape* each[3] = {&q, &k, &v};
  const int head_axis[3] = {aq.h, ak.h, av.h};
  for (size_t i = 0; i < 3; ++i) {
    const AttentionHeadRange& hr = ranges[i];
    if (hr.whole()) continue;
    const Dim heads = at(*each[i], head_axis[i]);
    if (heads.known() && hr.first + hr.count > heads.value())
      return ctx.Error(describe() + ": head range [" + std::to_string(hr.first) + ", " +
                       std::to_string(hr.first + hr.count) + ") of input " + std::to_string(i) +
                       " exceeds its " + heads.ToString() + " heads");
    std::vector<Dim> dims = each[i]->dims();
    dims[static_cast<size_t>(head_axis[i])] = Dim(hr.count);
    *each[i] = Shape(dims);
  }
  const size_t di = static_cast<size_t>(r - 1);
  const Dim qh = at(q, aq.h), kh = at(k, ak.h);
  const bool heads_divide = !qh.known() || !kh.known() || (kh.value() > 0 && qh.value() % kh.value() == 0);
  if ((aq.b >= 0 && (Differ(at(q, aq.b), at(k, ak.b)) || Differ(at(q, aq.b), at(v, av.b)))) || !heads_divide ||
      Differ(kh, at(v, av.h)) || Differ(q[di], k[di]) || Differ(at(k, ak.s), at(v, av.s)))
    return ctx.Error(describe() + " do not fit one attention");
  std::vector<Dim> y(static_cast<size_t>(r));
  if (ay.b >= 0) y[static_cast<size_t>(ay.b)] = at(q, aq.b);
  y[static_cast<size_t>(ay.h)] = qh;
  y[static_cast<size_t>(ay.s)] = at(q, aq.s);
  y[di] = v[di];
  ctx.set_output(0, dt, Shape(y));
  return Status::Ok();
}

Status RunKilnAttention(RunContext& ctx) {
  if (ctx.num_inputs() < 3 || !ctx.has_input(0) || !ctx.has_input(1) || !ctx.has_input(2))
    return ctx.Error("expects inputs Q, K, V and an optional bias");
  AttentionLayouts layouts;
  KILN_RETURN_IF_ERROR(ReadLayouts(ctx, &layouts));
  if (!ctx.has_attr("scale")) return ctx.Error("needs the float attribute scale");
  const Tensor& q = ctx.input(0);
  const Tensor& k = ctx.input(1);
  const Tensor& v = ctx.input(2);
  const Tensor* bias = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  if (k.dtype() != q.dtype() || v.dtype() != q.dtype() || (bias && bias->dtype() != q.dtype()))
    return ctx.Error("Q, K, V and the bias must have one type");
  AttentionHeadRanges ranges;
  KILN_RETURN_IF_ERROR(ReadHeadRanges(ctx, &ranges));
  const auto describe = [&] { return ": Q " + q.Describe() + ", K " + k.Describe() + ", V " + v.Describe(); };
  std::array<AttentionView, 3> views;
  const AttentionLayout in_layouts[3] = {layouts.q, layouts.k, layouts.v};
  const Tensor* in[3] = {&q, &k, &v};
  for (size_t i = 0; i < 3; ++i) {
    std::string err = AttentionViewOf(in_layouts[i], in[i]->dims(), ranges[i], &views[i]);
    if (!err.empty()) return ctx.Error(err + describe());
  }
  AttentionShape g;
  std::string err = AttentionGeometry(views[0].dims, views[1].dims, views[2].dims, layouts, &g);
  if (!err.empty()) return ctx.Error(err + describe());
  BiasStrides bs;
  if (bias) {
    err = AttentionBiasStrides(g, bias->dims(), &bs);
    if (!err.empty()) return ctx.Error(err + ": bias " + bias->Describe());
  }
  Tensor y(q.dtype(), AttentionOutputDims(g));
  const double scale = ctx.attr_float("scale", 1.0f);
  if (!DispatchFloat(q.dtype(),
                     [&](auto t) { AttentionTyped<decltype(t)>(q, k, v, bias, views, g, bs, scale, &y); }))
    return ctx.UnsupportedError("type " + std::string(DataTypeName(q.dtype())) + " is not supported");
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
