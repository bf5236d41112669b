// Shape ops that only change the view of the data: Shape, Size, Reshape,
// Flatten, Squeeze, Unsqueeze; plus Expand and Tile, which read a target shape
// tensor. Inference keeps symbolic dims flowing through shape tensors
// (Value::sym_data): Shape(x) of x:[batch,3] holds {batch, 3}.
#include <algorithm>
#include <limits>

#include "ops/op_table.h"
#include "ops/op_util.h"
#include "ops/shape_util.h"

namespace kiln {
namespace ops {
namespace {

using shape_ops::ConstInts;
using shape_ops::ExactDiv;
using shape_ops::IntsToString;
using shape_ops::Product;
using shape_ops::ReadInts;
using shape_ops::SetIntsOutput;
using shape_ops::SymInts;

// Shape's [start, end) after clamping (opset 15 attributes).
void ShapeRange(const NodeContext& ctx, int64_t rank, int64_t* start, int64_t* end) {
  int64_t s = ctx.attr_int("start", 0);
  int64_t e = ctx.attr_int("end", rank);
  if (s < 0) s += rank;
  if (e < 0) e += rank;
  *start = std::clamp<int64_t>(s, 0, rank);
  *end = std::clamp<int64_t>(e, 0, rank);
  if (*end < *start) *end = *start;
}

// Carries the symbolic contents of input 0 to output 0 when the element count
// is unchanged (Reshape/Squeeze/Unsqueeze of a shape tensor).
void ForwardSym(InferContext& ctx, const Shape& out_shape) {
  auto sym = SymInts(ctx, 0);
  if (!sym || !out_shape.rank_known()) return;
  Dim n = out_shape.NumElements();
  if (!n.known() || n.value() != static_cast<int64_t>(sym->size())) return;
  SetIntsOutput(ctx, 0, ctx.input_dtype(0), out_shape, std::move(*sym));
}

// Axes of Squeeze/Unsqueeze: attribute before opset 13, input after.
// `known` is false when the axes input exists but is not constant.
Status ReadAxesInfer(const InferContext& ctx, std::vector<int64_t>* axes, bool* given, bool* known) {
  *known = true;
  *given = false;
  if (ctx.opset() < 13) {
    *given = ctx.has_attr("axes");
    *axes = ctx.attr_ints("axes");
    return Status::Ok();
  }
  if (!ctx.has_input(1)) return Status::Ok();
  *given = true;
  auto c = ConstInts(ctx, 1);
  if (!c) {
    *known = false;
    return Status::Ok();
  }
  *axes = *c;
  return Status::Ok();
}

Status ReadAxesRun(const RunContext& ctx, std::vector<int64_t>* axes, bool* given) {
  *given = false;
  if (ctx.opset() < 13) {
    *given = ctx.has_attr("axes");
    *axes = ctx.attr_ints("axes");
    return Status::Ok();
  }
  if (!ctx.has_input(1)) return Status::Ok();
  *given = true;
  return ReadInts(ctx, 1, axes);
}

// Reshape's output dims from concrete input dims and target.
Status ReshapeDims(const RunContext& ctx, const std::vector<int64_t>& in, const std::vector<int64_t>& target,
                   bool allowzero, std::vector<int64_t>* out) {
  out->assign(target.size(), 0);
  int64_t infer_at = -1;
  int64_t known = 1;
  for (size_t i = 0; i < target.size(); ++i) {
    int64_t t = target[i];
    if (t == -1) {
      if (infer_at >= 0) return ctx.Error("shape " + IntsToString(target) + " has more than one -1");
      infer_at = static_cast<int64_t>(i);
      continue;
    }
    if (t < -1) return ctx.Error("shape " + IntsToString(target) + " has a negative dim");
    if (t == 0 && !allowzero) {
      if (i >= in.size())
        return ctx.Error("shape " + IntsToString(target) + ": 0 copies a dim that does not exist");
      t = in[i];
    }
    (*out)[i] = t;
    if (t > shape_ops::kMaxElements || (t > 0 && known > shape_ops::kMaxElements / t))
      return ctx.Error("shape " + IntsToString(target) + " has too many elements");
    known *= t;
  }
  int64_t numel = 1;
  for (int64_t d : in) numel *= d;
  if (infer_at >= 0) {
    if (known == 0 || numel % known != 0)
      return ctx.Error("cannot infer -1 in shape " + IntsToString(target) + " for " + std::to_string(numel) +
                       " elements");
    (*out)[static_cast<size_t>(infer_at)] = numel / known;
  } else if (known != numel) {
    return ctx.Error("shape " + IntsToString(target) + " does not hold " + std::to_string(numel) +
                     " elements");
  }
  return Status::Ok();
}

}  // namespace

// ---- Shape, Size ----

Status InferShape(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  if (!in.rank_known()) {
    ctx.set_output(0, DataType::kInt64, Shape({Dim::Unknown()}));
    return Status::Ok();
  }
  int64_t start, end;
  ShapeRange(ctx, in.rank(), &start, &end);
  std::vector<Dim> vals(in.dims().begin() + start, in.dims().begin() + end);
  SetIntsOutput(ctx, 0, DataType::kInt64, Shape({Dim(end - start)}), std::move(vals));
  return Status::Ok();
}

Status RunShape(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  int64_t start, end;
  ShapeRange(ctx, x.rank(), &start, &end);
  std::vector<int64_t> dims(x.dims().begin() + start, x.dims().begin() + end);
  ctx.set_output(0, Tensor::Int64s(dims));
  return Status::Ok();
}

Status InferSize(InferContext& ctx) {
  if (!ctx.input_shape(0).rank_known()) {
    ctx.set_output(0, DataType::kInt64, Shape::Scalar());
    return Status::Ok();
  }
  SetIntsOutput(ctx, 0, DataType::kInt64, Shape::Scalar(), {Product(ctx.input_shape(0).dims())});
  return Status::Ok();
}

Status RunSize(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 1));
  ctx.set_output(0, Tensor::ScalarInt64(ctx.input(0).numel()));
  return Status::Ok();
}

