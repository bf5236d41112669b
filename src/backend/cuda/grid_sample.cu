// GridSample on the GPU (opset 16+; 3-D, 4-D and 5-D inputs, i.e. 1 to 3
// spatial dims): nearest / linear / cubic, padding zeros / border /
// reflection, align_corners. Semantics: src/ops/unary_grid.cc, the CPU
// reference; the coordinate, padding and cubic-weight arithmetic is
// src/ops/grid_sample_plan.h, shared with it, so both read the same taps.
// One thread per output element; taps accumulate in double, as the reference.
#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/node_context.h"
#include "ops/grid_sample_plan.h"

namespace kiln::cuda {
namespace {

constexpr int kMaxSpatial = 3;
enum class GridMode { kNearest, kLinear, kCubic };

struct GridArgs {
  int r = 0;  // spatial rank
  int64_t c = 0, in_plane = 0, out_plane = 0, total = 0;
  int64_t in_dims[kMaxSpatial] = {}, in_strides[kMaxSpatial] = {};
  GridMode mode = GridMode::kLinear;
  GridPad pad = GridPad::kZeros;
  bool align = false;
};


template <class T, class G>
__global__ void GridSampleKernel(const T* __restrict__ x, const G* __restrict__ grid, T* __restrict__ y, GridArgs a) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < a.total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t p = e % a.out_plane, nc = e / a.out_plane, n = nc / a.c;
    const T* plane = x + nc * a.in_plane;
    double coord[kMaxSpatial];
    // grid's last dim lists coordinates innermost first (x, y, z).
    for (int d = 0; d < a.r; ++d) {
      const float g = static_cast<float>(LoadF64(grid[(n * a.out_plane + p) * a.r + (a.r - 1 - d)]));
      coord[d] = GridSourceCoord(g, a.in_dims[d], a.align, a.mode == GridMode::kNearest, a.pad);
    }
    double acc = 0;
    if (a.mode == GridMode::kNearest) {
      int64_t off = 0;
      bool zero = false;
      for (int d = 0; d < a.r; ++d) {
        const int64_t i = GridTapIndex(static_cast<int64_t>(coord[d]), a.in_dims[d], a.align, a.pad);
        zero |= i < 0;
        off += i * a.in_strides[d];
      }
      acc = zero ? 0.0 : LoadF64(plane[off]);
    } else {
      const int taps = a.mode == GridMode::kLinear ? 2 : 4;
      double w[kMaxSpatial][4];
      int64_t base[kMaxSpatial];
      for (int d = 0; d < a.r; ++d) {
        const double f = floor(coord[d]), t = coord[d] - f;
        if (taps == 2) {
          w[d][0] = 1 - t;
          w[d][1] = t;
          base[d] = static_cast<int64_t>(f);
        } else {
          GridCubicCoeffs(t, w[d]);
          base[d] = static_cast<int64_t>(f) - 1;
        }
      }
      int corners = 1;
      for (int d = 0; d < a.r; ++d) corners *= taps;
      for (int k = 0; k < corners; ++k) {
        int rem = k;
        double wt = 1;
        int64_t off = 0;
        bool zero = false;
        for (int d = a.r - 1; d >= 0; --d) {
          const int j = rem % taps;
          rem /= taps;
          const int64_t i = GridTapIndex(base[d] + j, a.in_dims[d], a.align, a.pad);
          zero |= i < 0;
          off += i * a.in_strides[d];
          wt *= w[d][j];
        }
        if (wt != 0 && !zero) acc += wt * LoadF64(plane[off]);
      }
    }
    y[e] = StoreF64<T>(acc);
  }
}

// Calls f(T{}) for the float device types and double.
template <class F>
bool DispatchFloatD(DataType dt, F&& f) {
  if (dt == DataType::kDouble) {
    f(double{});
    return true;
  }
  return DispatchFloatDevice(dt, f);
}

