// ConvTranspose (Gemm + col2im per image and group) and Col2Im: shape
// inference and CPU reference.
#include "ops/nn_common.h"
#include "ops/nn_gemm.h"
#include "ops/op_table.h"

namespace kiln {
namespace nn {

namespace {

template <class T>
Status RunConvTransposeTyped(RunContext& ctx) {
  using C = compute_t<T>;
  const Tensor& x = ctx.input(0);
  const Tensor& wt = ctx.input(1);
  if (x.rank() < 3) return ctx.Error("input must have rank >= 3 ([N, C, spatial...])");
  if (wt.rank() != x.rank()) return ctx.Error("weight rank must equal input rank");
  if (wt.dtype() != x.dtype()) return ctx.Error("weight type must match input type");
  TransposeAttrs a;
  std::vector<int64_t> kernel(wt.dims().begin() + 2, wt.dims().end());
  KILN_RETURN_IF_ERROR(ReadTransposeAttrs(ctx, kernel.size(), kernel, &a));
  const int64_t n = x.dim(0), cin = x.dim(1), group = a.group;
  if (wt.dim(0) != cin || cin % group != 0)
    return ctx.Error("weight shape " + wt.shape().ToString() + " does not match " + std::to_string(cin) +
                     " input channels with group " + std::to_string(group));
  const int64_t cg = cin / group, mg = wt.dim(1), m = mg * group;
  const std::vector<int64_t> in = SpatialDims(x);
  std::vector<int64_t> out;
  KILN_RETURN_IF_ERROR(ResolveTranspose(ctx, in, &a, &out));
  const Tensor* bias = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  if (bias && (bias->dtype() != x.dtype() || bias->numel() != m))
    return ctx.Error("bias must be a 1-D tensor of " + std::to_string(m) + " values of the input type");

  std::vector<int64_t> ydims = {n, m};
  ydims.insert(ydims.end(), out.begin(), out.end());
  Tensor y(x.dtype(), ydims);
  const int64_t in_size = Product(in), out_size = Product(out), ksize = Product(a.w.kernel);
  std::vector<C> yc(static_cast<size_t>(y.numel()), C(0));
  if (bias) {
    ComputeView<T> bv(*bias);
    for (int64_t i = 0; i < n * m; ++i)
      std::fill(yc.begin() + i * out_size, yc.begin() + (i + 1) * out_size, bv[i % m]);
  }
  ComputeView<T> xv(x), wv(wt);
  std::vector<C> col(static_cast<size_t>(mg * ksize * in_size));
  for (int64_t img = 0; img < n && in_size > 0 && out_size > 0; ++img) {
    for (int64_t grp = 0; grp < group; ++grp) {
      const C* wg = wv.data() + grp * cg * mg * ksize;  // [cg, mg * ksize]
      const C* xg = xv.data() + (img * cin + grp * cg) * in_size;
      Gemm<C>(mg * ksize, in_size, cg, MatrixRef<C>::Transposed(wg, mg * ksize),
              MatrixRef<C>::RowMajor(xg, in_size), col.data(), in_size);
      Col2Im(col.data(), mg, out, in, a.w, yc.data() + (img * m + grp * mg) * out_size);
    }
  }
  StoreCompute<T>(yc.data(), y.numel(), &y);
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

// Col2Im's block grid: window positions per spatial dim for the image.
Status Col2ImGrid(const NodeContext& ctx, const std::vector<int64_t>& image, Window* w,
                  std::vector<int64_t>* grid) {
  grid->assign(image.size(), 0);
  for (size_t i = 0; i < image.size(); ++i) {
    const int64_t num = image[i] + w->pads[i] + w->pads[image.size() + i] - w->span(i);
    if (image[i] <= 0 || num < 0)
      return ctx.Error("block does not fit the image along dim " + std::to_string(i));
    (*grid)[i] = num / w->strides[i] + 1;
  }
  return Status::Ok();
}

Status ReadCol2ImShapes(const NodeContext& ctx, const Tensor& image_shape, const Tensor& block_shape,
                        std::vector<int64_t>* image, Window* w) {
  if (image_shape.rank() != 1 || block_shape.rank() != 1 || image_shape.numel() != block_shape.numel() ||
      image_shape.numel() == 0)
    return ctx.Error("image_shape and block_shape must be 1-D with the same, non-zero length");
  *image = image_shape.ToInt64s();
  KILN_RETURN_IF_ERROR(ReadWindow(ctx, image->size(), block_shape.ToInt64s(), false, w));
  return Status::Ok();
}

template <class T, class A>
Status RunCol2ImTyped(RunContext& ctx, const std::vector<int64_t>& image, const Window& w,
                      const std::vector<int64_t>& grid) {
  const Tensor& x = ctx.input(0);
  const int64_t ksize = Product(w.kernel), blocks = Product(grid);
  if (x.rank() != 3 || x.dim(1) % ksize != 0 || x.dim(2) != blocks)
    return ctx.Error("input must be [N, C * " + std::to_string(ksize) + ", " + std::to_string(blocks) + "]");
  const int64_t n = x.dim(0), c = x.dim(1) / ksize;
  std::vector<int64_t> ydims = {n, c};
  ydims.insert(ydims.end(), image.begin(), image.end());
  Tensor y(x.dtype(), ydims);
  const T* xp = x.data<T>();
  std::vector<A> col(static_cast<size_t>(x.numel()));
  for (size_t i = 0; i < col.size(); ++i) col[i] = static_cast<A>(ToCompute(xp[i]));
  std::vector<A> acc(static_cast<size_t>(y.numel()), A(0));
  const int64_t image_size = Product(image);
  for (int64_t b = 0; b < n; ++b)
    Col2Im(col.data() + b * c * ksize * blocks, c, image, grid, w, acc.data() + b * c * image_size);
  T* yp = y.mutable_data<T>();
  for (size_t i = 0; i < acc.size(); ++i) yp[i] = FromCompute<T>(static_cast<compute_t<T>>(acc[i]));
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace
}  // namespace nn

namespace ops {

Status InferConvTranspose(InferContext& ctx) {
  const Shape& xs = ctx.input_shape(0);
  const Shape& ws = ctx.input_shape(1);
  if (!xs.rank_known()) {
    ctx.set_output(0, ctx.input_dtype(0), Shape::Unranked());
    return Status::Ok();
  }
  const int rank = xs.rank();
  if (rank < 3) return ctx.Error("input must have rank >= 3 ([N, C, spatial...])");
  if (ws.rank_known() && ws.rank() != rank) return ctx.Error("weight rank must equal input rank");
  std::vector<int64_t> kernel;
  for (int d = 2; ws.rank_known() && d < rank; ++d) {
    if (!ws[d].known()) {
      kernel.clear();
      break;
    }
    kernel.push_back(ws[d].value());
  }
  std::vector<Dim> out(static_cast<size_t>(rank));
  out[0] = xs[0];
  const int64_t group = ctx.attr_int("group", 1);
  out[1] = ws.rank_known() ? ws[1] * Dim(group) : Dim::Unknown();
  if (ws.rank_known() && xs[1].known() && ws[0].known() && xs[1].value() != ws[0].value())
    return ctx.Error("weight shape " + ws.ToString() + " does not match input channels");
  if (!kernel.empty() || ctx.has_attr("kernel_shape")) {
    nn::TransposeAttrs a;
    KILN_RETURN_IF_ERROR(nn::ReadTransposeAttrs(ctx, static_cast<size_t>(rank - 2), kernel, &a));
    const bool same = a.w.auto_pad == "SAME_UPPER" || a.w.auto_pad == "SAME_LOWER";
    for (size_t i = 0; i + 2 < out.size(); ++i) {
      const Dim& in = xs[i + 2];
      const int64_t s = a.w.strides[i];
      if (!a.output_shape.empty()) {
        out[i + 2] = Dim(a.output_shape[i]);
      } else if (same) {
        out[i + 2] = in * Dim(s);
      } else {
        const int64_t pads = a.w.auto_pad == "VALID" ? 0 : a.w.pads[i] + a.w.pads[a.w.rank() + i];
        out[i + 2] = nn::AddConst(in * Dim(s), a.output_padding[i] + a.w.span(i) - pads - s);
      }
    }
  }
  ctx.set_output(0, ctx.input_dtype(0), Shape(std::move(out)));
  return Status::Ok();
}

Status RunConvTranspose(RunContext& ctx) {
  Status st;
  if (!DispatchFloat(ctx.input(0).dtype(), [&](auto t) { st = nn::RunConvTransposeTyped<decltype(t)>(ctx); }))
    return ctx.UnsupportedError("input type must be float, double, float16 or bfloat16");
  return st;
}

Status InferCol2Im(InferContext& ctx) {
  const Shape& xs = ctx.input_shape(0);
  const Tensor* image = ctx.input_data(1);
  const Tensor* block = ctx.input_data(2);
  const Shape& is = ctx.input_shape(1);
  if (xs.rank_known() && xs.rank() != 3) return ctx.Error("input must have rank 3");
  if (!is.rank_known() || is.rank() != 1 || !is[0].known()) {
    ctx.set_output(0, ctx.input_dtype(0), Shape::Unranked());
    return Status::Ok();
  }
  size_t spatial = 0;
  KILN_RETURN_IF_ERROR(RankFromLength(ctx, is[0], &spatial));
  std::vector<Dim> out(2 + spatial);
  if (xs.rank_known()) out[0] = xs[0];
  if (image) {
    for (int64_t i = 0; i < image->numel(); ++i) out[static_cast<size_t>(2 + i)] = Dim(image->IntAt(i));
  }
  if (block && xs.rank_known() && xs[1].known()) {
    int64_t k = 1;
    for (int64_t i = 0; i < block->numel(); ++i) k *= block->IntAt(i);
    if (k <= 0 || xs[1].value() % k != 0) return ctx.Error("input dim 1 must be divisible by the block size");
    out[1] = Dim(xs[1].value() / k);
  }
  ctx.set_output(0, ctx.input_dtype(0), Shape(std::move(out)));
  return Status::Ok();
}

Status RunCol2Im(RunContext& ctx) {
  std::vector<int64_t> image, grid;
  nn::Window w;
  KILN_RETURN_IF_ERROR(nn::ReadCol2ImShapes(ctx, ctx.input(1), ctx.input(2), &image, &w));
  KILN_RETURN_IF_ERROR(nn::Col2ImGrid(ctx, image, &w, &grid));
  Status st;
  const DataType dt = ctx.input(0).dtype();
  bool ok = DispatchFloat(dt, [&](auto t) {
    using T = decltype(t);
    st = nn::RunCol2ImTyped<T, compute_t<T>>(ctx, image, w, grid);
  });
  ok = ok || DispatchInteger(
                 dt, [&](auto t) { st = nn::RunCol2ImTyped<decltype(t), int64_t>(ctx, image, w, grid); });
  if (!ok) return ctx.UnsupportedError("unsupported input type");
  return st;
}

}  // namespace ops
}  // namespace kiln
