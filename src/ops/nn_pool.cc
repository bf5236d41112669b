// Pooling: MaxPool (with Indices), AveragePool, LpPool, GlobalAveragePool,
// GlobalMaxPool, GlobalLpPool and MaxUnpool. Shape inference and CPU
// reference over any number of spatial dims.
#include <cmath>
#include <limits>

#include "ops/nn_common.h"
#include "ops/nn_gemm.h"
#include "ops/op_table.h"

namespace kiln {
namespace nn {
namespace {

enum class PoolKind { kMax, kAverage, kLp };

// Per spatial dim and output coordinate: the input coordinates the window
// covers (inside the input) and how many taps fall inside the padded input
// (for count_include_pad). Windows are products of these per-dim lists.
struct PoolPlan {
  std::vector<std::vector<std::vector<int64_t>>> taps;
  std::vector<std::vector<int64_t>> padded;
};

PoolPlan MakePoolPlan(const Window& w, const std::vector<int64_t>& in, const std::vector<int64_t>& out) {
  const size_t nd = in.size();
  PoolPlan p;
  p.taps.resize(nd);
  p.padded.resize(nd);
  for (size_t d = 0; d < nd; ++d) {
    p.taps[d].resize(static_cast<size_t>(out[d]));
    p.padded[d].resize(static_cast<size_t>(out[d]));
    for (int64_t o = 0; o < out[d]; ++o) {
      const int64_t start = o * w.strides[d] - w.pads[d];
      for (int64_t k = 0; k < w.kernel[d]; ++k) {
        const int64_t pos = start + k * w.dilations[d];
        if (pos >= 0 && pos < in[d]) p.taps[d][static_cast<size_t>(o)].push_back(pos);
        if (pos >= -w.pads[d] && pos < in[d] + w.pads[nd + d]) ++p.padded[d][static_cast<size_t>(o)];
      }
    }
  }
  return p;
}

double LpRoot(double sum, double p) {
  return p == 1 ? sum : p == 2 ? std::sqrt(sum) : std::pow(sum, 1.0 / p);
}

// LpPool's p: an int since opset 11 (a float before).
double ReadP(const NodeContext& ctx) {
  const Attribute* a = ctx.node().attr("p");
  if (!a) return 2.0;
  return a->type == Attribute::Type::kFloat ? static_cast<double>(a->f) : static_cast<double>(a->i);
}

template <class T>
Status RunPoolTyped(RunContext& ctx, PoolKind kind) {
  using C = compute_t<T>;
  const Tensor& x = ctx.input(0);
  if (x.rank() < 3) return ctx.Error("input must have rank >= 3 ([N, C, spatial...])");
  const std::vector<int64_t> in = SpatialDims(x);
  Window w;
  KILN_RETURN_IF_ERROR(ReadWindow(ctx, in.size(), {}, true, &w));
  std::vector<int64_t> out;
  KILN_RETURN_IF_ERROR(ResolveWindow(ctx, in, &w, &out));
  const bool count_pad = ctx.attr_int("count_include_pad", 0) != 0;
  const double p = kind == PoolKind::kLp ? ReadP(ctx) : 0.0;
  const bool want_indices = kind == PoolKind::kMax && ctx.num_outputs() > 1 && ctx.wants_output(1);
  const bool col_major = ctx.attr_int("storage_order", 0) != 0;

  const size_t nd = in.size();
  const PoolPlan plan = MakePoolPlan(w, in, out);
  const std::vector<int64_t> in_strides = Strides(in);
  std::vector<int64_t> index_strides(nd, 1);  // for Indices: row- or column-major
  for (size_t d = 0; d < nd; ++d)
    index_strides[d] = col_major ? (d ? index_strides[d - 1] * in[d - 1] : 1) : in_strides[d];
  const int64_t planes = x.dim(0) * x.dim(1), in_size = Product(in), out_size = Product(out);

  std::vector<int64_t> ydims = {x.dim(0), x.dim(1)};
  ydims.insert(ydims.end(), out.begin(), out.end());
  Tensor y(x.dtype(), ydims);
  Tensor indices = want_indices ? Tensor(DataType::kInt64, ydims) : Tensor();
  const T* xp = x.data<T>();
  T* yp = y.mutable_data<T>();
  int64_t* ip = want_indices ? indices.mutable_data<int64_t>() : nullptr;
  int64_t taps_per_window = 1;
  for (int64_t k : w.kernel) taps_per_window *= k;

  ParallelFor(planes, planes * out_size * taps_per_window, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> opos(nd), tpos(nd);
    for (int64_t pl = begin; pl < end; ++pl) {
      const T* xc = xp + pl * in_size;
      std::fill(opos.begin(), opos.end(), 0);
      for (int64_t o = 0; o < out_size; ++o) {
        // Walk the window's taps (product of the per-dim lists).
        bool empty = false;
        int64_t valid = 1, padded = 1;
        for (size_t d = 0; d < nd; ++d) {
          const auto& t = plan.taps[d][static_cast<size_t>(opos[d])];
          empty = empty || t.empty();
          valid *= static_cast<int64_t>(t.size());
          padded *= plan.padded[d][static_cast<size_t>(opos[d])];
        }
        C best = std::numeric_limits<C>::lowest();
        int64_t best_index = 0;
        double sum = 0;
        if (!empty) {
          std::fill(tpos.begin(), tpos.end(), 0);
          bool first = true;
          while (true) {
            int64_t off = 0, idx = 0;
            for (size_t d = 0; d < nd; ++d) {
              const int64_t c = plan.taps[d][static_cast<size_t>(opos[d])][static_cast<size_t>(tpos[d])];
              off += c * in_strides[d];
              idx += c * index_strides[d];
            }
            const C v = ToCompute(xc[off]);
            if (kind == PoolKind::kMax) {
              if (first || v > best) {
                best = v;
                best_index = idx;
              }
            } else if (kind == PoolKind::kAverage) {
              sum += static_cast<double>(v);
            } else {
              sum += std::pow(std::fabs(static_cast<double>(v)), p);
            }
            first = false;
            size_t d = nd;
            while (d-- > 0) {
              if (++tpos[d] < static_cast<int64_t>(plan.taps[d][static_cast<size_t>(opos[d])].size())) break;
              tpos[d] = 0;
            }
            if (d == static_cast<size_t>(-1)) break;
          }
        }
        C r;
        if (kind == PoolKind::kMax) {
          r = best;
        } else if (kind == PoolKind::kAverage) {
          const int64_t n = count_pad ? padded : valid;
          r = static_cast<C>(n > 0 ? sum / static_cast<double>(n) : 0.0);
        } else {
          r = static_cast<C>(LpRoot(sum, p));
        }
        yp[pl * out_size + o] = FromCompute<T>(r);
        if (want_indices) ip[pl * out_size + o] = pl * in_size + best_index;
        for (size_t d = nd; d-- > 0;) {
          if (++opos[d] < out[d]) break;
          opos[d] = 0;
        }
      }
    }
  });
  ctx.set_output(0, std::move(y));
  if (want_indices) ctx.set_output(1, std::move(indices));
  return Status::Ok();
}

Status RunPool(RunContext& ctx, PoolKind kind) {
  const DataType dt = ctx.input(0).dtype();
  Status st;
  auto run = [&](auto t) { st = RunPoolTyped<decltype(t)>(ctx, kind); };
  if (DispatchFloat(dt, run)) return st;
  if (kind == PoolKind::kMax && dt == DataType::kInt8) {
    run(int8_t{});
    return st;
  }
  if (kind == PoolKind::kMax && dt == DataType::kUInt8) {
    run(uint8_t{});
    return st;
  }
  return ctx.UnsupportedError("unsupported input type");
}

Status InferPool(InferContext& ctx, bool indices) {
  const Shape& xs = ctx.input_shape(0);
  if (!xs.rank_known()) {
    ctx.set_output(0, ctx.input_dtype(0), Shape::Unranked());
    if (indices && ctx.num_outputs() > 1 && ctx.has_output(1))
      ctx.set_output(1, DataType::kInt64, Shape::Unranked());
    return Status::Ok();
  }
  if (xs.rank() < 3) return ctx.Error("input must have rank >= 3 ([N, C, spatial...])");
  Window w;
  KILN_RETURN_IF_ERROR(ReadWindow(ctx, static_cast<size_t>(xs.rank() - 2), {}, true, &w));
  std::vector<Dim> out = xs.dims();
  for (size_t d = 2; d < out.size(); ++d) out[d] = WindowOutDim(w, d - 2, xs[d]);
  if (indices && ctx.num_outputs() > 1 && ctx.has_output(1)) ctx.set_output(1, DataType::kInt64, Shape(out));
  ctx.set_output(0, ctx.input_dtype(0), Shape(std::move(out)));
  return Status::Ok();
}

template <class T>
Status RunGlobalPoolTyped(RunContext& ctx, PoolKind kind) {
  using C = compute_t<T>;
  const Tensor& x = ctx.input(0);
  if (x.rank() < 2) return ctx.Error("input must have rank >= 2 ([N, C, spatial...])");
  std::vector<int64_t> ydims(static_cast<size_t>(x.rank()), 1);
  ydims[0] = x.dim(0);
  ydims[1] = x.dim(1);
  Tensor y(x.dtype(), ydims);
  const int64_t planes = x.dim(0) * x.dim(1), size = Product(SpatialDims(x));
  const double p = kind == PoolKind::kLp ? ReadP(ctx) : 0.0;
  const T* xp = x.data<T>();
  T* yp = y.mutable_data<T>();
  for (int64_t pl = 0; pl < planes; ++pl) {
    const T* xc = xp + pl * size;
    double sum = 0;
    C best = std::numeric_limits<C>::lowest();
    for (int64_t i = 0; i < size; ++i) {
      const C v = ToCompute(xc[i]);
      if (kind == PoolKind::kMax) {
        if (i == 0 || v > best) best = v;
      } else if (kind == PoolKind::kAverage) {
        sum += static_cast<double>(v);
      } else {
        sum += std::pow(std::fabs(static_cast<double>(v)), p);
      }
    }
    C r = kind == PoolKind::kMax       ? best
          : kind == PoolKind::kAverage ? static_cast<C>(size ? sum / static_cast<double>(size) : 0.0)
                                       : static_cast<C>(LpRoot(sum, p));
    yp[pl] = FromCompute<T>(r);
  }
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

Status RunGlobalPool(RunContext& ctx, PoolKind kind) {
  Status st;
  if (!DispatchFloat(ctx.input(0).dtype(), [&](auto t) { st = RunGlobalPoolTyped<decltype(t)>(ctx, kind); }))
    return ctx.UnsupportedError("input type must be float, double, float16 or bfloat16");
  return st;
}

// MaxUnpool's default output extents: (in - 1) * stride - pads + kernel.
Status UnpoolWindow(const NodeContext& ctx, size_t nsp, Window* w) {
  KILN_RETURN_IF_ERROR(ReadWindow(ctx, nsp, {}, false, w));
  return Status::Ok();
}

}  // namespace
}  // namespace nn

namespace ops {

Status InferMaxPool(InferContext& ctx) { return nn::InferPool(ctx, true); }
Status InferAveragePool(InferContext& ctx) { return nn::InferPool(ctx, false); }
Status RunMaxPool(RunContext& ctx) { return nn::RunPool(ctx, nn::PoolKind::kMax); }
Status RunAveragePool(RunContext& ctx) { return nn::RunPool(ctx, nn::PoolKind::kAverage); }
Status RunLpPool(RunContext& ctx) { return nn::RunPool(ctx, nn::PoolKind::kLp); }

Status InferGlobalPool(InferContext& ctx) {
  const Shape& xs = ctx.input_shape(0);
  if (!xs.rank_known()) {
    ctx.set_output(0, ctx.input_dtype(0), Shape::Unranked());
    return Status::Ok();
  }
  if (xs.rank() < 2) return ctx.Error("input must have rank >= 2 ([N, C, spatial...])");
  std::vector<Dim> out(static_cast<size_t>(xs.rank()), Dim(1));
  out[0] = xs[0];
  out[1] = xs[1];
  ctx.set_output(0, ctx.input_dtype(0), Shape(std::move(out)));
  return Status::Ok();
}

Status RunGlobalAveragePool(RunContext& ctx) { return nn::RunGlobalPool(ctx, nn::PoolKind::kAverage); }
Status RunGlobalMaxPool(RunContext& ctx) { return nn::RunGlobalPool(ctx, nn::PoolKind::kMax); }
Status RunGlobalLpPool(RunContext& ctx) { return nn::RunGlobalPool(ctx, nn::PoolKind::kLp); }

Status InferMaxUnpool(InferContext& ctx) {
  const Shape& xs = ctx.input_shape(0);
  const DataType dt = ctx.input_dtype(0);
  if (ctx.has_input(2)) {
    if (const Tensor* os = ctx.input_data(2)) {
      ctx.set_output(0, dt, Shape::Of(os->ToInt64s()));
    } else if (const auto* sym = ctx.input_sym(2)) {
      ctx.set_output(0, dt, Shape(*sym));
    } else {
      const Shape& ss = ctx.input_shape(2);
      size_t rank = 0;
      const bool counted = ss.rank_known() && ss.rank() == 1 && ss[0].known();
      if (counted) KILN_RETURN_IF_ERROR(RankFromLength(ctx, ss[0], &rank));
      ctx.set_output(0, dt, counted ? Shape(std::vector<Dim>(rank)) : Shape::Unranked());
    }
    return Status::Ok();
  }
  if (!xs.rank_known()) {
    ctx.set_output(0, dt, Shape::Unranked());
    return Status::Ok();
  }
  if (xs.rank() < 3) return ctx.Error("input must have rank >= 3 ([N, C, spatial...])");
  nn::Window w;
  KILN_RETURN_IF_ERROR(nn::UnpoolWindow(ctx, static_cast<size_t>(xs.rank() - 2), &w));
  std::vector<Dim> out = xs.dims();
  for (size_t i = 0; i < w.rank(); ++i)
    out[i + 2] = nn::AddConst(nn::AddConst(xs[i + 2], -1) * Dim(w.strides[i]),
                              w.kernel[i] - w.pads[i] - w.pads[w.rank() + i]);
  ctx.set_output(0, dt, Shape(std::move(out)));
  return Status::Ok();
}

Status RunMaxUnpool(RunContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& ind = ctx.input(1);
  if (x.rank() < 3) return ctx.Error("input must have rank >= 3 ([N, C, spatial...])");
  if (ind.dims() != x.dims() || ind.dtype() != DataType::kInt64)
    return ctx.Error("indices must be int64 with the input's shape");
  nn::Window w;
  KILN_RETURN_IF_ERROR(nn::UnpoolWindow(ctx, static_cast<size_t>(x.rank() - 2), &w));
  // Indices address the default (inferred) output; an explicit output_shape
  // receives that result in its leading corner (as the ONNX reference does).
  std::vector<int64_t> inferred = {x.dim(0), x.dim(1)};
  for (size_t i = 0; i < w.rank(); ++i) {
    const int64_t e =
        (x.dim(static_cast<int>(i) + 2) - 1) * w.strides[i] - w.pads[i] - w.pads[w.rank() + i] + w.kernel[i];
    if (e < 0) return ctx.Error("pads are larger than the output");
    inferred.push_back(e);
  }
  std::vector<int64_t> dims = inferred;
  if (ctx.has_input(2)) {
    dims = ctx.input(2).ToInt64s();
    if (dims.size() != inferred.size()) return ctx.Error("output_shape must have the input's rank");
    for (int64_t d : dims)
      if (d < 0) return ctx.Error("output_shape must be non-negative");
  }
  Tensor y(x.dtype(), dims);
  const int64_t inferred_numel = nn::Product(inferred);
  const std::vector<int64_t> istr = Strides(inferred);
  const std::vector<int64_t> ostr = Strides(dims);
  ElementCopier copy(x, y);
  const int64_t* ip = ind.data<int64_t>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t idx = ip[i];
    if (idx < 0 || idx >= inferred_numel)
      return ctx.Error("index " + std::to_string(idx) + " is out of range");
    int64_t off = 0;
    bool inside = true;
    for (size_t d = 0; d < inferred.size(); ++d) {
      const int64_t c = idx / istr[d];
      idx %= istr[d];
      inside = inside && c < dims[d];
      off += c * ostr[d];
    }
    if (inside) copy.Copy(i, off);
  }
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
