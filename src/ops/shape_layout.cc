// Layout ops: Transpose, Concat, Split, Slice, DepthToSpace, SpaceToDepth.
// Concat and Slice also carry the symbolic contents of 1-D shape tensors.
#include <algorithm>
#include <limits>

#include "ops/op_table.h"
#include "ops/op_util.h"
#include "ops/shape_util.h"
#include "ops/slice_bounds.h"

namespace kiln {
namespace ops {
namespace {

using shape_ops::BlockCopier;
using shape_ops::ConstInts;
using shape_ops::ExactDiv;
using shape_ops::IntsToString;
using shape_ops::PermuteCopy;
using shape_ops::ReadInts;
using shape_ops::SetIntsOutput;
using shape_ops::SymInts;


Status ReadPerm(const NodeContext& ctx, int64_t rank, std::vector<int64_t>* perm) {
  *perm = ctx.attr_ints("perm");
  if (!ctx.has_attr("perm")) {
    perm->resize(static_cast<size_t>(rank));
    for (int64_t i = 0; i < rank; ++i) (*perm)[static_cast<size_t>(i)] = rank - 1 - i;
    return Status::Ok();
  }
  if (static_cast<int64_t>(perm->size()) != rank)
    return ctx.Error("perm " + IntsToString(*perm) + " does not match rank " + std::to_string(rank));
  return shape_ops::NormalizeAxes(ctx, perm, rank);
}

}  // namespace

// ---- Transpose ----

Status InferTranspose(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  if (!in.rank_known()) {
    ctx.set_output(0, ctx.input_dtype(0), Shape::Unranked());
    return Status::Ok();
  }
  std::vector<int64_t> perm;
  KILN_RETURN_IF_ERROR(ReadPerm(ctx, in.rank(), &perm));
  std::vector<Dim> out;
  for (int64_t p : perm) out.push_back(in[static_cast<size_t>(p)]);
  ctx.set_output(0, ctx.input_dtype(0), Shape(out));
  return Status::Ok();
}

Status RunTranspose(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  std::vector<int64_t> perm;
  KILN_RETURN_IF_ERROR(ReadPerm(ctx, x.rank(), &perm));
  ctx.set_output(0, PermuteCopy(x, x.dims(), perm));
  return Status::Ok();
}

// ---- Concat ----

Status InferConcat(InferContext& ctx) {
  if (ctx.num_inputs() == 0) return ctx.Error("needs at least one input");
  if (!ctx.has_attr("axis")) return ctx.Error("needs the axis attribute");
  const DataType dt = ctx.input_dtype(0);
  int rank = -1;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const Shape& s = ctx.input_shape(i);
    if (!s.rank_known()) continue;
    if (rank >= 0 && s.rank() != rank)
      return ctx.Error("inputs have different ranks (" + std::to_string(rank) + " and " +
                       std::to_string(s.rank()) + ")");
    rank = s.rank();
  }
  if (rank < 0) {
    ctx.set_output(0, dt, Shape::Unranked());
    return Status::Ok();
  }
  int64_t axis;
  KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", 0), rank, &axis));
  std::vector<Dim> out(static_cast<size_t>(rank));
  Dim sum(0);
  for (int d = 0; d < rank; ++d) {
    bool first = true;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      const Shape& s = ctx.input_shape(i);
      Dim x = s.rank_known() ? s[static_cast<size_t>(d)] : Dim::Unknown();
      if (d == axis) {
        sum = sum + x;
        continue;
      }
      if (first || out[static_cast<size_t>(d)].unknown() ||
          (x.known() && !out[static_cast<size_t>(d)].known())) {
        out[static_cast<size_t>(d)] = x;
      } else if (x.known() && out[static_cast<size_t>(d)].known() && x != out[static_cast<size_t>(d)]) {
        return ctx.Error("dim " + std::to_string(d) + " differs between inputs (" +
                         out[static_cast<size_t>(d)].ToString() + " and " + x.ToString() + ")");
      }
      first = false;
    }
  }
  out[static_cast<size_t>(axis)] = sum;
  Shape out_shape(out);
  if (rank == 1) {  // shape tensors: concatenate the symbolic contents
    std::vector<Dim> vals;
    bool all = true;
    for (size_t i = 0; i < ctx.num_inputs() && all; ++i) {
      auto v = SymInts(ctx, i);
      if (!v)
        all = false;
      else
        vals.insert(vals.end(), v->begin(), v->end());
    }
    if (all && static_cast<int64_t>(vals.size()) <= shape_ops::kMaxSymElements) {
      SetIntsOutput(ctx, 0, dt, out_shape, std::move(vals));
      return Status::Ok();
    }
  }
  ctx.set_output(0, dt, out_shape);
  return Status::Ok();
}

