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
#include "ops/unary_cast.h"

namespace kiln {
namespace ops {

Status InferIm2Col(InferContext& ctx) {
  const Shape& xs = ctx.input_shape(0);
  KILN_ASSIGN_OR_RETURN(im2col::Im2ColAttrs a, im2col::ReadAttrs(ctx));
  KILN_ASSIGN_OR_RETURN(DataType type, im2col::OutputType(ctx, a, ctx.input_dtype(0)));
  if (!xs.rank_known()) {
    ctx.set_output(0, type, Shape::Unranked());
    return Status::Ok();
  }
  if (xs.rank() != 4) return ctx.Error("X must be 4-D, got " + xs.ToString());
  const im2col::Axes ax = im2col::AxesOf(a.channels_last);
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
  KILN_ASSIGN_OR_RETURN(im2col::Im2ColAttrs a, im2col::ReadAttrs(ctx));
  KILN_ASSIGN_OR_RETURN(DataType type, im2col::OutputType(ctx, a, x.dtype()));
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
