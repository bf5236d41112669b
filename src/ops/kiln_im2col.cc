// kiln.Im2Col (see im2col_plan.h), made by src/passes/stem_im2col.cc for
// convolutions of few input channels. Attributes: kernel_shape [R, S]
// (required), strides, pads [top, left, bottom, right], dilations (as Conv's),
// columns (default R·S·C), channels_last (default 1: X is [N,H,W,C]; 0: X is
// [N,C,H,W]). A pure gather: any element type.
#include <cstring>
#include <string>
#include <vector>

#include "ops/im2col_plan.h"
#include "ops/op_table.h"
#include "ops/op_util.h"
#include "ops/shape_util.h"

namespace kiln {
namespace ops {
namespace {

struct Im2ColAttrs {
  std::vector<int64_t> kernel, strides, pads, dilations;
  int64_t columns = 0;  // 0: R·S·C
  bool channels_last = true;
};

Expected<Im2ColAttrs> ReadAttrs(const NodeContext& ctx) {
  Im2ColAttrs a;
  a.kernel = ctx.attr_ints("kernel_shape");
  a.strides = ctx.attr_ints("strides");
  a.pads = ctx.attr_ints("pads");
  a.dilations = ctx.attr_ints("dilations");
  if (a.strides.empty()) a.strides = {1, 1};
  if (a.pads.empty()) a.pads = {0, 0, 0, 0};
  if (a.dilations.empty()) a.dilations = {1, 1};
  a.columns = ctx.attr_int("columns", 0);
  a.channels_last = ctx.attr_int("channels_last", 1) != 0;
  if (a.kernel.size() != 2 || a.strides.size() != 2 || a.pads.size() != 4 || a.dilations.size() != 2)
    return ctx.Error("kernel_shape, strides and dilations need 2 values and pads 4");
  for (int i = 0; i < 2; ++i)
    if (a.kernel[i] < 1 || a.strides[i] < 1 || a.dilations[i] < 1 || a.kernel[i] > (1 << 16) ||
        a.strides[i] > (1 << 16) || a.dilations[i] > (1 << 16))
      return ctx.Error("kernel_shape, strides and dilations must be in [1, 65536]");
  for (int64_t p : a.pads)
    if (p < 0 || p > (1 << 16)) return ctx.Error("pads must be in [0, 65536]");
  if (a.columns < 0) return ctx.Error("columns must not be negative");
  return a;
}

// One output extent: (in + pads − dilation·(kernel − 1) − 1) / stride + 1, or an error when the window does not fit.
Expected<int64_t> OutExtent(const NodeContext& ctx, int64_t in, int64_t pad_sum, int64_t k, int64_t s, int64_t d) {
  const int64_t span = in + pad_sum - d * (k - 1) - 1;
  if (span < 0) return ctx.Error("the kernel window is larger than the padded input");
  return span / s + 1;
}

}  // namespace

}  // namespace ops

Expected<Im2ColGeometry> Im2ColGeometryOf(const NodeContext& ctx, const std::vector<int64_t>& x) {
  using namespace ops;  // NOLINT: the attribute reader above
  KILN_ASSIGN_OR_RETURN(Im2ColAttrs a, ReadAttrs(ctx));
  if (x.size() != 4) return ctx.Error("X must be 4-D, got " + DimsToString(x));
  Im2ColGeometry g;
  g.channels_last = a.channels_last;
  g.n = x[0];
  g.c = a.channels_last ? x[3] : x[1];
  g.h = a.channels_last ? x[1] : x[2];
  g.w = a.channels_last ? x[2] : x[3];
  g.kh = a.kernel[0];
  g.kw = a.kernel[1];
  g.sh = a.strides[0];
  g.sw = a.strides[1];
  g.dh = a.dilations[0];
  g.dw = a.dilations[1];
  g.pt = a.pads[0];
  g.pl = a.pads[1];
  if (g.c < 1 || g.c > (1 << 16)) return ctx.Error("X must have 1 to 65536 channels, got " + DimsToString(x));
  g.columns = a.columns ? a.columns : g.taps();
  if (g.columns < g.taps())
    return ctx.Error("columns " + std::to_string(g.columns) + " is fewer than the " + std::to_string(g.taps()) +
                     " taps of the window");
  KILN_ASSIGN_OR_RETURN(g.oh, OutExtent(ctx, g.h, a.pads[0] + a.pads[2], g.kh, g.sh, g.dh));
  KILN_ASSIGN_OR_RETURN(g.ow, OutExtent(ctx, g.w, a.pads[1] + a.pads[3], g.kw, g.sw, g.dw));
  KILN_RETURN_IF_ERROR(shape_ops::CheckDims(ctx, {g.n, g.oh, g.ow, g.columns}));
  return g;
}

namespace ops {

Status InferIm2Col(InferContext& ctx) {
  const Shape& xs = ctx.input_shape(0);
  if (!xs.rank_known()) {
    ctx.set_output(0, ctx.input_dtype(0), Shape::Unranked());
    return Status::Ok();
  }
  if (xs.rank() != 4) return ctx.Error("X must be 4-D, got " + xs.ToString());
  KILN_ASSIGN_OR_RETURN(Im2ColAttrs a, ReadAttrs(ctx));
  const bool last = a.channels_last;
  const Dim c = xs[last ? 3 : 1], h = xs[last ? 1 : 2], w = xs[last ? 2 : 3];
  std::vector<Dim> out = {xs[0], Dim(), Dim(), Dim()};
  if (c.known() && h.known() && w.known()) {
    // The batch may be symbolic; the geometry is checked at a unit batch.
    KILN_ASSIGN_OR_RETURN(Im2ColGeometry g, Im2ColGeometryOf(ctx, last ? std::vector<int64_t>{1, h.value(), w.value(), c.value()}
                                                                     : std::vector<int64_t>{1, c.value(), h.value(), w.value()}));
    out = {xs[0], Dim(g.oh), Dim(g.ow), Dim(g.columns)};
  } else if (a.columns > 0) {
    out[3] = Dim(a.columns);
  }
  ctx.set_output(0, ctx.input_dtype(0), Shape(std::move(out)));
  return Status::Ok();
}

Status RunIm2Col(RunContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.dtype() == DataType::kString) return ctx.Error("X must not be a string tensor");
  KILN_ASSIGN_OR_RETURN(Im2ColGeometry g, Im2ColGeometryOf(ctx, x.dims()));
  Tensor y(x.dtype(), {g.n, g.oh, g.ow, g.columns});  // zeros
  const size_t bytes = ElementSize(x.dtype());
  const auto* src = static_cast<const uint8_t*>(x.raw());
  auto* dst = static_cast<uint8_t*>(y.mutable_raw());
  for (int64_t i = 0; i < g.elements(); ++i) {
    const int64_t from = Im2ColSource(g, i);
    if (from >= 0) std::memcpy(dst + i * bytes, src + from * bytes, bytes);
  }
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