Status RunConcat(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, ctx.num_inputs()));
  if (ctx.num_inputs() == 0) return ctx.Error("needs at least one input");
  const Tensor& x0 = ctx.input(0);
  const int rank = x0.rank();
  int64_t axis;
  KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", 0), rank, &axis));
  std::vector<int64_t> out_dims = x0.dims();
  out_dims[static_cast<size_t>(axis)] = 0;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const Tensor& t = ctx.input(i);
    if (t.rank() != rank || t.dtype() != x0.dtype()) return ctx.Error("inputs differ in rank or type");
    for (int d = 0; d < rank; ++d)
      if (d != axis && t.dim(d) != x0.dim(d))
        return ctx.Error("dim " + std::to_string(d) + " differs between inputs");
    out_dims[static_cast<size_t>(axis)] += t.dim(static_cast<int>(axis));
  }
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= out_dims[static_cast<size_t>(d)];
  for (int d = static_cast<int>(axis) + 1; d < rank; ++d) inner *= out_dims[static_cast<size_t>(d)];
  Tensor out(x0.dtype(), out_dims);
  const int64_t out_row = out_dims[static_cast<size_t>(axis)] * inner;
  int64_t col = 0;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const Tensor& t = ctx.input(i);
    const int64_t row = t.dim(static_cast<int>(axis)) * inner;
    BlockCopier copy(t, out);
    for (int64_t o = 0; o < outer; ++o) copy.Copy(o * row, o * out_row + col, row);
    col += row;
  }
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

// ---- Split ----

namespace {
// Split sizes from the attribute (< 13) or input 1 (>= 13); empty `sizes` and
// *given == false when not specified. At inference *known is false when the
// split input is not constant.
Status EqualSplit(const NodeContext& ctx, int64_t dim, int64_t n, bool uneven_ok,
                  std::vector<int64_t>* sizes) {
  if (n <= 0) return ctx.Error("needs at least one output");
  if (dim % n == 0) {
    sizes->assign(static_cast<size_t>(n), dim / n);
    return Status::Ok();
  }
  if (!uneven_ok)
    return ctx.Error("dim " + std::to_string(dim) + " cannot be split evenly into " + std::to_string(n) +
                     " parts");
  int64_t chunk = dim / n + 1;
  sizes->assign(static_cast<size_t>(n), chunk);
  sizes->back() = dim - chunk * (n - 1);
  if (sizes->back() < 0)
    return ctx.Error("dim " + std::to_string(dim) + " cannot be split into " + std::to_string(n) + " parts");
  return Status::Ok();
}

int64_t SplitCount(const NodeContext& ctx, size_t num_outputs) {
  if (ctx.opset() >= 18 && ctx.has_attr("num_outputs")) return ctx.attr_int("num_outputs", 0);
  return static_cast<int64_t>(num_outputs);
}
}  // namespace

