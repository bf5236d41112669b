// Ops that make tensors from attributes or shapes: Constant, ConstantOfShape,
// Range, EyeLike, OneHot, Trilu. ConstantOfShape and Range take symbolic
// shapes/limits (ConstantOfShape(Shape(x)) has x's symbolic shape).
#include <algorithm>
#include <cmath>
#include <limits>

#include "ops/op_table.h"
#include "ops/op_util.h"
#include "ops/shape_util.h"

namespace kiln {
namespace ops {
namespace {

using shape_ops::ConstInts;
using shape_ops::ReadInts;
using shape_ops::SymInts;

// Constant's value from whichever value* attribute it has.
Status ConstantValue(const NodeContext& ctx, Tensor* out) {
  if (ctx.has_attr("sparse_value")) return ctx.UnsupportedError("sparse_value constants are not supported");
  if (const Tensor* t = ctx.attr_tensor("value")) {
    *out = *t;
    return Status::Ok();
  }
  if (ctx.has_attr("value_float")) {
    *out = Tensor::Scalar(ctx.attr_float("value_float", 0.0f));
  } else if (ctx.has_attr("value_floats")) {
    std::vector<float> v = ctx.attr_floats("value_floats");
    *out = Tensor::FromVector<float>(DataType::kFloat, {static_cast<int64_t>(v.size())}, v);
  } else if (ctx.has_attr("value_int")) {
    *out = Tensor::ScalarInt64(ctx.attr_int("value_int", 0));
  } else if (ctx.has_attr("value_ints")) {
    *out = Tensor::Int64s(ctx.attr_ints("value_ints"));
  } else if (ctx.has_attr("value_string")) {
    *out = Tensor(DataType::kString, {});
    out->mutable_strings()[0] = ctx.attr_string("value_string");
  } else if (ctx.has_attr("value_strings")) {
    std::vector<std::string> v = ctx.attr_strings("value_strings");
    *out = Tensor(DataType::kString, {static_cast<int64_t>(v.size())});
    out->mutable_strings() = v;
  } else {
    return ctx.Error("has no value attribute");
  }
  return Status::Ok();
}

// The value attribute of ConstantOfShape (float 0 by default).
Status FillValue(const NodeContext& ctx, Tensor* v) {
  if (const Tensor* t = ctx.attr_tensor("value")) {
    if (t->numel() != 1) return ctx.Error("value must hold exactly one element");
    *v = *t;
  } else {
    *v = Tensor::Scalar(0.0f);
  }
  return Status::Ok();
}

}  // namespace

// ---- Constant ----

Status InferConstant(InferContext& ctx) {
  Tensor t;
  KILN_RETURN_IF_ERROR(ConstantValue(ctx, &t));
  ctx.set_output_data(0, std::move(t));
  return Status::Ok();
}

Status RunConstant(RunContext& ctx) {
  Tensor t;
  KILN_RETURN_IF_ERROR(ConstantValue(ctx, &t));
  ctx.set_output(0, std::move(t));
  return Status::Ok();
}

// ---- ConstantOfShape ----

Status InferConstantOfShape(InferContext& ctx) {
  Tensor v;
  KILN_RETURN_IF_ERROR(FillValue(ctx, &v));
  if (auto dims = SymInts(ctx, 0)) {
    if (auto c = ConstInts(ctx, 0))
      for (int64_t d : *c)
        if (d < 0) return ctx.Error("shape has a negative dim");
    ctx.set_output(0, v.dtype(), Shape(*dims));
    return Status::Ok();
  }
  const Shape& s = ctx.input_shape(0);
  size_t rank = 0;
  if (s.rank() == 1 && s[0].known()) {
    KILN_RETURN_IF_ERROR(RankFromLength(ctx, s[0], &rank));
    ctx.set_output(0, v.dtype(), Shape(std::vector<Dim>(rank)));
  } else
    ctx.set_output(0, v.dtype(), Shape::Unranked());
  return Status::Ok();
}

Status RunConstantOfShape(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 1));
  Tensor v;
  KILN_RETURN_IF_ERROR(FillValue(ctx, &v));
  std::vector<int64_t> dims;
  KILN_RETURN_IF_ERROR(ReadInts(ctx, 0, &dims));
  KILN_RETURN_IF_ERROR(shape_ops::CheckDims(ctx, dims));
  Tensor out(v.dtype(), dims);
  shape_ops::FillWith(v, 0, out);
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

// ---- Range ----

namespace {
// Number of elements of Range(start, limit, delta); -1 when absurdly large.
int64_t RangeCount(double start, double limit, double delta) {
  const double n = std::ceil((limit - start) / delta);
  if (!(n < 9.0e15)) return -1;
  return std::max<int64_t>(static_cast<int64_t>(n), 0);
}
int64_t RangeCountInt(int64_t start, int64_t limit, int64_t delta) {
  int64_t span;
  if (__builtin_sub_overflow(limit, start, &span)) return -1;
  if (delta == -1 && span == std::numeric_limits<int64_t>::min()) return -1;
  int64_t q = span / delta;
  if (span % delta != 0 && ((span < 0) == (delta < 0))) ++q;
  return std::max<int64_t>(q, 0);
}
}  // namespace

Status InferRange(InferContext& ctx) {
  const DataType dt = ctx.input_dtype(0);
  const Tensor* s = ctx.input_data(0);
  const Tensor* l = ctx.input_data(1);
  const Tensor* d = ctx.input_data(2);
  if (s && l && d) {
    if (d->ScalarAt(0) == 0) return ctx.Error("delta must not be 0");
    if (!std::isfinite(s->ScalarAt(0)) || !std::isfinite(l->ScalarAt(0)) || !std::isfinite(d->ScalarAt(0)))
      return ctx.Error("inputs must be finite");
    int64_t n = IsFloatingPoint(dt) ? RangeCount(s->ScalarAt(0), l->ScalarAt(0), d->ScalarAt(0))
                                    : RangeCountInt(s->IntAt(0), l->IntAt(0), d->IntAt(0));
    ctx.set_output(0, dt, Shape({n >= 0 ? Dim(n) : Dim::Unknown()}));
    return Status::Ok();
  }
  // Symbolic limit (e.g. Range(0, seq, 1)): only exact with delta 1. float32
  // and float64 ranges count the same when start and delta are whole numbers
  // and the limit is a cast integer (torch.arange(seq, dtype=float32): rotary
  // embeddings); float16 holds integers exactly only up to 2048, so not there.
  const bool exact_float = dt == DataType::kFloat || dt == DataType::kDouble;
  auto operand = [&ctx, exact_float](size_t i) -> std::optional<std::vector<Dim>> {
    if (auto s = SymInts(ctx, i)) return s;
    if (!exact_float) return std::nullopt;
    if (const Tensor* t = ctx.input_data(i); t && t->numel() == 1) {
      const double v = t->ScalarAt(0);
      if (v >= 0 && v <= 16777216.0 && v == std::floor(v)) return std::vector<Dim>{Dim(static_cast<int64_t>(v))};
      return std::nullopt;
    }
    if (const std::vector<Dim>* s = ctx.input_sym_through_cast(i)) return *s;
    return std::nullopt;
  };
  auto ss = operand(0), ls = operand(1), ds = operand(2);
  if (ss && ls && ds && ss->size() == 1 && ls->size() == 1 && ds->size() == 1 && (*ds)[0].known() &&
      (*ds)[0].value() == 1 && !(*ss)[0].unknown() && !(*ls)[0].unknown()) {
    ctx.set_output(0, dt, Shape({shape_ops::SymSub((*ls)[0], (*ss)[0])}));
    return Status::Ok();
  }
  ctx.set_output(0, dt, Shape({Dim::Unknown()}));
  return Status::Ok();
}

Status RunRange(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 3));
  const Tensor& s = ctx.input(0);
  const Tensor& l = ctx.input(1);
  const Tensor& d = ctx.input(2);
  if (s.numel() != 1 || l.numel() != 1 || d.numel() != 1) return ctx.Error("inputs must be scalars");
  const DataType dt = s.dtype();
  if (l.dtype() != dt || d.dtype() != dt) return ctx.Error("inputs must have the same type");
  if (d.ScalarAt(0) == 0) return ctx.Error("delta must not be 0");
  for (const Tensor* t : {&s, &l, &d})
    if (!std::isfinite(t->ScalarAt(0))) return ctx.Error("inputs must be finite");
  Tensor out;
  bool ok = DispatchNumeric(dt, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const C start = ToCompute(s.data<T>()[0]), limit = ToCompute(l.data<T>()[0]),
            delta = ToCompute(d.data<T>()[0]);
    int64_t n;
    if constexpr (std::is_floating_point_v<C>)
      n = RangeCount(start, limit, delta);
    else
      n = RangeCountInt(static_cast<int64_t>(start), static_cast<int64_t>(limit),
                        static_cast<int64_t>(delta));
    if (n < 0 || n > shape_ops::kMaxElements) return;  // reported below
    out = Tensor(dt, {n});
    T* o = out.mutable_data<T>();
    for (int64_t i = 0; i < n; ++i) o[i] = FromCompute<T>(static_cast<C>(start + static_cast<C>(i) * delta));
  });
  if (!ok) return ctx.UnsupportedError("unsupported type " + std::string(DataTypeName(dt)));
  if (!out.defined()) return ctx.Error("too many elements");
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

