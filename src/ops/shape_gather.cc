// Indexing ops that read elements by index or mask: Gather, GatherElements,
// GatherND, Compress, NonZero, ReverseSequence. Gather also picks entries of
// symbolic shape tensors (Shape(x)[0] of x:[batch,...] is batch).
#include <algorithm>

#include "ops/op_table.h"
#include "ops/op_util.h"
#include "ops/shape_util.h"

namespace kiln {
namespace ops {
namespace {

using shape_ops::BlockCopier;
using shape_ops::ConstInts;
using shape_ops::IntsToString;
using shape_ops::SetIntsOutput;
using shape_ops::SymInts;

int64_t Prod(const std::vector<int64_t>& d, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to; ++i) p *= d[i];
  return p;
}

// Index value `v` for a dim of size `n`: negative counts from the end.
bool FixIndex(int64_t v, int64_t n, int64_t* out) {
  if (v < -n || v >= n) return false;
  *out = v < 0 ? v + n : v;
  return true;
}

Status IndexError(const NodeContext& ctx, int64_t v, int64_t n) {
  return ctx.Error("index " + std::to_string(v) + " is out of range for a dim of size " + std::to_string(n));
}

}  // namespace

// ---- Gather ----

Status InferGather(InferContext& ctx) {
  const Shape& data = ctx.input_shape(0);
  const Shape& idx = ctx.input_shape(1);
  const DataType dt = ctx.input_dtype(0);
  if (!data.rank_known() || !idx.rank_known()) {
    ctx.set_output(0, dt, Shape::Unranked());
    return Status::Ok();
  }
  int64_t axis;
  KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", 0), data.rank(), &axis));
  std::vector<Dim> out(data.dims().begin(), data.dims().begin() + axis);
  out.insert(out.end(), idx.dims().begin(), idx.dims().end());
  out.insert(out.end(), data.dims().begin() + axis + 1, data.dims().end());
  Shape out_shape(out);
  // Picking entries of a 1-D shape tensor.
  if (data.rank() == 1 && idx.rank() <= 1) {
    auto vals = SymInts(ctx, 0);
    auto ids = ConstInts(ctx, 1);
    if (vals && ids) {
      const int64_t n = static_cast<int64_t>(vals->size());
      std::vector<Dim> picked;
      for (int64_t v : *ids) {
        int64_t k;
        if (!FixIndex(v, n, &k)) return IndexError(ctx, v, n);
        picked.push_back((*vals)[static_cast<size_t>(k)]);
      }
      SetIntsOutput(ctx, 0, dt, out_shape, std::move(picked));
      return Status::Ok();
    }
  }
  ctx.set_output(0, dt, out_shape);
  return Status::Ok();
}

Status RunGather(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 2));
  const Tensor& x = ctx.input(0);
  const Tensor& ind = ctx.input(1);
  int64_t axis;
  KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", 0), x.rank(), &axis));
  const size_t ax = static_cast<size_t>(axis);
  std::vector<int64_t> out_dims(x.dims().begin(), x.dims().begin() + axis);
  out_dims.insert(out_dims.end(), ind.dims().begin(), ind.dims().end());
  out_dims.insert(out_dims.end(), x.dims().begin() + axis + 1, x.dims().end());
  const int64_t outer = Prod(x.dims(), 0, ax), n = x.dims()[ax];
  const int64_t inner = Prod(x.dims(), ax + 1, x.dims().size());
  const std::vector<int64_t> ids = ind.ToInt64s();
  Tensor out(x.dtype(), out_dims);
  BlockCopier copy(x, out);
  const int64_t m = static_cast<int64_t>(ids.size());
  for (int64_t j = 0; j < m; ++j) {
    int64_t k;
    if (!FixIndex(ids[static_cast<size_t>(j)], n, &k)) return IndexError(ctx, ids[static_cast<size_t>(j)], n);
    for (int64_t o = 0; o < outer; ++o) copy.Copy((o * n + k) * inner, (o * m + j) * inner, inner);
  }
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

// ---- GatherElements ----

Status InferGatherElements(InferContext& ctx) {
  const Shape& data = ctx.input_shape(0);
  const Shape& idx = ctx.input_shape(1);
  if (data.rank_known() && idx.rank_known() && data.rank() != idx.rank())
    return ctx.Error("data and indices must have the same rank");
  if (data.rank_known()) {
    int64_t axis;
    KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", 0), data.rank(), &axis));
  }
  ctx.set_output(0, ctx.input_dtype(0), idx);
  return Status::Ok();
}

