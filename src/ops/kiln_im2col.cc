// kiln.Im2Col (see im2col_plan.h), made by src/passes/stem_im2col.cc for
// convolutions of few input channels. Attributes: Conv's window (kernel_shape
// required; strides, pads, dilations, auto_pad read and resolved as Conv's,
// ops/nn_common.h), columns (default R·S·C), channels_last (default 1: X is
// [N,H,W,C]; 0: X is [N,C,H,W]), to (optional: A's float type when X is
// another float type, each element converted as Cast converts it; set by
// src/passes/cast_into_im2col.cc). Otherwise a pure gather: any fixed-size
// element type.
#include <cstring>
#include <string>
#include <vector>

#include "ops/im2col_plan.h"
#include "ops/nn_common.h"
#include "ops/op_table.h"
#include "ops/op_util.h"
#include "ops/shape_util.h"
#include "ops/unary_cast.h"

namespace kiln {
namespace {

struct Im2ColAttrs {
  nn::Window window;
  int64_t columns = 0;  // 0: R·S·C
  bool channels_last = true;
  DataType to = DataType::kUndefined;  // kUndefined: X's type
};

bool IsConvertibleFloat(DataType dt) {
  return dt == DataType::kFloat || dt == DataType::kFloat16 || dt == DataType::kBFloat16;
}

Expected<Im2ColAttrs> ReadAttrs(const NodeContext& ctx) {
  Im2ColAttrs a;
  KILN_RETURN_IF_ERROR(nn::ReadWindow(ctx, 2, {}, /*pool=*/false, &a.window));
  a.columns = ctx.attr_int("columns", 0);
  a.channels_last = ctx.attr_int("channels_last", 1) != 0;
  if (a.columns < 0) return ctx.Error("columns must not be negative");
  if (ctx.has_attr("to")) {
    a.to = static_cast<DataType>(ctx.attr_int("to", 0));
    if (!IsConvertibleFloat(a.to))
      return ctx.Error("attribute 'to' must be float32, float16 or bfloat16, got " +
                       std::to_string(ctx.attr_int("to", 0)));
  }
  return a;
}

// A's element type for X of type `x`.
Expected<DataType> OutputType(const NodeContext& ctx, const Im2ColAttrs& a, DataType x) {
  if (a.to == DataType::kUndefined || a.to == x || x == DataType::kUndefined)
    return a.to == DataType::kUndefined ? x : a.to;
  if (!IsConvertibleFloat(x))
    return ctx.Error("converts only float32/float16/bfloat16 X ('to'), got " + std::string(DataTypeName(x)));
  return a.to;
}

// X's (channels, height, width) positions in its dims.
struct Axes {
  size_t c, h, w;
};
Axes AxesOf(bool channels_last) { return channels_last ? Axes{3, 1, 2} : Axes{1, 2, 3}; }

}  // namespace

Expected<Im2ColGeometry> Im2ColGeometryOf(const NodeContext& ctx, const std::vector<int64_t>& x) {
  KILN_ASSIGN_OR_RETURN(Im2ColAttrs a, ReadAttrs(ctx));
  if (x.size() != 4) return ctx.Error("X must be 4-D, got " + DimsToString(x));
  const Axes ax = AxesOf(a.channels_last);
  Im2ColGeometry g;
  g.channels_last = a.channels_last;
  g.n = x[0];
  g.c = x[ax.c];
  g.h = x[ax.h];
  g.w = x[ax.w];
  if (g.c < 1 || g.c > (1 << 16)) return ctx.Error("X must have 1 to 65536 channels, got " + DimsToString(x));
  std::vector<int64_t> out;
  nn::Window& win = a.window;
  KILN_RETURN_IF_ERROR(nn::ResolveWindow(ctx, {g.h, g.w}, &win, &out));
  g.kh = win.kernel[0];
  g.kw = win.kernel[1];
  g.sh = win.strides[0];
  g.sw = win.strides[1];
  g.dh = win.dilations[0];
  g.dw = win.dilations[1];
  g.pt = win.pads[0];
  g.pl = win.pads[1];
  g.oh = out[0];
  g.ow = out[1];
  // R·S·C within int64 (kernel extents are at most 2^31 each, channels 2^16).
  if (g.kh > (int64_t{1} << 24) / g.c || g.kw > (int64_t{1} << 24) / (g.kh * g.c))
    return ctx.Error("the window has more than 2^24 taps");
  g.columns = a.columns ? a.columns : g.taps();
  if (g.columns < g.taps())
    return ctx.Error("columns " + std::to_string(g.columns) + " is fewer than the " + std::to_string(g.taps()) +
                     " taps of the window");
  KILN_RETURN_IF_ERROR(shape_ops::CheckDims(ctx, {g.n, g.oh, g.ow, g.columns}));
  return g;
}

namespace ops {

Status InferIm2Col(InferContext& ctx) {
  const Shape& xs = ctx.input_shape(0);
  KILN_ASSIGN_OR_RETURN(Im2ColAttrs a, ReadAttrs(ctx));
  KILN_ASSIGN_OR_RETURN(DataType type, OutputType(ctx, a, ctx.input_dtype(0)));
  if (!xs.rank_known()) {
    ctx.set_output(0, type, Shape::Unranked());
    return Status::Ok();
  }
  if (xs.rank() != 4) return ctx.Error("X must be 4-D, got " + xs.ToString());
  const Axes ax = AxesOf(a.channels_last);
  const Dim c = xs[ax.c];
  std::vector<Dim> out = {xs[0], nn::WindowOutDim(a.window, 0, xs[ax.h]), nn::WindowOutDim(a.window, 1, xs[ax.w]),
                          a.columns > 0 ? Dim(a.columns) : Dim()};
  if (c.known() && xs[ax.h].known() && xs[ax.w].known()) {
    // All extents known but the batch, maybe: the geometry's checks at a unit batch, and the default columns.
    std::vector<int64_t> unit(4, 1);
    unit[ax.c] = c.value();
    unit[ax.h] = xs[ax.h].value();
    unit[ax.w] = xs[ax.w].value();
    KILN_ASSIGN_OR_RETURN(Im2ColGeometry g, Im2ColGeometryOf(ctx, unit));
    out[3] = Dim(g.columns);
  }
  ctx.set_output(0, type, Shape(std::move(out)));
  return Status::Ok();
}

Status RunIm2Col(RunContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.dtype() == DataType::kString) return ctx.Error("X must not be a string tensor");
  KILN_ASSIGN_OR_RETURN(Im2ColAttrs a, ReadAttrs(ctx));
  KILN_ASSIGN_OR_RETURN(DataType type, OutputType(ctx, a, x.dtype()));
  KILN_ASSIGN_OR_RETURN(Im2ColGeometry g, Im2ColGeometryOf(ctx, x.dims()));
  Tensor y(x.dtype(), {g.n, g.oh, g.ow, g.columns});  // zeros
  const size_t bytes = ElementSize(x.dtype());
  const auto* src = static_cast<const uint8_t*>(x.raw());
  auto* dst = static_cast<uint8_t*>(y.mutable_raw());
  for (int64_t i = 0; i < g.elements(); ++i) {
    const int64_t from = Im2ColSource(g, i);
    if (from >= 0) std::memcpy(dst + i * bytes, src + from * bytes, bytes);
  }
  if (type != x.dtype()) {  // gathered, then converted: Cast's rounding, and zeros stay zeros
    KILN_ASSIGN_OR_RETURN(y, CastTensor(y, type));
  }
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
