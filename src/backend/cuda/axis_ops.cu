// Ops along one axis, seen as outer × n × inner: ArgMax / ArgMin (keepdims,
// select_last_index, NaN ranks first as in numpy and the reference), CumSum
// and CumProd (exclusive, reverse), Hardmax (one-hot of the first maximum; the 2-D view
// before opset 13) and LpNormalization (p = 1, 2; a zero line stays zero).
// One thread per (outer, inner) line: the axis is walked in order, so CumSum
// accumulates in the reference's order and type (float for float16/bfloat16,
// wrapping integers) and LpNormalization's norm in double, as the reference.
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/node_context.h"
#include "ops/op_util.h"
#include "ops/reduce_util.h"

namespace kiln::cuda {
namespace {

using reduce::AxisView;  // [outer, n, inner] around the axis, as the CPU reference sees it

// Calls f(line, offset of the line's first element) for every (outer, inner)
// line, one per thread (grid-stride).
template <class F>
__device__ inline void ForEachLine(const AxisView& v, F&& f) {
  const int64_t lines = v.outer * v.inner;
  for (int64_t l = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; l < lines;
       l += static_cast<int64_t>(gridDim.x) * blockDim.x)
    f(l, (l / v.inner) * v.n * v.inner + l % v.inner);
}

template <class T, bool kMax>
__global__ void ArgKernel(const T* __restrict__ x, int64_t* __restrict__ y, AxisView v, bool last) {
  ForEachLine(v, [&](int64_t l, int64_t base) {
    const T* p = x + base;
    int64_t best = 0;
    auto bv = ToCompute(p[0]);
    for (int64_t k = 1; k < v.n; ++k) {
      auto c = ToCompute(p[k * v.inner]);
      bool better;
      if (IsNan(c) || IsNan(bv)) better = IsNan(c) && (!IsNan(bv) || last);
      else better = kMax ? (c > bv || (last && c == bv)) : (c < bv || (last && c == bv));
      if (better) {
        best = k;
        bv = c;
      }
    }
    y[l] = best;
  });
}

template <class T>
__global__ void CumSumKernel(const T* __restrict__ x, T* __restrict__ y, AxisView v, bool exclusive, bool reverse,
                             bool product) {
  ForEachLine(v, [&](int64_t, int64_t base) {
    using C = decltype(ToCompute(T{}));
    C acc = product ? C(1) : C(0);
    for (int64_t s = 0; s < v.n; ++s) {
      const int64_t at = base + (reverse ? v.n - 1 - s : s) * v.inner;
      C next;
      if constexpr (std::is_integral<C>::value) {
        using U = std::make_unsigned_t<C>;
        const U a = static_cast<U>(acc), b = static_cast<U>(ToCompute(x[at]));
        next = static_cast<C>(product ? static_cast<U>(a * b) : static_cast<U>(a + b));
      } else {
        next = product ? acc * ToCompute(x[at]) : acc + ToCompute(x[at]);
      }
      y[at] = FromCompute<T>(exclusive ? acc : next);
      acc = next;
    }
  });
}

template <class T>
__global__ void HardmaxKernel(const T* __restrict__ x, T* __restrict__ y, AxisView v) {
  ForEachLine(v, [&](int64_t, int64_t base) {
    if (v.n == 0) return;
    int64_t arg = 0;
    auto mx = ToCompute(x[base]);
    for (int64_t k = 1; k < v.n; ++k) {
      const auto c = ToCompute(x[base + k * v.inner]);
      if (c > mx) {
        mx = c;
        arg = k;
      }
    }
    for (int64_t k = 0; k < v.n; ++k) y[base + k * v.inner] = FromCompute<T>(k == arg ? 1.0 : 0.0);
  });
}

template <class T>
__global__ void LpNormKernel(const T* __restrict__ x, T* __restrict__ y, AxisView v, bool l1) {
  ForEachLine(v, [&](int64_t, int64_t base) {
    double norm = 0;
    for (int64_t k = 0; k < v.n; ++k) {
      const double c = static_cast<double>(ToCompute(x[base + k * v.inner]));
      norm += l1 ? fabs(c) : c * c;
    }
    if (!l1) norm = sqrt(norm);
    using C = decltype(ToCompute(T{}));
    for (int64_t k = 0; k < v.n; ++k) {
      const double c = static_cast<double>(ToCompute(x[base + k * v.inner]));
      y[base + k * v.inner] = FromCompute<T>(static_cast<C>(norm != 0 ? c / norm : 0.0));
    }
  });
}

class AxisOp final : public GpuOp {
 public:
  enum class Kind { kArgMax, kArgMin, kCumSum, kHardmax, kLpNorm };
  AxisOp(const Node& n, int64_t opset, Kind kind) : node_(n), opset_(opset), kind_(kind) {}

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>&, GpuResources&) override {
    GpuNodeContext ctx(node_, opset_, &in);
    const int64_t rank = static_cast<int64_t>(in[0].dims.size());
    int64_t axis = 0;
    if (kind_ == Kind::kHardmax) return reduce::SoftmaxView(ctx, in[0].dims, &v_);
    if (kind_ == Kind::kLpNorm) {
      const int64_t p = ctx.attr_int("p", 2);
      if (p != 1 && p != 2) return ctx.Error("p must be 1 or 2");
      l1_ = p == 1;
      KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", -1), rank, &axis));
      v_ = reduce::ViewAround(in[0].dims, axis);
      return Status::Ok();
    }
    if (kind_ == Kind::kCumSum) {
      const Tensor* t = HostInput(node_, in, 1);
      if (!t || t->numel() != 1) return ctx.UnsupportedError("axis must be one value known before the run on the GPU");
      axis = t->IntAt(0);
      exclusive_ = ctx.attr_int("exclusive", 0) != 0;
      reverse_ = ctx.attr_int("reverse", 0) != 0;
    } else {
      axis = ctx.attr_int("axis", 0);
      last_ = ctx.attr_int("select_last_index", 0) != 0;
    }
    KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, axis, rank, &axis));
    v_ = reduce::ViewAround(in[0].dims, axis);
    if (kind_ != Kind::kCumSum && v_.n == 0 && v_.outer * v_.inner > 0)
      return ctx.Error("cannot take the arg of an empty axis");
    return Status::Ok();
  }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    const int64_t lines = v_.outer * v_.inner;
    if (lines == 0 || out[0].numel() == 0) return Status::Ok();
    const unsigned grid = GridFor(lines, 256);
    bool ok = DispatchDevice(in[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (!std::is_same<T, bool>::value) {
      const T* x = static_cast<const T*>(in[0].data);
      switch (kind_) {
        case Kind::kArgMax:
          ArgKernel<T, true><<<grid, 256, 0, stream>>>(x, static_cast<int64_t*>(out[0].data), v_, last_);
          break;
        case Kind::kArgMin:
          ArgKernel<T, false><<<grid, 256, 0, stream>>>(x, static_cast<int64_t*>(out[0].data), v_, last_);
          break;
        case Kind::kCumSum:
          CumSumKernel<T><<<grid, 256, 0, stream>>>(x, static_cast<T*>(out[0].data), v_, exclusive_, reverse_,
                                                    node_.op_type == "CumProd");
          break;
        case Kind::kHardmax:
          HardmaxKernel<T><<<grid, 256, 0, stream>>>(x, static_cast<T*>(out[0].data), v_);
          break;
        case Kind::kLpNorm:
          LpNormKernel<T><<<grid, 256, 0, stream>>>(x, static_cast<T*>(out[0].data), v_, l1_);
          break;
      }
      }  // bool: excluded by the op table's declared types
    });
    return LaunchStatus(ok, node_, in[0].dtype, "axis kernel");
  }

 private:
  const Node& node_;
  int64_t opset_;
  Kind kind_;
  AxisView v_;
  bool last_ = false, exclusive_ = false, reverse_ = false, l1_ = false;
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeAxisOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  AxisOp::Kind kind = n.op_type == "ArgMax"    ? AxisOp::Kind::kArgMax
                      : n.op_type == "ArgMin"  ? AxisOp::Kind::kArgMin
                      : n.op_type == "Hardmax" ? AxisOp::Kind::kHardmax
                      : n.op_type == "LpNormalization" ? AxisOp::Kind::kLpNorm
                                                       : AxisOp::Kind::kCumSum;
  return std::unique_ptr<GpuOp>(std::make_unique<AxisOp>(n, info.opset, kind));
}

}  // namespace kiln::cuda