Status RunGatherElements(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 2));
  const Tensor& x = ctx.input(0);
  const Tensor& ind = ctx.input(1);
  if (x.rank() != ind.rank()) return ctx.Error("data and indices must have the same rank");
  int64_t axis;
  KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", 0), x.rank(), &axis));
  for (int d = 0; d < x.rank(); ++d)
    if (d != axis && ind.dim(d) > x.dim(d))
      return ctx.Error("indices dim " + std::to_string(d) + " exceeds data");
  Tensor out(x.dtype(), ind.dims());
  ElementCopier copy(x, out);
  const std::vector<int64_t> ids = ind.ToInt64s();
  const std::vector<int64_t> xs = Strides(x.dims());
  std::vector<int64_t> base_strides = xs;
  base_strides[static_cast<size_t>(axis)] = 0;
  const int64_t n = x.dim(static_cast<int>(axis)), ax_stride = xs[static_cast<size_t>(axis)];
  int64_t o = 0;
  Status st;
  ForEachBroadcast(ind.dims(), {base_strides}, [&](const std::vector<int64_t>& off) {
    int64_t k;
    if (!st.ok()) return;
    if (!FixIndex(ids[static_cast<size_t>(o)], n, &k)) {
      st = IndexError(ctx, ids[static_cast<size_t>(o)], n);
      return;
    }
    copy.Copy(off[0] + k * ax_stride, o++);
  });
  KILN_RETURN_IF_ERROR(st);
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

// ---- GatherND ----

Status InferGatherND(InferContext& ctx) {
  const Shape& data = ctx.input_shape(0);
  const Shape& idx = ctx.input_shape(1);
  const DataType dt = ctx.input_dtype(0);
  const int64_t b = ctx.attr_int("batch_dims", 0);
  if (!data.rank_known() || !idx.rank_known() || idx.rank() < 1 || !idx.dims().back().known()) {
    ctx.set_output(0, dt, Shape::Unranked());
    return Status::Ok();
  }
  const int64_t m = idx.dims().back().value();
  if (b < 0 || b >= idx.rank() || b + m > data.rank())
    return ctx.Error("batch_dims " + std::to_string(b) + " and index depth " + std::to_string(m) +
                     " do not fit");
  std::vector<Dim> out(idx.dims().begin(), idx.dims().end() - 1);
  out.insert(out.end(), data.dims().begin() + b + m, data.dims().end());
  ctx.set_output(0, dt, Shape(out));
  return Status::Ok();
}

Status RunGatherND(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 2));
  const Tensor& x = ctx.input(0);
  const Tensor& ind = ctx.input(1);
  const int64_t b = ctx.attr_int("batch_dims", 0);
  if (ind.rank() < 1) return ctx.Error("indices must have rank >= 1");
  const int64_t m = ind.dims().back();
  if (b < 0 || b >= ind.rank() || b + m > x.rank())
    return ctx.Error("batch_dims " + std::to_string(b) + " and index depth " + std::to_string(m) +
                     " do not fit");
  for (int64_t d = 0; d < b; ++d)
    if (x.dim(static_cast<int>(d)) != ind.dim(static_cast<int>(d))) return ctx.Error("batch dims differ");
  const size_t bs = static_cast<size_t>(b), ms = static_cast<size_t>(m);
  std::vector<int64_t> out_dims(ind.dims().begin(), ind.dims().end() - 1);
  out_dims.insert(out_dims.end(), x.dims().begin() + b + m, x.dims().end());
  const int64_t batches = Prod(x.dims(), 0, bs);
  const int64_t slab = Prod(x.dims(), bs + ms, x.dims().size());    // elements per pick
  const int64_t batch_elems = Prod(x.dims(), bs, x.dims().size());  // data elems per batch
  const int64_t picks = batches == 0 ? 0 : Prod(ind.dims(), bs, ind.dims().size() - 1);  // per batch
  const std::vector<int64_t> xs = Strides(x.dims());
  const std::vector<int64_t> ids = ind.ToInt64s();
  Tensor out(x.dtype(), out_dims);
  BlockCopier copy(x, out);
  for (int64_t bi = 0; bi < batches; ++bi) {
    for (int64_t p = 0; p < picks; ++p) {
      const int64_t* t = ids.data() + (bi * picks + p) * m;
      int64_t off = bi * batch_elems;
      for (size_t k = 0; k < ms; ++k) {
        int64_t v;
        const int64_t n = x.dims()[bs + k];
        if (!FixIndex(t[k], n, &v)) return IndexError(ctx, t[k], n);
        off += v * xs[bs + k];
      }
      copy.Copy(off, (bi * picks + p) * slab, slab);
    }
  }
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

// ---- Compress ----