Status InferSplit(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const DataType dt = ctx.input_dtype(0);
  const size_t n_out = ctx.num_outputs();
  auto all_unknown = [&]() {
    for (size_t i = 0; i < n_out; ++i)
      ctx.set_output(i, dt, in.rank_known() ? Shape(std::vector<Dim>(in.dims().size())) : Shape::Unranked());
    return Status::Ok();
  };
  if (!in.rank_known()) return all_unknown();
  int64_t axis;
  KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", 0), in.rank(), &axis));
  const Dim dim = in[static_cast<size_t>(axis)];
  std::vector<Dim> sizes;
  std::vector<int64_t> split;
  bool given = false;
  if (ctx.opset() < 13) {
    given = ctx.has_attr("split");
    split = ctx.attr_ints("split");
  } else if (ctx.has_input(1)) {
    auto c = ConstInts(ctx, 1);
    if (!c) {
      for (size_t i = 0; i < n_out; ++i) {
        std::vector<Dim> d = in.dims();
        d[static_cast<size_t>(axis)] = Dim::Unknown();
        ctx.set_output(i, dt, Shape(d));
      }
      return Status::Ok();
    }
    given = true;
    split = *c;
  }
  if (given) {
    if (split.size() != n_out)
      return ctx.Error("split " + IntsToString(split) + " does not match " + std::to_string(n_out) +
                       " outputs");
    int64_t total = 0;
    for (int64_t s : split) {
      if (s < 0) return ctx.Error("split " + IntsToString(split) + " has a negative entry");
      total += s;
      sizes.push_back(Dim(s));
    }
    if (dim.known() && total != dim.value())
      return ctx.Error("split " + IntsToString(split) + " does not add up to dim " + dim.ToString());
  } else {
    int64_t n = SplitCount(ctx, n_out);
    if (n != static_cast<int64_t>(n_out))
      return ctx.Error("num_outputs " + std::to_string(n) + " does not match " + std::to_string(n_out) +
                       " outputs");
    std::vector<int64_t> s;
    if (dim.known() && EqualSplit(ctx, dim.value(), n, ctx.opset() >= 18, &s).ok()) {
      for (int64_t v : s) sizes.push_back(Dim(v));
    } else if (dim.known()) {
      // Not splittable: an error if it ever runs (it may sit in an If branch
      // that never does, as in AffineGrid's function body).
      sizes.assign(n_out, Dim::Unknown());
    } else {
      sizes.assign(n_out, ExactDiv(dim, Dim(n)));  // exact only when evenly divisible
    }
  }
  // Splitting a 1-D shape tensor: split its symbolic contents.
  auto vals = in.rank() == 1 ? SymInts(ctx, 0) : std::nullopt;
  bool sizes_known = std::all_of(sizes.begin(), sizes.end(), [](const Dim& d) { return d.known(); });
  size_t at = 0;
  for (size_t i = 0; i < n_out; ++i) {
    std::vector<Dim> d = in.dims();
    d[static_cast<size_t>(axis)] = sizes[i];
    if (vals && sizes_known && at + static_cast<size_t>(sizes[i].value()) <= vals->size()) {
      std::vector<Dim> part(vals->begin() + static_cast<int64_t>(at),
                            vals->begin() + static_cast<int64_t>(at + static_cast<size_t>(sizes[i].value())));
      at += part.size();
      SetIntsOutput(ctx, i, dt, Shape(d), std::move(part));
    } else {
      ctx.set_output(i, dt, Shape(d));
    }
  }
  return Status::Ok();
}

Status RunSplit(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  const size_t n_out = ctx.num_outputs();
  int64_t axis;
  KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", 0), x.rank(), &axis));
  const int64_t dim = x.dim(static_cast<int>(axis));
  std::vector<int64_t> sizes;
  bool given = false;
  if (ctx.opset() < 13) {
    given = ctx.has_attr("split");
    sizes = ctx.attr_ints("split");
  } else if (ctx.has_input(1)) {
    given = true;
    KILN_RETURN_IF_ERROR(ReadInts(ctx, 1, &sizes));
  }
  if (given) {
    int64_t total = 0;
    for (int64_t s : sizes) {
      if (s < 0) return ctx.Error("split " + IntsToString(sizes) + " has a negative entry");
      total += s;
    }
    if (sizes.size() != n_out || total != dim)
      return ctx.Error("split " + IntsToString(sizes) + " does not fit dim " + std::to_string(dim) + " and " +
                       std::to_string(n_out) + " outputs");
  } else {
    KILN_RETURN_IF_ERROR(EqualSplit(ctx, dim, SplitCount(ctx, n_out), ctx.opset() >= 18, &sizes));
    if (sizes.size() != n_out) return ctx.Error("num_outputs does not match the number of outputs");
  }
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= x.dim(d);
  for (int d = static_cast<int>(axis) + 1; d < x.rank(); ++d) inner *= x.dim(d);
  int64_t col = 0;
  for (size_t i = 0; i < n_out; ++i) {
    std::vector<int64_t> dims = x.dims();
    dims[static_cast<size_t>(axis)] = sizes[i];
    Tensor out(x.dtype(), dims);
    BlockCopier copy(x, out);
    const int64_t row = sizes[i] * inner;
    for (int64_t o = 0; o < outer; ++o) copy.Copy(o * dim * inner + col, o * row, row);
    col += row;
    ctx.set_output(i, std::move(out));
  }
  return Status::Ok();
}

// ---- Slice ----