// ---- EyeLike ----

namespace {
DataType EyeLikeType(const NodeContext& ctx, DataType in) {
  return ctx.has_attr("dtype") ? static_cast<DataType>(ctx.attr_int("dtype", 0)) : in;
}
}  // namespace

Status InferEyeLike(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  if (in.rank_known() && in.rank() != 2) return ctx.Error("input must be 2-D");
  if (ctx.has_attr("dtype") && !IsValidDataType(static_cast<int32_t>(ctx.attr_int("dtype", 0))))
    return ctx.Error("dtype " + std::to_string(ctx.attr_int("dtype", 0)) + " is not a valid type");
  ctx.set_output(0, EyeLikeType(ctx, ctx.input_dtype(0)), in.rank_known() ? in : Shape(std::vector<Dim>(2)));
  return Status::Ok();
}

Status RunEyeLike(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  if (x.rank() != 2) return ctx.Error("input must be 2-D");
  if (ctx.has_attr("dtype") && !IsValidDataType(static_cast<int32_t>(ctx.attr_int("dtype", 0))))
    return ctx.Error("dtype " + std::to_string(ctx.attr_int("dtype", 0)) + " is not a valid type");
  const DataType dt = EyeLikeType(ctx, x.dtype());
  Tensor out(dt, x.dims());
  const int64_t k = ctx.attr_int("k", 0), rows = x.dim(0), cols = x.dim(1);
  Tensor one = shape_ops::NumericScalar(dt, 1.0);
  if (!one.defined()) return ctx.UnsupportedError("unsupported type " + std::string(DataTypeName(dt)));
  ElementCopier copy(one, out);
  for (int64_t i = 0; i < rows; ++i)
    if (k < cols && k > -rows && i + k >= 0 && i + k < cols) copy.Copy(0, i * cols + i + k);
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

// ---- OneHot ----

namespace {
Status OneHotAxis(const NodeContext& ctx, int64_t in_rank, int64_t* axis) {
  int64_t a = ctx.attr_int("axis", -1);
  if (a < 0) a += in_rank + 1;
  if (a < 0 || a > in_rank)
    return ctx.Error("axis " + std::to_string(ctx.attr_int("axis", -1)) + " is out of range");
  *axis = a;
  return Status::Ok();
}
}  // namespace

Status InferOneHot(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const DataType dt = ctx.input_dtype(2);
  if (!in.rank_known()) {
    ctx.set_output(0, dt, Shape::Unranked());
    return Status::Ok();
  }
  int64_t axis;
  KILN_RETURN_IF_ERROR(OneHotAxis(ctx, in.rank(), &axis));
  Dim depth = Dim::Unknown();
  if (const Tensor* d = ctx.input_data(1)) {
    if (d->numel() != 1 || !std::isfinite(d->ScalarAt(0)))
      return ctx.Error("depth must hold one finite value");
    depth = Dim(static_cast<int64_t>(d->ScalarAt(0)));
  } else if (auto s = SymInts(ctx, 1)) {
    if (s->size() == 1) depth = (*s)[0];
  }
  std::vector<Dim> out = in.dims();
  out.insert(out.begin() + axis, depth);
  ctx.set_output(0, dt, Shape(out));
  return Status::Ok();
}

Status RunOneHot(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 3));
  const Tensor& ind = ctx.input(0);
  const Tensor& dep = ctx.input(1);
  const Tensor& vals = ctx.input(2);
  if (dep.numel() != 1 || !std::isfinite(dep.ScalarAt(0)))
    return ctx.Error("depth must hold one finite value");
  if (vals.numel() != 2) return ctx.Error("values must hold [off, on]");
  const int64_t depth = static_cast<int64_t>(dep.ScalarAt(0));
  if (depth < 0 || depth > shape_ops::kMaxElements)
    return ctx.Error("depth " + std::to_string(depth) + " is not valid");
  int64_t axis;
  KILN_RETURN_IF_ERROR(OneHotAxis(ctx, ind.rank(), &axis));
  std::vector<int64_t> out_dims = ind.dims();
  out_dims.insert(out_dims.begin() + axis, depth);
  KILN_RETURN_IF_ERROR(shape_ops::CheckDims(ctx, out_dims));
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= ind.dim(static_cast<int>(i));
  for (int64_t i = axis; i < ind.rank(); ++i) inner *= ind.dim(static_cast<int>(i));
  Tensor out(vals.dtype(), out_dims);
  shape_ops::FillWith(vals, 0, out);
  ElementCopier copy(vals, out);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < inner; ++j) {
      int64_t v = static_cast<int64_t>(ind.ScalarAt(o * inner + j));
      if (v < 0) v += depth;
      if (v < 0 || v >= depth) continue;
      copy.Copy(1, (o * depth + v) * inner + j);
    }
  }
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

// ---- Trilu ----

Status InferTrilu(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  if (in.rank_known() && in.rank() < 2) return ctx.Error("input must have rank >= 2");
  ctx.set_output_type(0, ctx.input_type(0));
  return Status::Ok();
}

Status RunTrilu(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  if (x.rank() < 2) return ctx.Error("input must have rank >= 2");
  int64_t k = 0;
  if (ctx.has_input(1)) KILN_RETURN_IF_ERROR(shape_ops::ReadScalarInt(ctx, 1, &k));
  const bool upper = ctx.attr_int("upper", 1) != 0;
  const int64_t rows = x.dim(x.rank() - 2), cols = x.dim(x.rank() - 1);
  const int64_t mats = rows * cols == 0 ? 0 : x.numel() / (rows * cols);
  Tensor out(x.dtype(), x.dims());
  ElementCopier copy(x, out);
  for (int64_t m = 0; m < mats; ++m)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j)
        if (upper ? j - i >= k : j - i <= k) copy.Copy((m * rows + i) * cols + j, (m * rows + i) * cols + j);
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
