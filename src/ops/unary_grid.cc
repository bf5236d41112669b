// GridSample (opset 16/20/22; N-d: 4-D and 5-D inputs) and AffineGrid (2-D
// and 3-D). GridSample follows the ONNX reference (itself PyTorch's
// GridSampler): coordinates are denormalized in float32, nearest rounds half
// to even, padding zeros/border/reflection, linear and cubic (Keys, a=-0.75)
// interpolation as separable products over the spatial dims.
#include <cmath>
#include <vector>

#include "ops/grid_sample_plan.h"
#include "ops/op_table.h"
#include "ops/unary_cast.h"
#include "ops/unary_util.h"

namespace kiln {
namespace ops {
namespace {

using Pad = GridPad;

struct Sampler {
  const std::vector<double>* plane;  // one (n, c) slice of X
  std::vector<int64_t> dims;         // spatial dims
  std::vector<int64_t> strides;
  bool align = false;
  Pad pad;

  // Value at integer index `idx` (per dim) with the padding rule.
  double At(const std::vector<int64_t>& idx) const {
    int64_t off = 0;
    for (size_t d = 0; d < dims.size(); ++d) {
      const int64_t i = GridTapIndex(idx[d], dims[d], align, pad);
      if (i < 0) return 0.0;
      off += i * strides[d];
    }
    return (*plane)[static_cast<size_t>(off)];
  }
};

}  // namespace

Status RunGridSample(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(RequireTensorInputs(ctx, {0, 1}));
  const Tensor& x = ctx.input(0);
  const Tensor& grid = ctx.input(1);
  const int r = x.rank() - 2;  // spatial rank
  if (r < 1 || grid.rank() != r + 2 || grid.dim(r + 1) != r || grid.dim(0) != x.dim(0))
    return ctx.Error("expects X [N,C,D1..Dr] and grid [N,H1..Hr,r]");
  std::string mode = ctx.attr_string("mode", ctx.opset() >= 20 ? "linear" : "bilinear");
  if (mode == "bilinear") mode = "linear";
  if (mode == "bicubic") mode = "cubic";
  if (mode != "linear" && mode != "nearest" && mode != "cubic")
    return ctx.Error("unknown mode '" + mode + "'");
  const std::string pad_s = ctx.attr_string("padding_mode", "zeros");
  Pad pad = pad_s == "border" ? Pad::kBorder : pad_s == "reflection" ? Pad::kReflection : Pad::kZeros;
  if (pad_s != "zeros" && pad_s != "border" && pad_s != "reflection")
    return ctx.Error("unknown padding_mode '" + pad_s + "'");
  const bool align = ctx.attr_int("align_corners", 0) != 0;

  const int64_t N = x.dim(0), C = x.dim(1);
  std::vector<int64_t> in_dims(x.dims().begin() + 2, x.dims().end());
  std::vector<int64_t> out_sp(grid.dims().begin() + 1, grid.dims().end() - 1);
  int64_t in_plane = 1, out_plane = 1;
  for (int64_t d : in_dims) in_plane *= d;
  for (int64_t d : out_sp) out_plane *= d;
  std::vector<int64_t> out_dims = {N, C};
  out_dims.insert(out_dims.end(), out_sp.begin(), out_sp.end());
  if (in_plane == 0 && N * C * out_plane > 0) return ctx.Error("cannot sample from an empty input");

  Sampler s;
  s.dims = in_dims;
  s.strides = Strides(in_dims);
  s.pad = pad;
  s.align = align;
  std::vector<double> out(static_cast<size_t>(N * C * out_plane));
  std::vector<double> plane(static_cast<size_t>(in_plane));
  std::vector<double> coord(static_cast<size_t>(r));
  std::vector<int64_t> idx(static_cast<size_t>(r));
  const int taps = mode == "nearest" ? 1 : mode == "linear" ? 2 : 4;
  std::vector<std::vector<double>> w(static_cast<size_t>(r), std::vector<double>(4));
  std::vector<int64_t> base(static_cast<size_t>(r));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t i = 0; i < in_plane; ++i)
        plane[static_cast<size_t>(i)] = FloatElement(x, (n * C + c) * in_plane + i);
      s.plane = &plane;
      for (int64_t p = 0; p < out_plane; ++p) {
        // grid's last dim lists coordinates innermost first (x, y, z).
        for (int d = 0; d < r; ++d) {
          const float g = static_cast<float>(FloatElement(grid, (n * out_plane + p) * r + (r - 1 - d)));
          coord[static_cast<size_t>(d)] =
              GridSourceCoord(g, in_dims[static_cast<size_t>(d)], align, mode == "nearest", pad);
        }
        double acc = 0;
        if (mode == "nearest") {
          for (int d = 0; d < r; ++d)
            idx[static_cast<size_t>(d)] = static_cast<int64_t>(coord[static_cast<size_t>(d)]);
          // Out-of-range indices: zeros gives 0; border clamps; reflection reflects.
          acc = s.At(idx);
        } else {
          for (int d = 0; d < r; ++d) {
            double f = std::floor(coord[static_cast<size_t>(d)]);
            double t = coord[static_cast<size_t>(d)] - f;
            auto& wd = w[static_cast<size_t>(d)];
            if (taps == 2) {
              wd[0] = 1 - t;
              wd[1] = t;
              base[static_cast<size_t>(d)] = static_cast<int64_t>(f);
            } else {
              GridCubicCoeffs(t, wd.data());
              base[static_cast<size_t>(d)] = static_cast<int64_t>(f) - 1;
            }
          }
          int64_t corners = 1;
          for (int d = 0; d < r; ++d) corners *= taps;
          for (int64_t k = 0; k < corners; ++k) {
            int64_t rem = k;
            double wt = 1;
            for (int d = r - 1; d >= 0; --d) {
              int64_t j = rem % taps;
              rem /= taps;
              idx[static_cast<size_t>(d)] = base[static_cast<size_t>(d)] + j;
              wt *= w[static_cast<size_t>(d)][static_cast<size_t>(j)];
            }
            if (wt != 0) acc += wt * s.At(idx);
          }
        }
        out[static_cast<size_t>((n * C + c) * out_plane + p)] = acc;
      }
    }
  Tensor d = Tensor::FromVector<double>(DataType::kDouble, out_dims, out);
  KILN_ASSIGN_OR_RETURN(Tensor y, CastTensor(d, x.dtype()));
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

Status InferGridSample(InferContext& ctx) {
  const Shape& xs = ctx.input_shape(0);
  const Shape& gs = ctx.input_shape(1);
  const DataType dt = ctx.input_dtype(0);
  if (!gs.rank_known()) {
    ctx.set_output(0, dt,
                   xs.rank_known() ? Shape(std::vector<Dim>(static_cast<size_t>(xs.rank()))) : Shape());
    return Status::Ok();
  }
  if (gs.rank() < 3) return ctx.Error("grid must have rank >= 3");
  if (xs.rank_known() && xs.rank() != gs.rank()) return ctx.Error("X and grid must have the same rank");
  std::vector<Dim> out = {xs.rank_known() ? xs[0] : gs[0], xs.rank_known() ? xs[1] : Dim::Unknown()};
  if (out[0].unknown()) out[0] = gs[0];
  for (int d = 1; d + 1 < gs.rank(); ++d) out.push_back(gs[static_cast<size_t>(d)]);
  ctx.set_output(0, dt, Shape(std::move(out)));
  return Status::Ok();
}

Status RunAffineGrid(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(RequireTensorInputs(ctx, {0, 1}));
  const Tensor& theta = ctx.input(0);
  std::vector<int64_t> size = ctx.input(1).ToInt64s();
  const bool align = ctx.attr_int("align_corners", 0) != 0;
  if (size.size() != 4 && size.size() != 5) return ctx.Error("size must have 4 (2-D) or 5 (3-D) entries");
  const int r = static_cast<int>(size.size()) - 2;
  const int64_t N = size[0];
  if (theta.rank() != 3 || theta.dim(0) != N || theta.dim(1) != r || theta.dim(2) != r + 1)
    return ctx.Error("theta must be [N, " + std::to_string(r) + ", " + std::to_string(r + 1) + "]");
  std::vector<int64_t> sp(size.begin() + 2, size.end());  // (D,) H, W
  for (int64_t v : size)
    if (v < 0) return ctx.Error("size entries must be non-negative");
  // Base coordinates per spatial dim, as np.arange(start, stop, step).
  std::vector<std::vector<double>> axis_vals(static_cast<size_t>(r));
  for (int d = 0; d < r; ++d) {
    int64_t s = sp[static_cast<size_t>(d)];
    auto& v = axis_vals[static_cast<size_t>(d)];
    for (int64_t i = 0; i < s; ++i) {
      if (align)
        v.push_back(s == 1 ? -1.0 : -1.0 + static_cast<double>(i) * (2.0 / static_cast<double>(s - 1)));
      else
        v.push_back(-1.0 + 1.0 / static_cast<double>(s) +
                    static_cast<double>(i) * (2.0 / static_cast<double>(s)));
    }
  }
  int64_t points = 1;
  for (int64_t s : sp) points *= s;
  std::vector<int64_t> out_dims = {N};
  out_dims.insert(out_dims.end(), sp.begin(), sp.end());
  out_dims.push_back(r);
  std::vector<double> out(static_cast<size_t>(N * points * r));
  std::vector<double> h(static_cast<size_t>(r + 1));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t p = 0; p < points; ++p) {
      // Homogeneous point (x, y[, z], 1): x runs along the last spatial dim.
      int64_t rem = p;
      for (int d = r - 1; d >= 0; --d) {
        int64_t i = rem % sp[static_cast<size_t>(d)];
        rem /= sp[static_cast<size_t>(d)];
        h[static_cast<size_t>(r - 1 - d)] = axis_vals[static_cast<size_t>(d)][static_cast<size_t>(i)];
      }
      h[static_cast<size_t>(r)] = 1.0;
      for (int row = 0; row < r; ++row) {
        double acc = 0;
        for (int col = 0; col <= r; ++col)
          acc += FloatElement(theta, (n * r + row) * (r + 1) + col) * h[static_cast<size_t>(col)];
        out[static_cast<size_t>((n * points + p) * r + row)] = acc;
      }
    }
  Tensor d = Tensor::FromVector<double>(DataType::kDouble, out_dims, out);
  KILN_ASSIGN_OR_RETURN(Tensor y, CastTensor(d, theta.dtype()));
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

Status InferAffineGrid(InferContext& ctx) {
  const DataType dt = ctx.input_dtype(0);
  const Shape& ts = ctx.input_shape(0);
  std::vector<Dim> size;
  if (const Tensor* t = ctx.input_data(1)) {
    for (int64_t v : t->ToInt64s()) size.emplace_back(v);
  } else if (const auto* sym = ctx.input_sym(1)) {
    size = *sym;
  } else if (ctx.input_shape(1).rank() == 1 && ctx.input_shape(1)[0].known()) {
    size_t n = 0;
    KILN_RETURN_IF_ERROR(RankFromLength(ctx, ctx.input_shape(1)[0], &n));
    size.assign(n, Dim::Unknown());
  } else if (ts.rank() == 3 && ts[1].known()) {
    size.assign(static_cast<size_t>(ts[1].value() + 2), Dim::Unknown());
  } else {
    ctx.set_output(0, dt, Shape::Unranked());
    return Status::Ok();
  }
  if (size.size() != 4 && size.size() != 5) return ctx.Error("size must have 4 or 5 entries");
  std::vector<Dim> out = {size[0]};
  if (out[0].unknown() && ts.rank() == 3) out[0] = ts[0];
  out.insert(out.end(), size.begin() + 2, size.end());
  out.emplace_back(static_cast<int64_t>(size.size() - 2));
  ctx.set_output(0, dt, Shape(std::move(out)));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