class GridSampleOp final : public GpuOp {
 public:
  GridSampleOp(const Node& n, int64_t opset, GridMode mode, GridPad pad, bool align) : node_(n), opset_(opset) {
    args_.mode = mode;
    args_.pad = pad;
    args_.align = align;
  }

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources&) override {
    GpuNodeContext ctx(node_, opset_, &in);
    const DevTensor &x = in[0], &g = in[1];
    const int r = static_cast<int>(x.dims.size()) - 2;
    if (r < 1 || g.dims.size() != x.dims.size() || g.dims.back() != r || g.dims[0] != x.dims[0])
      return ctx.Error("expects X [N,C,D1..Dr] and grid [N,H1..Hr,r]");
    if (r > kMaxSpatial) return ctx.UnsupportedError("more than 3 spatial dims on the GPU");
    GridArgs& a = args_;
    a.r = r;
    a.c = x.dims[1];
    a.in_plane = 1;
    a.out_plane = 1;
    for (int d = r - 1; d >= 0; --d) {
      a.in_dims[d] = x.dims[static_cast<size_t>(d) + 2];
      a.in_strides[d] = a.in_plane;
      a.in_plane *= a.in_dims[d];
    }
    for (int d = 0; d < r; ++d) a.out_plane *= g.dims[static_cast<size_t>(d) + 1];
    a.total = x.dims[0] * a.c * a.out_plane;
    if (a.in_plane == 0 && a.total > 0) return ctx.Error("cannot sample from an empty input");
    return Status::Ok();
  }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    if (args_.total == 0) return Status::Ok();
    bool ok = false;
    DispatchFloatD(in[0].dtype, [&](auto xt) {
      using T = decltype(xt);
      ok = DispatchFloatD(in[1].dtype, [&](auto gt) {
        using G = decltype(gt);
        GridSampleKernel<T, G><<<GridFor(args_.total, 256), 256, 0, stream>>>(
            static_cast<const T*>(in[0].data), static_cast<const G*>(in[1].data), static_cast<T*>(out[0].data),
            args_);
      });
    });
    return LaunchStatus(ok, node_, in[0].dtype, "grid sample kernel");
  }

 private:
  const Node& node_;
  int64_t opset_;
  GridArgs args_;
};

}  // namespace

// Parses mode / padding_mode at build time (refusing unknown ones) and
// refuses more than 3 spatial dims when the rank is known.
Expected<std::unique_ptr<GpuOp>> MakeGridSampleOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  const Attribute* ma = n.attr("mode");
  std::string mode = ma ? ma->s : (info.opset >= 20 ? "linear" : "bilinear");
  if (mode == "bilinear") mode = "linear";
  if (mode == "bicubic") mode = "cubic";
  GridMode m;
  if (mode == "nearest") m = GridMode::kNearest;
  else if (mode == "linear") m = GridMode::kLinear;
  else if (mode == "cubic") m = GridMode::kCubic;
  else return Unsupported(n.Label() + ": unknown mode '" + mode + "'");
  const Attribute* pa = n.attr("padding_mode");
  const std::string pad = pa ? pa->s : "zeros";
  GridPad p;
  if (pad == "zeros") p = GridPad::kZeros;
  else if (pad == "border") p = GridPad::kBorder;
  else if (pad == "reflection") p = GridPad::kReflection;
  else return Unsupported(n.Label() + ": unknown padding_mode '" + pad + "'");
  if (n.input(0) && n.input(0)->shape().rank_known() && n.input(0)->shape().rank() - 2 > kMaxSpatial)
    return Unsupported(n.Label() + ": input " + n.input(0)->shape().ToString() +
                       " has more than 3 spatial dims (the GPU kernel takes 1 to 3)");
  const Attribute* al = n.attr("align_corners");
  return std::unique_ptr<GpuOp>(std::make_unique<GridSampleOp>(n, info.opset, m, p, al && al->i != 0));
}

}  // namespace kiln::cuda