namespace {

constexpr int64_t kHuge = std::numeric_limits<int32_t>::max();  // "to the end" in exporters' slices

struct SliceArgs {
  std::vector<int64_t> starts, ends, axes, steps;
};

// Checks sizes, fills default axes/steps and normalizes axes for `rank`.
Status FinishSliceArgs(const NodeContext& ctx, int64_t rank, bool has_axes, bool has_steps, SliceArgs* a) {
  const size_t n = a->starts.size();
  if (a->ends.size() != n) return ctx.Error("starts and ends differ in length");
  if (!has_axes) {
    if (static_cast<int64_t>(n) > rank) return ctx.Error("more starts than dims");
    a->axes.resize(n);
    for (size_t i = 0; i < n; ++i) a->axes[i] = static_cast<int64_t>(i);
  }
  if (!has_steps) a->steps.assign(n, 1);
  if (a->axes.size() != n || a->steps.size() != n)
    return ctx.Error("axes/steps do not match starts in length");
  for (int64_t s : a->steps)
    if (s == 0 || s == std::numeric_limits<int64_t>::min())
      return ctx.Error("step " + std::to_string(s) + " is not valid");
  return shape_ops::NormalizeAxes(ctx, &a->axes, rank);
}

Status ReadSliceArgsRun(const RunContext& ctx, SliceArgs* a, bool* has_axes, bool* has_steps) {
  if (ctx.opset() < 10) {
    a->starts = ctx.attr_ints("starts");
    a->ends = ctx.attr_ints("ends");
    a->axes = ctx.attr_ints("axes");
    *has_axes = ctx.has_attr("axes");
    *has_steps = false;
    return Status::Ok();
  }
  KILN_RETURN_IF_ERROR(ReadInts(ctx, 1, &a->starts));
  KILN_RETURN_IF_ERROR(ReadInts(ctx, 2, &a->ends));
  *has_axes = ctx.has_input(3);
  *has_steps = ctx.has_input(4);
  if (*has_axes) KILN_RETURN_IF_ERROR(ReadInts(ctx, 3, &a->axes));
  if (*has_steps) KILN_RETURN_IF_ERROR(ReadInts(ctx, 4, &a->steps));
  return Status::Ok();
}

}  // namespace

namespace {
// One slice bound at inference: a concrete value (negatives included) or a
// symbolic/unknown dim.
struct Bound {
  bool concrete = false;
  int64_t value = 0;
  Dim sym;
};

// Bounds of input i (starts/ends): constant data, else symbolic contents.
std::optional<std::vector<Bound>> ReadBounds(const InferContext& ctx, size_t i) {
  std::vector<Bound> out;
  if (auto c = ConstInts(ctx, i)) {
    for (int64_t v : *c) out.push_back({true, v, v >= 0 ? Dim(v) : Dim::Unknown()});
    return out;
  }
  const std::vector<Dim>* s = ctx.input_sym(i);
  if (!s) return std::nullopt;
  for (const Dim& d : *s) out.push_back({d.known(), d.known() ? d.value() : 0, d});
  return out;
}
// Position of a slice bound (step 1) in a dim of size `dim` that is not
// known: exact for 0, "to the end" and offsets of 1 from either end (symbolic
// dims are taken as >= 1); a symbolic bound is taken as lying inside the dim
// when it is the dim itself or the dim is known (exporters slice constant
// buffers such as causal masks to [past:past+seq]). nullopt otherwise.
std::optional<Dim> BoundPosition(const Bound& b, const Dim& dim) {
  if (!b.concrete) {
    if (b.sym.symbolic() && (b.sym == dim || dim.known())) return b.sym;
    return std::nullopt;
  }
  const int64_t v = b.value;
  if (v >= kHuge) return dim;
  if (v <= -kHuge) return Dim(0);
  if (dim.known()) return Dim(std::clamp<int64_t>(v < 0 ? v + dim.value() : v, 0, dim.value()));
  if (v == 0 || v == 1) return Dim(v);
  if (v == -1 && dim.symbolic()) return shape_ops::SymSub(dim, Dim(1));
  return std::nullopt;
}

// Output dim of a sliced dim that is not known or whose bounds are symbolic.
Dim SliceSymbolicDim(const Dim& dim, const Bound& s, const Bound& e, int64_t step) {
  if (s.concrete && e.concrete && step == -1 && s.value == -1 && e.value <= -kHuge) return dim;  // reverse
  if (step != 1) return Dim::Unknown();
  auto first = BoundPosition(s, dim), last = BoundPosition(e, dim);
  if (!first || !last) return Dim::Unknown();
  return shape_ops::SymSub(*last, *first);
}

}  // namespace