// ---- Reshape ----

Status InferReshape(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const DataType dt = ctx.input_dtype(0);
  const bool allowzero = ctx.attr_int("allowzero", 0) != 0;
  // Target as dims; `minus1[i]` marks a -1 (constant) or an unknown entry.
  std::vector<Dim> target;
  std::vector<bool> maybe_infer;
  if (ctx.opset() < 5 || !ctx.has_input(1)) {
    if (!ctx.has_attr("shape")) return ctx.Error("needs a shape");
    for (int64_t v : ctx.attr_ints("shape")) {
      target.push_back(v >= 0 ? Dim(v) : Dim::Unknown());
      maybe_infer.push_back(v == -1);
    }
  } else if (auto c = ConstInts(ctx, 1)) {
    int64_t n_minus1 = 0;
    for (int64_t v : *c) {
      if (v < -1) return ctx.Error("shape " + IntsToString(*c) + " has a negative dim");
      n_minus1 += v == -1;
      target.push_back(v >= 0 ? Dim(v) : Dim::Unknown());
      maybe_infer.push_back(v == -1);
    }
    if (n_minus1 > 1) return ctx.Error("shape " + IntsToString(*c) + " has more than one -1");
  } else if (const std::vector<Dim>* s = ctx.input_sym(1)) {
    target = *s;
    for (const Dim& d : target) maybe_infer.push_back(d.unknown());
  } else {
    const Shape& ts = ctx.input_shape(1);
    size_t rank = 0;
    if (ts.rank() == 1 && ts[0].known()) {
      KILN_RETURN_IF_ERROR(RankFromLength(ctx, ts[0], &rank));
      ctx.set_output(0, dt, Shape(std::vector<Dim>(rank)));
    } else
      ctx.set_output(0, dt, Shape::Unranked());
    return Status::Ok();
  }
  std::vector<Dim> out(target.size());
  int64_t n_infer = 0;
  for (size_t i = 0; i < target.size(); ++i) {
    const Dim& t = target[i];
    if (maybe_infer[i]) {
      ++n_infer;
      continue;
    }
    if (t.known() && t.value() == 0 && !allowzero) {
      if (!in.rank_known()) continue;  // unknown
      if (i >= in.dims().size())
        return ctx.Error("shape entry " + std::to_string(i) + " is 0 but the input has rank " +
                         std::to_string(in.rank()));
      out[i] = in[i];
    } else {
      out[i] = t;
    }
  }
  // One entry to infer (a -1, or an unknown value that can only be what makes
  // the element counts match): numel / product of the others.
  if (n_infer == 1 && in.rank_known()) {
    std::vector<Dim> others;
    size_t at = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      if (maybe_infer[i])
        at = i;
      else
        others.push_back(out[i]);
    }
    out[at] = ExactDiv(Product(in.dims()), Product(others));
  }
  Shape out_shape(out);
  if (out_shape.fully_known() && in.fully_known() && Product(in.dims()).value() != Product(out).value())
    return ctx.Error("cannot reshape to " + out_shape.ToString() + ": element counts differ");
  ctx.set_output(0, dt, out_shape);
  ForwardSym(ctx, out_shape);
  return Status::Ok();
}

