// Conv, ConvInteger and QLinearConv: shape inference and CPU reference
// (im2col + blocked Gemm per image and group; depthwise convs run directly),
// plus the convolution helpers shared with the other nn files.
#include <cmath>

#include "ops/nn_common.h"
#include "ops/nn_gemm.h"
#include "ops/op_table.h"

namespace kiln {
namespace nn {

template <class C>
void ConvForward(const ConvGeom& g, const C* x, const C* w, C* y) {
  const int64_t cg = g.cin / g.group;
  const int64_t mg = g.m / g.group;
  const int64_t ksize = Product(g.w.kernel);
  const int64_t kdim = cg * ksize;
  const int64_t in_size = g.in_size();
  const int64_t out_size = g.out_size();
  if (g.n == 0 || g.m == 0 || out_size == 0) return;
  bool pointwise = ksize == 1;
  for (size_t i = 0; i < g.w.rank(); ++i)
    pointwise = pointwise && g.w.strides[i] == 1 && g.w.pads[i] == 0 && g.w.pads[g.w.rank() + i] == 0;

  if (cg == 1 && mg == 1) {  // depthwise: one input channel per output channel
    ParallelFor(g.n * g.group, g.n * g.m * out_size * ksize, [&](int64_t begin, int64_t end) {
      std::vector<C> col(pointwise ? 0 : static_cast<size_t>(ksize * out_size));
      for (int64_t i = begin; i < end; ++i) {  // i = image * group + channel
        const C* src = x + i * in_size;
        if (!pointwise) {
          Im2Col(src, 1, g.in, g.out, g.w, col.data());
          src = col.data();
        }
        const C* wc = w + (i % g.group) * ksize;
        C* yc = y + i * out_size;
        std::fill(yc, yc + out_size, C(0));
        for (int64_t k = 0; k < ksize; ++k) {
          const C wk = wc[k];
          const C* row = src + k * out_size;
          for (int64_t o = 0; o < out_size; ++o) yc[o] += wk * row[o];
        }
      }
    });
    return;
  }

  std::vector<C> col(pointwise ? 0 : static_cast<size_t>(kdim * out_size));
  for (int64_t img = 0; img < g.n; ++img) {
    for (int64_t grp = 0; grp < g.group; ++grp) {
      const C* src = x + (img * g.cin + grp * cg) * in_size;
      if (!pointwise) {
        Im2Col(src, cg, g.in, g.out, g.w, col.data());
        src = col.data();
      }
      Gemm<C>(mg, out_size, kdim, MatrixRef<C>::RowMajor(w + grp * mg * kdim, kdim),
              MatrixRef<C>::RowMajor(src, out_size), y + (img * g.m + grp * mg) * out_size, out_size);
    }
  }
}

template void ConvForward<float>(const ConvGeom&, const float*, const float*, float*);
template void ConvForward<double>(const ConvGeom&, const double*, const double*, double*);
template void ConvForward<int32_t>(const ConvGeom&, const int32_t*, const int32_t*, int32_t*);

Status InferConvOutput(InferContext& ctx, size_t xi, size_t wi, DataType out_dtype) {
  const Shape& xs = ctx.input_shape(xi);
  const Shape& ws = ctx.input_shape(wi);
  if (!xs.rank_known()) {
    ctx.set_output(0, out_dtype, Shape::Unranked());
    return Status::Ok();
  }
  const int rank = xs.rank();
  if (rank < 3) return ctx.Error("input must have rank >= 3 ([N, C, spatial...])");
  if (ws.rank_known() && ws.rank() != rank) return ctx.Error("weight rank must equal input rank");
  const int64_t group = ctx.attr_int("group", 1);
  if (group <= 0) return ctx.Error("group must be positive");
  std::vector<int64_t> kernel;
  if (ws.rank_known()) {
    for (int d = 2; d < rank; ++d) {
      if (!ws[d].known()) {
        kernel.clear();
        break;
      }
      kernel.push_back(ws[d].value());
    }
    if (xs[1].known() && ws[1].known() &&
        (xs[1].value() % group != 0 || xs[1].value() / group != ws[1].value()))  // no overflow on hostile dims
      return ctx.Error("weight shape " + ws.ToString() + " does not match " + xs[1].ToString() +
                       " input channels with group " + std::to_string(group));
    if (ws[0].known() && ws[0].value() % group != 0)
      return ctx.Error("output channels must be divisible by group");
  }
  std::vector<Dim> out(static_cast<size_t>(rank));
  out[0] = xs[0];
  out[1] = ws.rank_known() ? ws[0] : Dim::Unknown();
  if (!kernel.empty() || ctx.has_attr("kernel_shape")) {
    Window w;
    KILN_RETURN_IF_ERROR(ReadWindow(ctx, static_cast<size_t>(rank - 2), kernel, false, &w));
    for (int d = 2; d < rank; ++d) out[d] = WindowOutDim(w, static_cast<size_t>(d - 2), xs[d]);
  }
  ctx.set_output(0, out_dtype, Shape(std::move(out)));
  return Status::Ok();
}

namespace {

template <class T>
Status RunConvTyped(RunContext& ctx) {
  using C = compute_t<T>;
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  if (w.dtype() != x.dtype()) return ctx.Error("weight type must match input type");
  ConvGeom g;
  KILN_RETURN_IF_ERROR(PrepareConv(ctx, x, w, &g));
  const Tensor* bias = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  if (bias && (bias->dtype() != x.dtype() || bias->numel() != g.m))
    return ctx.Error("bias must be a 1-D tensor of " + std::to_string(g.m) + " values of the input type");
  std::vector<int64_t> ydims = {g.n, g.m};
  ydims.insert(ydims.end(), g.out.begin(), g.out.end());
  Tensor y(x.dtype(), ydims);
  ComputeView<T> xv(x), wv(w);
  std::vector<C> buf;
  C* yc;
  if constexpr (std::is_same_v<T, C>) {
    yc = y.mutable_data<C>();
  } else {
    buf.resize(static_cast<size_t>(y.numel()));
    yc = buf.data();
  }
  ConvForward<C>(g, xv.data(), wv.data(), yc);
  if (bias) {
    ComputeView<T> bv(*bias);
    const int64_t out_size = g.out_size();
    for (int64_t i = 0; i < g.n * g.m; ++i) {
      const C b = bv[i % g.m];
      for (int64_t o = 0; o < out_size; ++o) yc[i * out_size + o] += b;
    }
  }
  if constexpr (!std::is_same_v<T, C>) StoreCompute<T>(yc, y.numel(), &y);
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

// Integer tensor t (int8/uint8) minus its zero point (scalar, or one per
// slice along dim 0 when per_channel) as int32.
Status ShiftedInt32(const NodeContext& ctx, const Tensor& t, const Tensor* zp, bool per_channel,
                    const char* what, std::vector<int32_t>* out) {
  if (t.dtype() != DataType::kInt8 && t.dtype() != DataType::kUInt8)
    return ctx.Error(std::string(what) + " must be int8 or uint8");
  if (zp && zp->numel() > 0 && zp->dtype() != t.dtype())
    return ctx.Error(std::string(what) + " zero point type must match " + what);
  const int64_t nzp = zp ? zp->numel() : 0;
  const int64_t channels = t.rank() > 0 ? t.dim(0) : 1;
  if (nzp > 1 && (!per_channel || nzp != channels))
    return ctx.Error(std::string(what) + " zero point must be a scalar" +
                     (per_channel ? " or have one value per output channel" : ""));
  const int64_t block = nzp > 1 && channels > 0 ? t.numel() / channels : 1;
  out->resize(static_cast<size_t>(t.numel()));
  auto shift = [&](auto tag) {
    using T = decltype(tag);
    const T* p = t.data<T>();
    const T* z = nzp > 0 ? zp->data<T>() : nullptr;
    for (int64_t i = 0; i < t.numel(); ++i) {
      const int32_t zv = z == nullptr ? 0 : static_cast<int32_t>(z[nzp == 1 ? 0 : i / block]);
      (*out)[static_cast<size_t>(i)] = static_cast<int32_t>(p[i]) - zv;
    }
  };
  if (t.dtype() == DataType::kInt8) {
    shift(int8_t{});
  } else {
    shift(uint8_t{});
  }
  return Status::Ok();
}

// int32 accumulators of conv(x - x_zp, w - w_zp) for ConvInteger/QLinearConv.
Status IntegerConv(const NodeContext& ctx, const Tensor& x, const Tensor* x_zp, const Tensor& w,
                   const Tensor* w_zp, ConvGeom* g, Tensor* acc) {
  KILN_RETURN_IF_ERROR(PrepareConv(ctx, x, w, g));
  std::vector<int32_t> xs, ws;
  KILN_RETURN_IF_ERROR(ShiftedInt32(ctx, x, x_zp, false, "x", &xs));
  KILN_RETURN_IF_ERROR(ShiftedInt32(ctx, w, w_zp, true, "w", &ws));
  std::vector<int64_t> ydims = {g->n, g->m};
  ydims.insert(ydims.end(), g->out.begin(), g->out.end());
  *acc = Tensor(DataType::kInt32, ydims);
  ConvForward<int32_t>(*g, xs.data(), ws.data(), acc->mutable_data<int32_t>());
  return Status::Ok();
}

}  // namespace
}  // namespace nn

namespace ops {

Status InferConv(InferContext& ctx) { return nn::InferConvOutput(ctx, 0, 1, ctx.input_dtype(0)); }

Status RunConv(RunContext& ctx) {
  Status st;
  if (!DispatchFloat(ctx.input(0).dtype(), [&](auto t) { st = nn::RunConvTyped<decltype(t)>(ctx); }))
    return ctx.UnsupportedError("input type must be float, double, float16 or bfloat16");
  return st;
}

Status InferConvInteger(InferContext& ctx) { return nn::InferConvOutput(ctx, 0, 1, DataType::kInt32); }

Status RunConvInteger(RunContext& ctx) {
  const Tensor* x_zp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const Tensor* w_zp = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  nn::ConvGeom g;
  Tensor acc;
  KILN_RETURN_IF_ERROR(nn::IntegerConv(ctx, ctx.input(0), x_zp, ctx.input(1), w_zp, &g, &acc));
  ctx.set_output(0, std::move(acc));
  return Status::Ok();
}

Status InferQLinearConv(InferContext& ctx) {
  const DataType y_type = ctx.has_input(7) ? ctx.input_dtype(7) : ctx.input_dtype(0);
  return nn::InferConvOutput(ctx, 0, 3, y_type);
}

Status RunQLinearConv(RunContext& ctx) {
  for (size_t i = 0; i < 8; ++i)
    if (!ctx.has_input(i)) return ctx.Error("input " + std::to_string(i) + " is required");
  const Tensor& x_scale = ctx.input(1);
  const Tensor& w_scale = ctx.input(4);
  const Tensor& y_scale = ctx.input(6);
  const Tensor& y_zp = ctx.input(7);
  nn::ConvGeom g;
  Tensor acc;
  KILN_RETURN_IF_ERROR(
      nn::IntegerConv(ctx, ctx.input(0), &ctx.input(2), ctx.input(3), &ctx.input(5), &g, &acc));
  if (x_scale.dtype() != DataType::kFloat || w_scale.dtype() != DataType::kFloat ||
      y_scale.dtype() != DataType::kFloat)
    return ctx.Error("scales must be float32");
  if (x_scale.numel() != 1 || y_scale.numel() != 1) return ctx.Error("x_scale and y_scale must be scalars");
  if (w_scale.numel() != 1 && w_scale.numel() != g.m)
    return ctx.Error("w_scale must be a scalar or have one value per output channel");
  const DataType yt = y_zp.numel() > 0 ? y_zp.dtype() : ctx.input(0).dtype();
  if (yt != DataType::kInt8 && yt != DataType::kUInt8) return ctx.Error("y_zero_point must be int8 or uint8");
  const int32_t* a = acc.data<int32_t>();
  std::vector<int32_t> bias(static_cast<size_t>(g.m), 0);
  if (ctx.has_input(8)) {
    const Tensor& b = ctx.input(8);
    if (b.dtype() != DataType::kInt32 || b.numel() != g.m)
      return ctx.Error("bias must be int32 with one value per output channel");
    for (int64_t i = 0; i < g.m; ++i) bias[static_cast<size_t>(i)] = b.data<int32_t>()[i];
  }
  const double zp = y_zp.numel() > 0 ? y_zp.ScalarAt(0) : 0.0;
  const double lo = yt == DataType::kInt8 ? -128 : 0;
  const double hi = yt == DataType::kInt8 ? 127 : 255;
  const float xs = x_scale.data<float>()[0];
  const float ys = y_scale.data<float>()[0];
  Tensor y(yt, acc.dims());
  const int64_t out_size = g.out_size();
  auto requantize = [&](auto tag) {
    using Q = decltype(tag);
    Q* out = y.mutable_data<Q>();
    for (int64_t i = 0; i < g.n * g.m; ++i) {
      const int64_t m = i % g.m;
      const float mult = xs * w_scale.data<float>()[w_scale.numel() == 1 ? 0 : m] / ys;
      for (int64_t o = 0; o < out_size; ++o) {
        const int64_t idx = i * out_size + o;
        const double v = static_cast<double>(a[idx] + bias[static_cast<size_t>(m)]) * mult + zp;
        out[idx] = static_cast<Q>(std::nearbyint(std::min(hi, std::max(lo, v))));
      }
    }
  };
  if (yt == DataType::kInt8) {
    requantize(int8_t{});
  } else {
    requantize(uint8_t{});
  }
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