Status InferSlice(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const DataType dt = ctx.input_dtype(0);
  if (!in.rank_known()) {
    ctx.set_output(0, dt, Shape::Unranked());
    return Status::Ok();
  }
  const int64_t rank = in.rank();
  SliceArgs a;
  std::vector<Bound> starts, ends;
  bool has_axes, has_steps;
  if (ctx.opset() < 10) {
    a.starts = ctx.attr_ints("starts");
    a.ends = ctx.attr_ints("ends");
    a.axes = ctx.attr_ints("axes");
    has_axes = ctx.has_attr("axes");
    has_steps = false;
    for (int64_t v : a.starts) starts.push_back({true, v, Dim()});
    for (int64_t v : a.ends) ends.push_back({true, v, Dim()});
  } else {
    auto st = ReadBounds(ctx, 1), en = ReadBounds(ctx, 2);
    auto ax = ConstInts(ctx, 3), sp = ConstInts(ctx, 4);
    has_axes = ctx.has_input(3);
    has_steps = ctx.has_input(4);
    if (!st || !en || (has_axes && !ax) || (has_steps && !sp)) {
      // Which axes are sliced may still be known; their sizes are not.
      std::vector<Dim> out = in.dims();
      if (has_axes && ax) {
        std::vector<int64_t> axes = *ax;
        KILN_RETURN_IF_ERROR(shape_ops::NormalizeAxes(ctx, &axes, rank));
        for (int64_t x : axes) out[static_cast<size_t>(x)] = Dim::Unknown();
      } else {
        out.assign(out.size(), Dim::Unknown());
      }
      ctx.set_output(0, dt, Shape(out));
      return Status::Ok();
    }
    starts = *st;
    ends = *en;
    for (const Bound& b : starts) a.starts.push_back(b.value);
    for (const Bound& b : ends) a.ends.push_back(b.value);
    if (has_axes) a.axes = *ax;
    if (has_steps) a.steps = *sp;
  }
  KILN_RETURN_IF_ERROR(FinishSliceArgs(ctx, rank, has_axes, has_steps, &a));
  std::vector<Dim> out = in.dims();
  std::vector<int64_t> firsts(static_cast<size_t>(rank), 0), steps(static_cast<size_t>(rank), 1);
  for (size_t i = 0; i < a.axes.size(); ++i) {
    const size_t ax = static_cast<size_t>(a.axes[i]);
    const Dim& dim = in[ax];
    const Bound& s = starts[i];
    const Bound& e = ends[i];
    if (dim.known() && s.concrete && e.concrete) {
      int64_t first, count;
      ClampSlice(dim.value(), s.value, e.value, a.steps[i], &first, &count);
      out[ax] = Dim(count);
      firsts[ax] = first;
      steps[ax] = a.steps[i];
    } else {
      out[ax] = SliceSymbolicDim(dim, s, e, a.steps[i]);
    }
  }
  Shape out_shape(out);
  // Slicing a 1-D shape tensor: slice its symbolic contents.
  if (rank == 1 && in[0].known() && out[0].known()) {
    if (auto v = SymInts(ctx, 0)) {
      if (static_cast<int64_t>(v->size()) == in[0].value()) {
        std::vector<Dim> vals;
        for (int64_t k = 0; k < out[0].value(); ++k)
          vals.push_back((*v)[static_cast<size_t>(firsts[0] + k * steps[0])]);
        SetIntsOutput(ctx, 0, dt, out_shape, std::move(vals));
        return Status::Ok();
      }
    }
  }
  ctx.set_output(0, dt, out_shape);
  return Status::Ok();
}