Status RunReshape(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  std::vector<int64_t> target;
  if (ctx.opset() < 5 || !ctx.has_input(1))
    target = ctx.attr_ints("shape");
  else
    KILN_RETURN_IF_ERROR(ReadInts(ctx, 1, &target));
  std::vector<int64_t> out;
  KILN_RETURN_IF_ERROR(ReshapeDims(ctx, x.dims(), target, ctx.attr_int("allowzero", 0) != 0, &out));
  ctx.set_output(0, x.Reshaped(out));
  return Status::Ok();
}

// ---- Flatten ----

Status InferFlatten(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  if (!in.rank_known()) {
    ctx.set_output(0, ctx.input_dtype(0), Shape({Dim::Unknown(), Dim::Unknown()}));
    return Status::Ok();
  }
  int64_t axis = ctx.attr_int("axis", 1);
  if (axis < 0) axis += in.rank();
  if (axis < 0 || axis > in.rank())
    return ctx.Error("axis " + std::to_string(ctx.attr_int("axis", 1)) + " is out of range");
  std::vector<Dim> head(in.dims().begin(), in.dims().begin() + axis);
  std::vector<Dim> tail(in.dims().begin() + axis, in.dims().end());
  ctx.set_output(0, ctx.input_dtype(0), Shape({Product(head), Product(tail)}));
  return Status::Ok();
}

Status RunFlatten(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  int64_t axis = ctx.attr_int("axis", 1);
  if (axis < 0) axis += x.rank();
  if (axis < 0 || axis > x.rank()) return ctx.Error("axis is out of range");
  int64_t a = 1;
  for (int64_t i = 0; i < axis; ++i) a *= x.dim(static_cast<int>(i));
  int64_t b = a == 0 ? 0 : x.numel() / a;
  if (a == 0) {
    b = 1;
    for (int64_t i = axis; i < x.rank(); ++i) b *= x.dim(static_cast<int>(i));
  }
  ctx.set_output(0, x.Reshaped({a, b}));
  return Status::Ok();
}

// ---- Squeeze, Unsqueeze ----

Status InferSqueeze(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const DataType dt = ctx.input_dtype(0);
  std::vector<int64_t> axes;
  bool given, known;
  KILN_RETURN_IF_ERROR(ReadAxesInfer(ctx, &axes, &given, &known));
  if (known && axes.empty()) given = false;  // empty axes squeeze every 1 (as the reference)
  if (!in.rank_known() || !known) {
    ctx.set_output(0, dt, Shape::Unranked());
    return Status::Ok();
  }
  std::vector<bool> drop(in.dims().size(), false);
  if (given) {
    KILN_RETURN_IF_ERROR(shape_ops::NormalizeAxes(ctx, &axes, in.rank()));
    for (int64_t a : axes) {
      const Dim& d = in[static_cast<size_t>(a)];
      if (d.known() && d.value() != 1)
        return ctx.Error("cannot squeeze axis " + std::to_string(a) + " of size " + d.ToString());
      drop[static_cast<size_t>(a)] = true;
    }
  } else {
    for (size_t i = 0; i < in.dims().size(); ++i) {
      const Dim& d = in[i];
      if (!d.known()) {  // could be 1 or not
        ctx.set_output(0, dt, Shape::Unranked());
        return Status::Ok();
      }
      drop[i] = d.value() == 1;
    }
  }
  std::vector<Dim> out;
  for (size_t i = 0; i < in.dims().size(); ++i)
    if (!drop[i]) out.push_back(in[i]);
  ctx.set_output(0, dt, Shape(out));
  ForwardSym(ctx, Shape(out));
  return Status::Ok();
}

