// Convolutions with extra structure: DeformConv (2-D, bilinear sampling at
// learned offsets, optional modulation mask) and CausalConvWithState (causal
// depthwise 1-D conv carrying the last k-1 inputs between calls, optional
// fused SiLU).
#include <cmath>

#include "ops/nn_common.h"
#include "ops/nn_gemm.h"
#include "ops/op_table.h"

namespace kiln {
namespace nn {
namespace {

// Bilinear sample of plane x (h x w) at (y, xpos), zero outside (GridSample
// with align_corners=1 and zeros padding).
template <class C>
C Bilinear(const C* x, int64_t h, int64_t w, double y, double xpos) {
  const double y0f = std::floor(y), x0f = std::floor(xpos);
  const int64_t y0 = static_cast<int64_t>(y0f), x0 = static_cast<int64_t>(x0f);
  const double dy = y - y0f, dx = xpos - x0f;
  double v = 0;
  for (int64_t i = 0; i < 2; ++i) {
    for (int64_t j = 0; j < 2; ++j) {
      const int64_t yy = y0 + i, xx = x0 + j;
      if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
      const double wgt = (i ? dy : 1 - dy) * (j ? dx : 1 - dx);
      v += wgt * static_cast<double>(x[yy * w + xx]);
    }
  }
  return static_cast<C>(v);
}

template <class T>
Status RunDeformConvTyped(RunContext& ctx) {
  using C = compute_t<T>;
  const Tensor& x = ctx.input(0);
  const Tensor& wt = ctx.input(1);
  const Tensor& offset = ctx.input(2);
  if (x.rank() != 4) return ctx.UnsupportedError("only 2-D DeformConv (rank-4 input) is supported");
  if (wt.dtype() != x.dtype() || offset.dtype() != x.dtype())
    return ctx.Error("W and offset must have X's type");
  ConvGeom g;
  KILN_RETURN_IF_ERROR(PrepareConv(ctx, x, wt, &g));
  const int64_t og = ctx.attr_int("offset_group", 1);
  if (og <= 0 || g.cin % og != 0) return ctx.Error("offset_group must divide the input channels");
  const int64_t kh = g.w.kernel[0], kw = g.w.kernel[1], ks = kh * kw;
  const int64_t oh = g.out[0], ow = g.out[1], osz = oh * ow, ih = g.in[0], iw = g.in[1];
  if (offset.rank() != 4 || offset.dim(0) != g.n || offset.dim(1) != og * ks * 2 || offset.dim(2) != oh ||
      offset.dim(3) != ow)
    return ctx.Error("offset must be [N, offset_group * kH * kW * 2, oH, oW] = [" + std::to_string(g.n) +
                     "," + std::to_string(og * ks * 2) + "," + std::to_string(oh) + "," + std::to_string(ow) +
                     "]");
  const Tensor* bias = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  const Tensor* mask = ctx.has_input(4) ? &ctx.input(4) : nullptr;
  if (bias && (bias->dtype() != x.dtype() || bias->numel() != g.m)) return ctx.Error("B must have M values");
  if (mask && (mask->dtype() != x.dtype() || mask->rank() != 4 || mask->dim(0) != g.n ||
               mask->dim(1) != og * ks || mask->dim(2) != oh || mask->dim(3) != ow))
    return ctx.Error("mask must be [N, offset_group * kH * kW, oH, oW]");

  ComputeView<T> xv(x), wv(wt), ov(offset);
  std::vector<C> mv;
  if (mask) {
    ComputeView<T> m(*mask);
    mv.assign(m.data(), m.data() + mask->numel());
  }
  const int64_t cg = g.cin / g.group, mg = g.m / g.group, c_per_og = g.cin / og;
  std::vector<int64_t> ydims = {g.n, g.m, oh, ow};
  std::vector<C> y(static_cast<size_t>(g.n * g.m * osz), C(0));
  std::vector<C> col(static_cast<size_t>(g.cin * ks * osz));
  for (int64_t b = 0; b < g.n; ++b) {
    // Sampled columns: col[(c * ks + k) * osz + o].
    for (int64_t c = 0; c < g.cin; ++c) {
      const C* plane = xv.data() + (b * g.cin + c) * ih * iw;
      const int64_t grp = c / c_per_og;
      for (int64_t k = 0; k < ks; ++k) {
        const int64_t ki = k / kw, kj = k % kw;
        const C* off_h = ov.data() + ((b * og + grp) * ks * 2 + k * 2) * osz;
        const C* off_w = off_h + osz;
        const C* mk = mask ? mv.data() + ((b * og + grp) * ks + k) * osz : nullptr;
        C* dst = col.data() + (c * ks + k) * osz;
        for (int64_t i = 0; i < oh; ++i) {
          for (int64_t j = 0; j < ow; ++j) {
            const int64_t o = i * ow + j;
            const double py =
                static_cast<double>(i * g.w.strides[0] - g.w.pads[0] + ki * g.w.dilations[0]) + off_h[o];
            const double px =
                static_cast<double>(j * g.w.strides[1] - g.w.pads[1] + kj * g.w.dilations[1]) + off_w[o];
            C v = Bilinear(plane, ih, iw, py, px);
            dst[o] = mk ? v * mk[o] : v;
          }
        }
      }
    }
    for (int64_t grp = 0; grp < g.group; ++grp) {
      Gemm<C>(mg, osz, cg * ks, MatrixRef<C>::RowMajor(wv.data() + grp * mg * cg * ks, cg * ks),
              MatrixRef<C>::RowMajor(col.data() + grp * cg * ks * osz, osz),
              y.data() + (b * g.m + grp * mg) * osz, osz);
    }
  }
  if (bias) {
    ComputeView<T> bv(*bias);
    for (int64_t i = 0; i < g.n * g.m; ++i)
      for (int64_t o = 0; o < osz; ++o) y[static_cast<size_t>(i * osz + o)] += bv[i % g.m];
  }
  Tensor out(x.dtype(), ydims);
  StoreCompute<T>(y.data(), out.numel(), &out);
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

template <class T>
Status RunCausalConvTyped(RunContext& ctx) {
  using C = compute_t<T>;
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  if (x.rank() != 3) return ctx.Error("input must be [batch, channels, length]");
  const int64_t nb = x.dim(0), ch = x.dim(1), len = x.dim(2);
  if (w.dtype() != x.dtype() || w.rank() != 3 || w.dim(0) != ch || w.dim(1) != 1 || w.dim(2) < 1)
    return ctx.Error("weight must be [channels, 1, k] of the input type");
  const int64_t k = w.dim(2), keep = k - 1;
  const Tensor* bias = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const Tensor* past = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  if (bias && (bias->dtype() != x.dtype() || bias->numel() != ch))
    return ctx.Error("bias must have one value per channel");
  if (past && (past->dtype() != x.dtype() || past->dims() != std::vector<int64_t>{nb, ch, keep}))
    return ctx.Error("past_state must be [batch, channels, k - 1]");
  const std::string act = ctx.attr_string("activation", "none");
  if (act != "none" && act != "silu" && act != "swish") return ctx.Error("unknown activation '" + act + "'");
  const bool silu = act != "none";

  const T* xp = x.data<T>();
  const T* wp = w.data<T>();
  Tensor y(x.dtype(), x.dims());
  Tensor present(x.dtype(), {nb, ch, keep});
  T* yp = y.mutable_data<T>();
  T* pp = present.mutable_data<T>();
  std::vector<T> padded(static_cast<size_t>(keep + len));
  for (int64_t b = 0; b < nb; ++b) {
    for (int64_t c = 0; c < ch; ++c) {
      // [past (or zeros) | input] along time.
      for (int64_t t = 0; t < keep; ++t)
        padded[static_cast<size_t>(t)] = past ? past->data<T>()[(b * ch + c) * keep + t] : T{};
      for (int64_t t = 0; t < len; ++t) padded[static_cast<size_t>(keep + t)] = xp[(b * ch + c) * len + t];
      const C bv = bias ? ToCompute(bias->data<T>()[c]) : C(0);
      for (int64_t t = 0; t < len; ++t) {
        C s = 0;
        for (int64_t j = 0; j < k; ++j)
          s += ToCompute(wp[c * k + j]) * ToCompute(padded[static_cast<size_t>(t + j)]);
        // The conv result is rounded to T before the activation (as the ONNX
        // reference does).
        C v = ToCompute(FromCompute<T>(s + bv));
        if (silu) v = static_cast<C>(static_cast<double>(v) / (1.0 + std::exp(-static_cast<double>(v))));
        yp[(b * ch + c) * len + t] = FromCompute<T>(v);
      }
      for (int64_t t = 0; t < keep; ++t) pp[(b * ch + c) * keep + t] = padded[static_cast<size_t>(len + t)];
    }
  }
  ctx.set_output(0, std::move(y));
  if (ctx.num_outputs() > 1 && ctx.wants_output(1)) ctx.set_output(1, std::move(present));
  return Status::Ok();
}

}  // namespace
}  // namespace nn

namespace ops {

Status InferDeformConv(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(nn::InferConvOutput(ctx, 0, 1, ctx.input_dtype(0)));
  return Status::Ok();
}

Status RunDeformConv(RunContext& ctx) {
  Status st;
  if (!DispatchFloat(ctx.input(0).dtype(), [&](auto t) { st = nn::RunDeformConvTyped<decltype(t)>(ctx); }))
    return ctx.UnsupportedError("input type must be float, double, float16 or bfloat16");
  return st;
}

Status InferCausalConvWithState(InferContext& ctx) {
  const Shape& xs = ctx.input_shape(0);
  const Shape& ws = ctx.input_shape(1);
  ctx.set_output(0, ctx.input_dtype(0), xs);
  if (ctx.num_outputs() > 1 && ctx.has_output(1)) {
    if (xs.rank_known() && xs.rank() != 3) return ctx.Error("input must be [batch, channels, length]");
    const Dim keep = ws.rank_known() && ws.rank() == 3 ? nn::AddConst(ws[2], -1) : Dim::Unknown();
    if (xs.rank_known()) {
      ctx.set_output(1, ctx.input_dtype(0), Shape({xs[0], xs[1], keep}));
    } else {
      ctx.set_output(1, ctx.input_dtype(0), Shape({Dim::Unknown(), Dim::Unknown(), keep}));
    }
  }
  return Status::Ok();
}

Status RunCausalConvWithState(RunContext& ctx) {
  Status st;
  if (!DispatchFloat(ctx.input(0).dtype(), [&](auto t) { st = nn::RunCausalConvTyped<decltype(t)>(ctx); }))
    return ctx.UnsupportedError("input type must be float, double, float16 or bfloat16");
  return st;
}

}  // namespace ops
}  // namespace kiln
