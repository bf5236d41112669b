// kiln.Im2Col's attributes and geometry (im2col_plan.h); the CUDA kernel shares them with the CPU reference.
#include "ops/im2col_plan.h"

#include <string>

#include "ops/shape_util.h"

namespace kiln {
namespace im2col {
namespace {

bool IsConvertibleFloat(DataType dt) {
  return dt == DataType::kFloat || dt == DataType::kFloat16 || dt == DataType::kBFloat16;
}

}  // namespace

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

}  // namespace im2col

Expected<Im2ColGeometry> Im2ColGeometryOf(const NodeContext& ctx, const std::vector<int64_t>& x) {
  KILN_ASSIGN_OR_RETURN(im2col::Im2ColAttrs a, im2col::ReadAttrs(ctx));
  if (x.size() != 4) return ctx.Error("X must be 4-D, got " + DimsToString(x));
  const im2col::Axes ax = im2col::AxesOf(a.channels_last);
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
    return ctx.Error("columns " + std::to_string(g.columns) + " is fewer than the " +
                     std::to_string(g.taps()) + " taps of the window");
  KILN_RETURN_IF_ERROR(shape_ops::CheckDims(ctx, {g.n, g.oh, g.ow, g.columns}));
  return g;
}

}  // namespace kiln