Status RunSqueeze(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  std::vector<int64_t> axes;
  bool given;
  KILN_RETURN_IF_ERROR(ReadAxesRun(ctx, &axes, &given));
  if (axes.empty()) given = false;
  std::vector<bool> drop(static_cast<size_t>(x.rank()), false);
  if (given) {
    KILN_RETURN_IF_ERROR(shape_ops::NormalizeAxes(ctx, &axes, x.rank()));
    for (int64_t a : axes) {
      if (x.dim(static_cast<int>(a)) != 1)
        return ctx.Error("cannot squeeze axis " + std::to_string(a) + " of size " +
                         std::to_string(x.dim(static_cast<int>(a))));
      drop[static_cast<size_t>(a)] = true;
    }
  } else {
    for (int i = 0; i < x.rank(); ++i) drop[static_cast<size_t>(i)] = x.dim(i) == 1;
  }
  std::vector<int64_t> out;
  for (int i = 0; i < x.rank(); ++i)
    if (!drop[static_cast<size_t>(i)]) out.push_back(x.dim(i));
  ctx.set_output(0, x.Reshaped(out));
  return Status::Ok();
}

namespace {
// Output dims of Unsqueeze: 1s at `axes` (normalized to the output rank).
Status UnsqueezeDims(const NodeContext& ctx, std::vector<int64_t> axes, const std::vector<Dim>& in,
                     std::vector<Dim>* out) {
  int64_t out_rank = static_cast<int64_t>(in.size() + axes.size());
  KILN_RETURN_IF_ERROR(shape_ops::NormalizeAxes(ctx, &axes, out_rank));
  std::vector<bool> is_new(static_cast<size_t>(out_rank), false);
  for (int64_t a : axes) is_new[static_cast<size_t>(a)] = true;
  out->clear();
  size_t k = 0;
  for (int64_t i = 0; i < out_rank; ++i) out->push_back(is_new[static_cast<size_t>(i)] ? Dim(1) : in[k++]);
  return Status::Ok();
}
}  // namespace

Status InferUnsqueeze(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const DataType dt = ctx.input_dtype(0);
  std::vector<int64_t> axes;
  bool given, known;
  KILN_RETURN_IF_ERROR(ReadAxesInfer(ctx, &axes, &given, &known));
  if (!given) return ctx.Error("needs axes");
  if (!in.rank_known() || !known) {
    // Axes values unknown, their count known: only the rank is known.
    const Shape& as = ctx.num_inputs() > 1 && ctx.has_input(1) ? ctx.input_shape(1) : Shape::Unranked();
    size_t added = 0;
    if (in.rank_known() && as.rank() == 1 && as[0].known()) {
      KILN_RETURN_IF_ERROR(RankFromLength(ctx, as[0], &added));
      ctx.set_output(0, dt, Shape(std::vector<Dim>(in.dims().size() + added)));
    } else
      ctx.set_output(0, dt, Shape::Unranked());
    return Status::Ok();
  }
  std::vector<Dim> out;
  KILN_RETURN_IF_ERROR(UnsqueezeDims(ctx, axes, in.dims(), &out));
  ctx.set_output(0, dt, Shape(out));
  ForwardSym(ctx, Shape(out));
  return Status::Ok();
}

Status RunUnsqueeze(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  std::vector<int64_t> axes;
  bool given;
  KILN_RETURN_IF_ERROR(ReadAxesRun(ctx, &axes, &given));
  if (!given) return ctx.Error("needs axes");
  std::vector<Dim> out;
  KILN_RETURN_IF_ERROR(UnsqueezeDims(ctx, axes, x.shape().dims(), &out));
  std::vector<int64_t> dims;
  for (const Dim& d : out) dims.push_back(d.value());
  ctx.set_output(0, x.Reshaped(dims));
  return Status::Ok();
}

// ---- Expand ----

