// Pad: modes constant/reflect/edge/wrap; pads as attribute (< 11) or input
// (>= 11), constant_value input, axes input (>= 18). Negative pads crop.
#include <algorithm>

#include "ops/op_table.h"
#include "ops/op_util.h"
#include "ops/shape_util.h"

namespace kiln {
namespace ops {
namespace {

using shape_ops::ConstInts;
using shape_ops::IntsToString;
using shape_ops::ReadInts;

enum class PadMode { kConstant, kReflect, kEdge, kWrap };

Status ReadMode(const NodeContext& ctx, PadMode* m) {
  const std::string s = ctx.attr_string("mode", "constant");
  if (s == "constant")
    *m = PadMode::kConstant;
  else if (s == "reflect")
    *m = PadMode::kReflect;
  else if (s == "edge")
    *m = PadMode::kEdge;
  else if (s == "wrap")
    *m = PadMode::kWrap;
  else
    return ctx.Error("unknown mode '" + s + "'");
  return Status::Ok();
}

// Per-dim (begin, end) pads from the flat pads list [b0, b1, ..., e0, e1, ...]
// over `axes` (all dims when empty).
Status ExpandPads(const NodeContext& ctx, const std::vector<int64_t>& pads, std::vector<int64_t> axes,
                  bool has_axes, int64_t rank, std::vector<int64_t>* begin, std::vector<int64_t>* end) {
  if (!has_axes) {
    axes.resize(static_cast<size_t>(rank));
    for (int64_t i = 0; i < rank; ++i) axes[static_cast<size_t>(i)] = i;
  }
  KILN_RETURN_IF_ERROR(shape_ops::NormalizeAxes(ctx, &axes, rank));
  if (pads.size() != 2 * axes.size())
    return ctx.Error("pads " + IntsToString(pads) + " must have 2 entries per padded axis (" +
                     std::to_string(axes.size()) + ")");
  for (int64_t p : pads)
    if (p < -shape_ops::kMaxElements || p > shape_ops::kMaxElements)
      return ctx.Error("pads " + IntsToString(pads) + " are too large");
  begin->assign(static_cast<size_t>(rank), 0);
  end->assign(static_cast<size_t>(rank), 0);
  for (size_t i = 0; i < axes.size(); ++i) {
    (*begin)[static_cast<size_t>(axes[i])] = pads[i];
    (*end)[static_cast<size_t>(axes[i])] = pads[axes.size() + i];
  }
  return Status::Ok();
}

// Input index for output index `o` of a dim of size n padded by `b` in front;
// -1 when it falls in the constant border.
int64_t SourceIndex(PadMode mode, int64_t o, int64_t b, int64_t n) {
  int64_t i = o - b;
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case PadMode::kConstant:
      return -1;
    case PadMode::kEdge:
      return std::clamp<int64_t>(i, 0, n - 1);
    case PadMode::kWrap:
      return ((i % n) + n) % n;
    case PadMode::kReflect: {
      if (n == 1) return 0;
      const int64_t p = 2 * (n - 1);
      int64_t m = ((i % p) + p) % p;
      return m >= n ? p - m : m;
    }
  }
  return -1;
}

// Pads known only symbolically (computed from shapes): out = dim + begin + end
// on each padded axis; unknown where a pad is unknown.
Status InferSymbolicPads(InferContext& ctx, const std::vector<int64_t>* axes_in, bool has_axes) {
  const Shape& in = ctx.input_shape(0);
  const DataType dt = ctx.input_dtype(0);
  auto pads = shape_ops::SymInts(ctx, 1);
  if (!pads || (has_axes && !axes_in)) {
    ctx.set_output(0, dt, Shape(std::vector<Dim>(in.dims().size())));
    return Status::Ok();
  }
  std::vector<int64_t> axes = axes_in ? *axes_in : std::vector<int64_t>{};
  if (!has_axes)
    for (int64_t i = 0; i < in.rank(); ++i) axes.push_back(i);
  KILN_RETURN_IF_ERROR(shape_ops::NormalizeAxes(ctx, &axes, in.rank()));
  if (pads->size() != 2 * axes.size()) return ctx.Error("pads must have 2 entries per padded axis");
  std::vector<Dim> out = in.dims();
  for (size_t i = 0; i < axes.size(); ++i) {
    Dim& d = out[static_cast<size_t>(axes[i])];
    d = d + (*pads)[i] + (*pads)[axes.size() + i];
  }
  ctx.set_output(0, dt, Shape(out));
  return Status::Ok();
}

}  // namespace

Status InferPad(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const DataType dt = ctx.input_dtype(0);
  PadMode mode;
  KILN_RETURN_IF_ERROR(ReadMode(ctx, &mode));
  if (!in.rank_known()) {
    ctx.set_output(0, dt, Shape::Unranked());
    return Status::Ok();
  }
  std::vector<int64_t> pads, axes;
  bool has_axes = false;
  if (ctx.opset() < 11) {
    pads = ctx.attr_ints(ctx.opset() < 2 ? "paddings" : "pads");
  } else {
    auto p = ConstInts(ctx, 1);
    has_axes = ctx.has_input(3);
    auto a = has_axes ? ConstInts(ctx, 3) : std::optional<std::vector<int64_t>>(std::vector<int64_t>{});
    if (!p || !a) return InferSymbolicPads(ctx, a ? &*a : nullptr, has_axes);
    pads = *p;
    axes = *a;
  }
  std::vector<int64_t> b, e;
  KILN_RETURN_IF_ERROR(ExpandPads(ctx, pads, axes, has_axes, in.rank(), &b, &e));
  std::vector<Dim> out = in.dims();
  for (size_t i = 0; i < out.size(); ++i) {
    const int64_t total = b[i] + e[i];
    if (out[i].known()) {
      if (out[i].value() + total < 0)
        return ctx.Error("pads " + IntsToString(pads) + " crop more than the dim");
      out[i] = Dim(out[i].value() + total);
    } else if (total > 0) {
      out[i] = out[i] + Dim(total);
    } else if (total < 0) {
      out[i] = Dim::Unknown();
    }
  }
  ctx.set_output(0, dt, Shape(out));
  return Status::Ok();
}

Status RunPad(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(shape_ops::RequireInputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  PadMode mode;
  KILN_RETURN_IF_ERROR(ReadMode(ctx, &mode));
  std::vector<int64_t> pads, axes;
  bool has_axes = false;
  Tensor value;  // scalar with the constant (undefined: zero)
  if (ctx.opset() < 11) {
    pads = ctx.attr_ints(ctx.opset() < 2 ? "paddings" : "pads");
    value = shape_ops::NumericScalar(x.dtype(), ctx.attr_float("value", 0.0f));
  } else {
    KILN_RETURN_IF_ERROR(ReadInts(ctx, 1, &pads));
    if (ctx.has_input(2) && ctx.input(2).numel() > 0) {
      value = ctx.input(2);
      if (value.dtype() != x.dtype()) return ctx.Error("constant_value must have the data's type");
    }
    has_axes = ctx.has_input(3);
    if (has_axes) KILN_RETURN_IF_ERROR(ReadInts(ctx, 3, &axes));
  }
  const int64_t rank = x.rank();
  std::vector<int64_t> b, e;
  KILN_RETURN_IF_ERROR(ExpandPads(ctx, pads, axes, has_axes, rank, &b, &e));
  std::vector<int64_t> out_dims(static_cast<size_t>(rank));
  std::vector<std::vector<int64_t>> src(static_cast<size_t>(rank));
  for (size_t d = 0; d < out_dims.size(); ++d) {
    const int64_t n = x.dims()[d];
    out_dims[d] = n + b[d] + e[d];
    if (out_dims[d] < 0) return ctx.Error("pads " + IntsToString(pads) + " crop more than the dim");
    if (mode != PadMode::kConstant && n == 0 && out_dims[d] > 0)
      return ctx.Error("cannot pad an empty dim in this mode");
    src[d].resize(static_cast<size_t>(out_dims[d]));
    for (int64_t o = 0; o < out_dims[d]; ++o) src[d][static_cast<size_t>(o)] = SourceIndex(mode, o, b[d], n);
  }
  KILN_RETURN_IF_ERROR(shape_ops::CheckDims(ctx, out_dims));
  Tensor out(x.dtype(), out_dims);
  if (value.defined()) shape_ops::FillWith(value, 0, out);
  ElementCopier copy(x, out);
  const std::vector<int64_t> xs = Strides(x.dims());
  std::vector<int64_t> idx(static_cast<size_t>(rank), 0);
  for (int64_t o = 0; o < out.numel(); ++o) {
    int64_t off = 0;
    bool inside = true;
    for (size_t d = 0; d < idx.size(); ++d) {
      const int64_t s = src[d][static_cast<size_t>(idx[d])];
      if (s < 0) {
        inside = false;
        break;
      }
      off += s * xs[d];
    }
    if (inside) copy.Copy(off, o);
    for (size_t d = idx.size(); d-- > 0;) {
      if (++idx[d] < out_dims[d]) break;
      idx[d] = 0;
    }
  }
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