Status InferCompress(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const DataType dt = ctx.input_dtype(0);
  Dim count = Dim::Unknown();
  if (const Tensor* c = ctx.input_data(1)) {
    int64_t n = 0;
    for (int64_t i = 0; i < c->numel(); ++i) n += c->ScalarAt(i) != 0;
    count = Dim(n);
  }
  if (!ctx.has_attr("axis")) {
    ctx.set_output(0, dt, Shape({count}));
    return Status::Ok();
  }
  if (!in.rank_known()) {
    ctx.set_output(0, dt, Shape::Unranked());
    return Status::Ok();
  }
  int64_t axis;
  KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", 0), in.rank(), &axis));
  std::vector<Dim> out = in.dims();
  out[static_cast<size_t>(axis)] = count;
  ctx.set_output(0, dt, Shape(out));
  return Status::Ok();
}

Status RunCompress(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 2));
  const Tensor& x = ctx.input(0);
  const Tensor& cond = ctx.input(1);
  if (cond.rank() != 1) return ctx.Error("condition must be 1-D");
  const bool has_axis = ctx.has_attr("axis");
  int64_t axis = 0;
  std::vector<int64_t> dims = x.dims();
  if (has_axis) {
    KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", 0), x.rank(), &axis));
  } else {
    dims = {x.numel()};
  }
  const size_t ax = static_cast<size_t>(axis);
  const int64_t n = dims[ax];
  if (cond.numel() > n) return ctx.Error("condition is longer than the compressed dim");
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < cond.numel(); ++i)
    if (cond.ScalarAt(i) != 0) keep.push_back(i);
  const int64_t outer = Prod(dims, 0, ax), inner = Prod(dims, ax + 1, dims.size());
  std::vector<int64_t> out_dims = dims;
  out_dims[ax] = static_cast<int64_t>(keep.size());
  Tensor out(x.dtype(), out_dims);
  BlockCopier copy(x, out);
  const int64_t kn = static_cast<int64_t>(keep.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < kn; ++j)
      copy.Copy((o * n + keep[static_cast<size_t>(j)]) * inner, (o * kn + j) * inner, inner);
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

// ---- NonZero ----

Status InferNonZero(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  ctx.set_output(0, DataType::kInt64,
                 Shape({in.rank_known() ? Dim(in.rank()) : Dim::Unknown(), Dim::Unknown()}));
  return Status::Ok();
}

Status RunNonZero(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  std::vector<int64_t> hits;
  bool ok = DispatchAll(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i)
      if (ToCompute(p[i]) != compute_t<T>(0)) hits.push_back(i);
  });
  if (!ok) return ctx.UnsupportedError("unsupported type " + std::string(DataTypeName(x.dtype())));
  const int64_t nnz = static_cast<int64_t>(hits.size());
  const int r = x.rank();
  Tensor out(DataType::kInt64, {r, nnz});
  int64_t* o = out.mutable_data<int64_t>();
  const std::vector<int64_t> xs = Strides(x.dims());
  for (int64_t j = 0; j < nnz; ++j) {
    int64_t flat = hits[static_cast<size_t>(j)];
    for (int d = 0; d < r; ++d) {
      o[d * nnz + j] = flat / xs[static_cast<size_t>(d)];
      flat %= xs[static_cast<size_t>(d)];
    }
  }
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

// ---- ReverseSequence ----

Status InferReverseSequence(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  if (in.rank_known() && in.rank() < 2) return ctx.Error("input must have rank >= 2");
  ctx.set_output(0, ctx.input_dtype(0), in);
  return Status::Ok();
}

Status RunReverseSequence(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 2));
  const Tensor& x = ctx.input(0);
  if (x.rank() < 2) return ctx.Error("input must have rank >= 2");
  const int64_t batch_axis = ctx.attr_int("batch_axis", 1), time_axis = ctx.attr_int("time_axis", 0);
  if (!((batch_axis == 0 && time_axis == 1) || (batch_axis == 1 && time_axis == 0)))
    return ctx.Error("batch_axis/time_axis must be 0 and 1");
  const std::vector<int64_t> lens = ctx.input(1).ToInt64s();
  const int64_t nb = x.dim(static_cast<int>(batch_axis)), nt = x.dim(static_cast<int>(time_axis));
  if (static_cast<int64_t>(lens.size()) != nb)
    return ctx.Error("sequence_lens must have one entry per batch");
  const std::vector<int64_t> xs = Strides(x.dims());
  const int64_t bst = xs[static_cast<size_t>(batch_axis)], tst = xs[static_cast<size_t>(time_axis)];
  const int64_t inner = Prod(x.dims(), 2, x.dims().size());
  Tensor out = x.Clone();
  BlockCopier copy(x, out);
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t len = lens[static_cast<size_t>(b)];
    if (len < 0 || len > nt) return ctx.Error("sequence length " + std::to_string(len) + " is out of range");
    for (int64_t t = 0; t < len; ++t) copy.Copy(b * bst + (len - 1 - t) * tst, b * bst + t * tst, inner);
  }
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