Status InferExpand(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const DataType dt = ctx.input_dtype(0);
  auto target = SymInts(ctx, 1);
  if (!target) {
    const Shape& ts = ctx.input_shape(1);
    if (ts.rank() == 1 && ts[0].known() && in.rank_known()) {
      size_t len = 0;
      KILN_RETURN_IF_ERROR(RankFromLength(ctx, ts[0], &len));
      size_t r = std::max<size_t>(in.dims().size(), len);
      // Target values unknown: an input dim known to be other than 1 stays.
      std::vector<Dim> out(r);
      for (size_t i = 0; i < in.dims().size(); ++i) {
        const Dim& d = in.dims()[in.dims().size() - 1 - i];
        if (d.known() && d.value() != 1) out[r - 1 - i] = d;
      }
      ctx.set_output(0, dt, Shape(std::move(out)));
    } else {
      ctx.set_output(0, dt, Shape::Unranked());
    }
    return Status::Ok();
  }
  auto out = BroadcastShapes({in, Shape(*target)});
  if (!out.ok()) return ctx.Error(out.status().message());
  ctx.set_output(0, dt, *out);
  return Status::Ok();
}

Status RunExpand(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 2));
  const Tensor& x = ctx.input(0);
  std::vector<int64_t> target;
  KILN_RETURN_IF_ERROR(ReadInts(ctx, 1, &target));
  KILN_RETURN_IF_ERROR(shape_ops::CheckDims(ctx, target));
  std::vector<int64_t> out_dims;
  if (!BroadcastDims({x.dims(), target}, &out_dims))
    return ctx.Error("cannot broadcast to shape " + IntsToString(target));
  KILN_RETURN_IF_ERROR(shape_ops::CheckDims(ctx, out_dims));
  Tensor out(x.dtype(), out_dims);
  ElementCopier copy(x, out);
  int64_t o = 0;
  ForEachBroadcast(out_dims, {BroadcastStrides(x.dims(), out_dims)},
                   [&](const std::vector<int64_t>& off) { copy.Copy(off[0], o++); });
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

// ---- Tile ----

Status InferTile(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const DataType dt = ctx.input_dtype(0);
  auto reps = SymInts(ctx, 1);
  if (!in.rank_known()) {
    ctx.set_output(0, dt, Shape::Unranked());
    return Status::Ok();
  }
  if (!reps) {
    ctx.set_output(0, dt, Shape(std::vector<Dim>(in.dims().size())));
    return Status::Ok();
  }
  if (reps->size() != in.dims().size())
    return ctx.Error("repeats has " + std::to_string(reps->size()) + " entries for rank " +
                     std::to_string(in.rank()));
  std::vector<Dim> out;
  for (size_t i = 0; i < reps->size(); ++i) {
    const Dim& r = (*reps)[i];
    if (auto c = ConstInts(ctx, 1); c && (*c)[i] < 0) return ctx.Error("repeats has a negative entry");
    out.push_back(Product({in[i], r}));
  }
  ctx.set_output(0, dt, Shape(out));
  return Status::Ok();
}

Status RunTile(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 2));
  const Tensor& x = ctx.input(0);
  std::vector<int64_t> reps;
  KILN_RETURN_IF_ERROR(ReadInts(ctx, 1, &reps));
  if (static_cast<int>(reps.size()) != x.rank())
    return ctx.Error("repeats " + IntsToString(reps) + " does not match rank " + std::to_string(x.rank()));
  std::vector<int64_t> out_dims(reps.size());
  for (size_t i = 0; i < reps.size(); ++i) {
    if (reps[i] < 0) return ctx.Error("repeats " + IntsToString(reps) + " has a negative entry");
    if (reps[i] > shape_ops::kMaxElements)
      return ctx.Error("repeats " + IntsToString(reps) + " is too large");
    out_dims[i] = x.dims()[i] * reps[i];
  }
  KILN_RETURN_IF_ERROR(shape_ops::CheckDims(ctx, out_dims));
  Tensor out(x.dtype(), out_dims);
  ElementCopier copy(x, out);
  std::vector<int64_t> strides = Strides(x.dims());
  const size_t rank = out_dims.size();
  std::vector<int64_t> idx(rank, 0);
  for (int64_t o = 0; o < out.numel(); ++o) {
    int64_t src = 0;
    for (size_t d = 0; d < rank; ++d) src += (idx[d] % x.dims()[d]) * strides[d];
    copy.Copy(src, o);
    for (size_t d = rank; d-- > 0;) {
      if (++idx[d] < out_dims[d]) break;
      idx[d] = 0;
    }
  }
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
