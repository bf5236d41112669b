// Scatter ops: Scatter (deprecated), ScatterElements and ScatterND, with the
// reductions none/add/mul/max/min. Output = data with updates written in.
#include <algorithm>

#include "ops/op_table.h"
#include "ops/op_util.h"
#include "ops/scatter_plan.h"
#include "ops/shape_util.h"

namespace kiln {
namespace ops {
namespace {

using Reduction = ScatterReduction;

// Applies updates to `out`: out[dst[i] + k] (op)= upd[src[i] + k] for k < run.
// The (dst, src) offset pairs are in update order, so later writes win.
Status Apply(const NodeContext& ctx, Reduction red, const Tensor& upd, Tensor& out,
             const std::vector<std::pair<int64_t, int64_t>>& pairs, int64_t run) {
  if (red == Reduction::kNone) {
    shape_ops::BlockCopier copy(upd, out);
    for (const auto& [dst, src] : pairs) copy.Copy(src, dst, run);
    return Status::Ok();
  }
  bool ok = DispatchNumeric(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* o = out.mutable_data<T>();
    const T* u = upd.data<T>();
    for (const auto& [dst, src] : pairs) {
      for (int64_t k = 0; k < run; ++k) {
        auto a = ToCompute(o[dst + k]);
        auto b = ToCompute(u[src + k]);
        decltype(a) r;
        switch (red) {
          case Reduction::kAdd:
            r = a + b;
            break;
          case Reduction::kMul:
            r = a * b;
            break;
          case Reduction::kMax:
            r = std::max(a, b);
            break;
          default:
            r = std::min(a, b);
            break;
        }
        o[dst + k] = FromCompute<T>(r);
      }
    }
  });
  if (!ok) return ctx.UnsupportedError("reduction on type " + std::string(DataTypeName(out.dtype())));
  return Status::Ok();
}

Status IndexError(const NodeContext& ctx, int64_t v, int64_t n) {
  return ctx.Error("index " + std::to_string(v) + " is out of range for a dim of size " + std::to_string(n));
}

Status ScatterElementsImpl(RunContext& ctx, Reduction red) {
  const Tensor& x = ctx.input(0);
  const Tensor& ind = ctx.input(1);
  const Tensor& upd = ctx.input(2);
  if (upd.dtype() != x.dtype()) return ctx.Error("updates must have the data's type");
  int64_t axis;
  KILN_RETURN_IF_ERROR(CheckScatterElements(ctx, x.dims(), ind.dims(), upd.dims(), &axis));
  const std::vector<int64_t> ids = ind.ToInt64s();
  const std::vector<int64_t> xs = Strides(x.dims());
  std::vector<int64_t> base = xs;
  base[static_cast<size_t>(axis)] = 0;
  const int64_t n = x.dim(static_cast<int>(axis)), ax_stride = xs[static_cast<size_t>(axis)];
  std::vector<std::pair<int64_t, int64_t>> pairs;
  pairs.reserve(ids.size());
  int64_t i = 0;
  Status st;
  ForEachBroadcast(ind.dims(), {base}, [&](const std::vector<int64_t>& off) {
    int64_t v = ids[static_cast<size_t>(i)];
    if (v < -n || v >= n) {
      if (st.ok()) st = IndexError(ctx, v, n);
    } else {
      pairs.emplace_back(off[0] + (v < 0 ? v + n : v) * ax_stride, i);
    }
    ++i;
  });
  KILN_RETURN_IF_ERROR(st);
  Tensor out = x.Clone();
  KILN_RETURN_IF_ERROR(Apply(ctx, red, upd, out, pairs, 1));
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

}  // namespace

Status InferScatter(InferContext& ctx) {
  if (ctx.input_shape(0).rank_known() && ctx.input_shape(1).rank_known() &&
      ctx.input_shape(0).rank() != ctx.input_shape(1).rank())
    return ctx.Error("data and indices must have the same rank");
  Reduction red;
  KILN_RETURN_IF_ERROR(ReadScatterReduction(ctx, &red));
  ctx.set_output_type(0, ctx.input_type(0));
  return Status::Ok();
}

Status RunScatterElements(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 3));
  Reduction red;
  KILN_RETURN_IF_ERROR(ReadScatterReduction(ctx, &red));
  return ScatterElementsImpl(ctx, red);
}

Status InferScatterND(InferContext& ctx) {
  Reduction red;
  KILN_RETURN_IF_ERROR(ReadScatterReduction(ctx, &red));
  ctx.set_output_type(0, ctx.input_type(0));
  return Status::Ok();
}

Status RunScatterND(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 3));
  const Tensor& x = ctx.input(0);
  const Tensor& ind = ctx.input(1);
  const Tensor& upd = ctx.input(2);
  Reduction red;
  KILN_RETURN_IF_ERROR(ReadScatterReduction(ctx, &red));
  if (upd.dtype() != x.dtype()) return ctx.Error("updates must have the data's type");
  ScatterNDPlan plan;
  KILN_RETURN_IF_ERROR(CheckScatterND(ctx, x.dims(), ind.dims(), upd.dims(), &plan));
  const int64_t m = plan.depth, slab = plan.slab, picks = plan.picks;
  const size_t ms = static_cast<size_t>(m);
  const std::vector<int64_t> ids = ind.ToInt64s();
  const std::vector<int64_t> xs = Strides(x.dims());
  std::vector<std::pair<int64_t, int64_t>> pairs;
  for (int64_t p = 0; p < picks; ++p) {
    int64_t off = 0;
    for (size_t k = 0; k < ms; ++k) {
      const int64_t v = ids[static_cast<size_t>(p * m) + k], n = x.dims()[k];
      if (v < -n || v >= n) return IndexError(ctx, v, n);
      off += (v < 0 ? v + n : v) * xs[k];
    }
    pairs.emplace_back(off, p * slab);
  }
  Tensor out = x.Clone();
  KILN_RETURN_IF_ERROR(Apply(ctx, red, upd, out, pairs, slab));
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