Status RunSlice(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  SliceArgs a;
  bool has_axes = false, has_steps = false;
  KILN_RETURN_IF_ERROR(ReadSliceArgsRun(ctx, &a, &has_axes, &has_steps));
  KILN_RETURN_IF_ERROR(FinishSliceArgs(ctx, x.rank(), has_axes, has_steps, &a));
  const size_t rank = static_cast<size_t>(x.rank());
  std::vector<int64_t> out_dims = x.dims();
  std::vector<int64_t> strides = Strides(x.dims());
  std::vector<int64_t> step_strides = strides;
  int64_t base = 0;
  for (size_t i = 0; i < a.axes.size(); ++i) {
    const size_t ax = static_cast<size_t>(a.axes[i]);
    int64_t first, count;
    ClampSlice(x.dims()[ax], a.starts[i], a.ends[i], a.steps[i], &first, &count);
    out_dims[ax] = count;
    base += first * strides[ax];
    step_strides[ax] = strides[ax] * a.steps[i];
  }
  (void)rank;
  Tensor out(x.dtype(), out_dims);
  ElementCopier copy(x, out);
  int64_t o = 0;
  ForEachBroadcast(out_dims, {step_strides},
                   [&](const std::vector<int64_t>& off) { copy.Copy(base + off[0], o++); });
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

// ---- DepthToSpace, SpaceToDepth ----

namespace {
Status BlockSize(const NodeContext& ctx, int64_t* bs) {
  *bs = ctx.attr_int("blocksize", 0);
  if (*bs <= 0 || *bs > (int64_t{1} << 20))
    return ctx.Error("blocksize " + std::to_string(*bs) + " is not valid");
  return Status::Ok();
}
}  // namespace

Status InferDepthToSpace(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  int64_t bs;
  KILN_RETURN_IF_ERROR(BlockSize(ctx, &bs));
  if (!in.rank_known()) {
    ctx.set_output(0, ctx.input_dtype(0), Shape(std::vector<Dim>(4)));
    return Status::Ok();
  }
  if (in.rank() != 4) return ctx.Error("input must be 4-D");
  if (in[1].known() && in[1].value() % (bs * bs) != 0)
    return ctx.Error("channels " + in[1].ToString() + " not divisible by blocksize^2");
  ctx.set_output(0, ctx.input_dtype(0),
                 Shape({in[0], ExactDiv(in[1], Dim(bs * bs)), in[2] * Dim(bs), in[3] * Dim(bs)}));
  return Status::Ok();
}

Status RunDepthToSpace(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  int64_t bs;
  KILN_RETURN_IF_ERROR(BlockSize(ctx, &bs));
  if (x.rank() != 4 || x.dim(1) % (bs * bs) != 0)
    return ctx.Error("input must be 4-D with C divisible by blocksize^2");
  const int64_t n = x.dim(0), c = x.dim(1) / (bs * bs), h = x.dim(2), w = x.dim(3);
  const bool crd = ctx.attr_string("mode", "DCR") == "CRD";
  Tensor out = crd ? PermuteCopy(x, {n, c, bs, bs, h, w}, {0, 1, 4, 2, 5, 3})
                   : PermuteCopy(x, {n, bs, bs, c, h, w}, {0, 3, 4, 1, 5, 2});
  ctx.set_output(0, out.Reshaped({n, c, h * bs, w * bs}));
  return Status::Ok();
}

Status InferSpaceToDepth(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  int64_t bs;
  KILN_RETURN_IF_ERROR(BlockSize(ctx, &bs));
  if (!in.rank_known()) {
    ctx.set_output(0, ctx.input_dtype(0), Shape(std::vector<Dim>(4)));
    return Status::Ok();
  }
  if (in.rank() != 4) return ctx.Error("input must be 4-D");
  for (int i = 2; i < 4; ++i)
    if (in[static_cast<size_t>(i)].known() && in[static_cast<size_t>(i)].value() % bs != 0)
      return ctx.Error("spatial dims must be divisible by blocksize");
  ctx.set_output(0, ctx.input_dtype(0),
                 Shape({in[0], in[1] * Dim(bs * bs), ExactDiv(in[2], Dim(bs)), ExactDiv(in[3], Dim(bs))}));
  return Status::Ok();
}

Status RunSpaceToDepth(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  int64_t bs;
  KILN_RETURN_IF_ERROR(BlockSize(ctx, &bs));
  if (x.rank() != 4 || x.dim(2) % bs != 0 || x.dim(3) % bs != 0)
    return ctx.Error("input must be 4-D with H and W divisible by blocksize");
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2) / bs, w = x.dim(3) / bs;
  const bool crd = ctx.attr_string("mode", "DCR") == "CRD";
  Tensor out = crd ? PermuteCopy(x, {n, c, h, bs, w, bs}, {0, 1, 3, 5, 2, 4})
                   : PermuteCopy(x, {n, c, h, bs, w, bs}, {0, 3, 5, 1, 2, 4});
  ctx.set_output(0, out.Reshaped({n, c * bs * bs, h, w}));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
