// Conv's and ConvTranspose's geometry (see nn_common.h); the CUDA ops share it with the CPU reference.
#include <algorithm>

#include "ops/nn_common.h"

namespace kiln {
namespace nn {

Status PrepareConv(const NodeContext& ctx, const Tensor& x, const Tensor& w, ConvGeom* g) {
  if (x.rank() < 3) return ctx.Error("input must have rank >= 3 ([N, C, spatial...])");
  if (w.rank() != x.rank()) return ctx.Error("weight rank must equal input rank");
  g->n = x.dim(0);
  g->cin = x.dim(1);
  g->m = w.dim(0);
  g->group = ctx.attr_int("group", 1);
  if (g->group <= 0) return ctx.Error("group must be positive");
  if (g->cin != w.dim(1) * g->group)
    return ctx.Error("weight shape " + w.shape().ToString() + " does not match " + std::to_string(g->cin) +
                     " input channels with group " + std::to_string(g->group));
  if (g->m % g->group != 0) return ctx.Error("output channels must be divisible by group");
  std::vector<int64_t> kernel(w.dims().begin() + 2, w.dims().end());
  KILN_RETURN_IF_ERROR(ReadWindow(ctx, kernel.size(), kernel, false, &g->w));
  g->in = SpatialDims(x);
  return ResolveWindow(ctx, g->in, &g->w, &g->out);
}

Status ReadTransposeAttrs(const NodeContext& ctx, size_t nsp, const std::vector<int64_t>& kernel,
                          TransposeAttrs* a) {
  KILN_RETURN_IF_ERROR(ReadWindow(ctx, nsp, kernel, false, &a->w));
  a->group = ctx.attr_int("group", 1);
  if (a->group <= 0) return ctx.Error("group must be positive");
  a->output_padding = ctx.attr_ints("output_padding");
  if (a->output_padding.empty()) a->output_padding.assign(nsp, 0);
  if (a->output_padding.size() != nsp) return ctx.Error("output_padding must have one value per spatial dim");
  for (size_t i = 0; i < nsp; ++i) {
    if (a->output_padding[i] < 0) return ctx.Error("output_padding must be >= 0");
  }
  a->output_shape = ctx.attr_ints("output_shape");
  if (a->output_shape.size() == nsp + 2)
    a->output_shape.erase(a->output_shape.begin(), a->output_shape.begin() + 2);
  if (!a->output_shape.empty() && a->output_shape.size() != nsp)
    return ctx.Error("output_shape must have one value per spatial dim");
  return Status::Ok();
}

Status ResolveTranspose(const NodeContext& ctx, const std::vector<int64_t>& in, TransposeAttrs* a,
                        std::vector<int64_t>* out) {
  Window& w = a->w;
  const size_t nd = w.rank();
  out->assign(nd, 0);
  const bool same = w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER";
  for (size_t i = 0; i < nd; ++i) {
    const int64_t natural = w.strides[i] * (in[i] - 1) + a->output_padding[i] + w.span(i);
    if (!a->output_shape.empty() || same) {
      (*out)[i] = !a->output_shape.empty() ? a->output_shape[i] : in[i] * w.strides[i];
      const int64_t total = std::max<int64_t>(0, natural - (*out)[i]);
      w.pads[i] = w.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      w.pads[nd + i] = total - w.pads[i];
    } else {
      if (w.auto_pad == "VALID") w.pads[i] = w.pads[nd + i] = 0;
      (*out)[i] = natural - w.pads[i] - w.pads[nd + i];
    }
    if ((*out)[i] < 0)
      return ctx.Error("pads are larger than the output of spatial dim " + std::to_string(i));
  }
  return Status::Ok();
}

}  // namespace nn
}  // namespace kiln
