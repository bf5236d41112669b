// Smaller nn ops: LRN, LpNormalization, MeanVarianceNormalization, Dropout
// (with numpy-compatible masks in training mode) and CenterCropPad.
#include <cmath>

#include "ops/nn_common.h"
#include "ops/op_table.h"

namespace kiln {
namespace nn {
namespace {

// MT19937 seeded like numpy's legacy np.random.seed(int), with numpy's
// random_sample(): so a Dropout mask for a given seed equals the one the ONNX
// reference and the backend tests draw.
class NumpyRandom {
 public:
  explicit NumpyRandom(uint32_t seed) {
    for (int i = 0; i < kN; ++i) {
      key_[i] = seed;
      seed = 1812433253u * (seed ^ (seed >> 30)) + static_cast<uint32_t>(i + 1);
    }
  }
  // Uniform in [0, 1) with 53 random bits.
  double Uniform() {
    const uint32_t a = Next() >> 5, b = Next() >> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
  }

 private:
  static constexpr int kN = 624;
  static constexpr int kM = 397;
  uint32_t Next() {
    if (pos_ >= kN) Twist();
    uint32_t y = key_[pos_++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    return y ^ (y >> 18);
  }
  void Twist() {
    for (int i = 0; i < kN; ++i) {
      const uint32_t y = (key_[i] & 0x80000000u) | (key_[(i + 1) % kN] & 0x7fffffffu);
      key_[i] = key_[(i + kM) % kN] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    pos_ = 0;
  }
  uint32_t key_[kN];
  int pos_ = kN;
};

Status CheckFloatType(const NodeContext& ctx, DataType dt) {
  if (!DispatchFloat(dt, [](auto) {}))
    return ctx.UnsupportedError("input must be float, double, float16 or bfloat16");
  return Status::Ok();
}

}  // namespace
}  // namespace nn

namespace ops {

// ---- LRN ----

Status InferLRN(InferContext& ctx) { return InferSameAsInput(ctx); }

Status RunLRN(RunContext& ctx) {
  const Tensor& x = ctx.input(0);
  KILN_RETURN_IF_ERROR(nn::CheckFloatType(ctx, x.dtype()));
  if (x.rank() < 3) return ctx.Error("input must have rank >= 3 ([N, C, spatial...])");
  const int64_t size = ctx.attr_int("size", 0);
  if (size <= 0) return ctx.Error("size must be positive");
  const double alpha = ctx.attr_float("alpha", 1e-4f), beta = ctx.attr_float("beta", 0.75f),
               bias = ctx.attr_float("bias", 1.0f);
  const int64_t n = x.dim(0), c = x.dim(1), inner = nn::Product(nn::SpatialDims(x));
  const int64_t before = (size - 1) / 2, after = size - 1 - before;
  Tensor y(x.dtype(), x.dims());
  DispatchFloat(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* yp = y.mutable_data<T>();
    for (int64_t b = 0; b < n; ++b)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t i = 0; i < inner; ++i) {
          double sq = 0;
          for (int64_t k = std::max<int64_t>(0, ch - before); k <= std::min(c - 1, ch + after); ++k) {
            const double v = static_cast<double>(ToCompute(xp[(b * c + k) * inner + i]));
            sq += v * v;
          }
          const int64_t idx = (b * c + ch) * inner + i;
          const double v = static_cast<double>(ToCompute(xp[idx]));
          yp[idx] = FromCompute<T>(
              static_cast<compute_t<T>>(v / std::pow(bias + alpha / static_cast<double>(size) * sq, beta)));
        }
  });
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

// ---- LpNormalization ----

Status InferLpNormalization(InferContext& ctx) { return InferSameAsInput(ctx); }

Status RunLpNormalization(RunContext& ctx) {
  const Tensor& x = ctx.input(0);
  KILN_RETURN_IF_ERROR(nn::CheckFloatType(ctx, x.dtype()));
  int64_t axis;
  KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", -1), x.rank(), &axis));
  const int64_t p = ctx.attr_int("p", 2);
  if (p != 1 && p != 2) return ctx.Error("p must be 1 or 2");
  const int64_t len = x.dim(static_cast<int>(axis));
  int64_t inner = 1;
  for (int d = static_cast<int>(axis) + 1; d < x.rank(); ++d) inner *= x.dim(d);
  const int64_t outer = (len * inner != 0) ? x.numel() / (len * inner) : 0;
  Tensor y(x.dtype(), x.dims());
  DispatchFloat(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* yp = y.mutable_data<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t base = o * len * inner + i;
        double norm = 0;
        for (int64_t k = 0; k < len; ++k) {
          const double v = static_cast<double>(ToCompute(xp[base + k * inner]));
          norm += p == 1 ? std::fabs(v) : v * v;
        }
        if (p == 2) norm = std::sqrt(norm);
        for (int64_t k = 0; k < len; ++k) {
          const double v = static_cast<double>(ToCompute(xp[base + k * inner]));
          // A zero vector stays zero (as ONNX Runtime), not NaN.
          yp[base + k * inner] = FromCompute<T>(static_cast<compute_t<T>>(norm != 0 ? v / norm : 0.0));
        }
      }
  });
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

// ---- MeanVarianceNormalization ----

Status InferMeanVarianceNormalization(InferContext& ctx) { return InferSameAsInput(ctx); }

Status RunMeanVarianceNormalization(RunContext& ctx) {
  const Tensor& x = ctx.input(0);
  KILN_RETURN_IF_ERROR(nn::CheckFloatType(ctx, x.dtype()));
  std::vector<int64_t> axes = ctx.has_attr("axes") ? ctx.attr_ints("axes") : std::vector<int64_t>{0, 2, 3};
  std::vector<int64_t> rdims = x.dims();
  for (int64_t a : axes) {
    int64_t ax;
    KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, a, x.rank(), &ax));
    rdims[static_cast<size_t>(ax)] = 1;
  }
  const int64_t groups = nn::Product(rdims);
  const double count = groups ? static_cast<double>(x.numel()) / static_cast<double>(groups) : 0.0;
  const std::vector<int64_t> xstr = Strides(x.dims()), rstr = BroadcastStrides(rdims, x.dims());
  std::vector<double> xv(static_cast<size_t>(x.numel()));
  for (size_t i = 0; i < xv.size(); ++i) xv[i] = x.ScalarAt(static_cast<int64_t>(i));
  std::vector<double> mean(static_cast<size_t>(groups), 0.0), sq(static_cast<size_t>(groups), 0.0);
  ForEachBroadcast(x.dims(), {xstr, rstr}, [&](const std::vector<int64_t>& off) {
    const double v = xv[static_cast<size_t>(off[0])];
    mean[static_cast<size_t>(off[1])] += v;
    sq[static_cast<size_t>(off[1])] += v * v;
  });
  for (size_t g = 0; g < mean.size(); ++g) {
    mean[g] /= count;
    sq[g] /= count;
  }
  Tensor y(x.dtype(), x.dims());
  DispatchFloat(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* yp = y.mutable_data<T>();
    ForEachBroadcast(x.dims(), {xstr, rstr}, [&](const std::vector<int64_t>& off) {
      const size_t g = static_cast<size_t>(off[1]);
      // As the ONNX function: (X - E[X]) / (sqrt(E[X^2] - E[X]^2) + 1e-9).
      const double sd = std::sqrt(std::max(0.0, sq[g] - mean[g] * mean[g]));
      yp[off[0]] = FromCompute<T>(
          static_cast<compute_t<T>>((xv[static_cast<size_t>(off[0])] - mean[g]) / (sd + 1e-9)));
    });
  });
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

// ---- Dropout ----

Status InferDropout(InferContext& ctx) {
  ctx.set_output(0, ctx.input_dtype(0), ctx.input_shape(0));
  if (ctx.num_outputs() > 1 && ctx.has_output(1))
    ctx.set_output(1, ctx.opset() >= 7 ? DataType::kBool : ctx.input_dtype(0), ctx.input_shape(0));
  return Status::Ok();
}

Status RunDropout(RunContext& ctx) {
  const Tensor& x = ctx.input(0);
  double ratio = ctx.attr_float("ratio", 0.5f);
  bool training = false;
  if (ctx.opset() >= 12) {
    if (ctx.has_input(1) && ctx.input(1).numel() > 0) ratio = ctx.input(1).ScalarAt(0);
    if (ctx.has_input(2) && ctx.input(2).numel() > 0) training = ctx.input(2).ScalarAt(0) != 0;
  } else if (ctx.opset() < 7) {
    training = ctx.attr_int("is_test", 0) == 0;
  }
  if (ratio < 0 || ratio >= 1) {
    if (training) return ctx.Error("ratio must be in [0, 1)");
  }
  const bool want_mask = ctx.num_outputs() > 1 && ctx.wants_output(1);
  const DataType mask_type = ctx.opset() >= 7 ? DataType::kBool : x.dtype();
  if (!training || ratio == 0) {
    ctx.set_output(0, x);
    if (want_mask) {
      Tensor mask(mask_type, x.dims());
      if (mask_type == DataType::kBool) {
        bool* m = mask.mutable_data<bool>();
        for (int64_t i = 0; i < mask.numel(); ++i) m[i] = true;
      } else {
        DispatchFloat(mask_type, [&](auto tag) {
          using T = decltype(tag);
          T* m = mask.mutable_data<T>();
          for (int64_t i = 0; i < mask.numel(); ++i) m[i] = FromCompute<T>(1);
        });
      }
      ctx.set_output(1, std::move(mask));
    }
    return Status::Ok();
  }
  KILN_RETURN_IF_ERROR(nn::CheckFloatType(ctx, x.dtype()));
  // Training: keep an element when its uniform draw is >= ratio and scale it
  // by 1 / (1 - ratio). Without a seed the draws still start from seed 0, so
  // the oracle stays deterministic.
  nn::NumpyRandom rng(static_cast<uint32_t>(ctx.attr_int("seed", 0)));
  const float ratio_f = static_cast<float>(ratio);
  const float scale = 1.0f / (1.0f - ratio_f);
  Tensor y(x.dtype(), x.dims());
  Tensor mask(mask_type, x.dims());
  DispatchFloat(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* yp = y.mutable_data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const bool keep = rng.Uniform() >= static_cast<double>(ratio_f);
      yp[i] = keep ? FromCompute<T>(static_cast<compute_t<T>>(ToCompute(xp[i]) * scale)) : FromCompute<T>(0);
      if (mask_type == DataType::kBool) {
        mask.mutable_data<bool>()[i] = keep;
      } else {
        mask.mutable_data<T>()[i] = FromCompute<T>(keep ? 1 : 0);
      }
    }
  });
  ctx.set_output(0, std::move(y));
  if (want_mask) ctx.set_output(1, std::move(mask));
  return Status::Ok();
}

// ---- CenterCropPad ----

namespace {

Status CropPadAxes(const NodeContext& ctx, int rank, size_t nshape, std::vector<int64_t>* axes) {
  if (ctx.has_attr("axes")) {
    *axes = ctx.attr_ints("axes");
    for (int64_t& a : *axes) KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, a, rank, &a));
  } else {
    axes->resize(static_cast<size_t>(rank));
    for (int i = 0; i < rank; ++i) (*axes)[static_cast<size_t>(i)] = i;
  }
  if (axes->size() != nshape) return ctx.Error("shape must have one value per axis");
  return Status::Ok();
}

}  // namespace

Status InferCenterCropPad(InferContext& ctx) {
  const Shape& xs = ctx.input_shape(0);
  if (!xs.rank_known()) {
    ctx.set_output(0, ctx.input_dtype(0), Shape::Unranked());
    return Status::Ok();
  }
  std::vector<Dim> out = xs.dims();
  std::vector<Dim> target;
  if (const Tensor* t = ctx.input_data(1)) {
    for (int64_t v : t->ToInt64s()) target.emplace_back(v);
  } else if (const auto* sym = ctx.input_sym(1)) {
    target = *sym;
  } else {
    const Shape& ss = ctx.input_shape(1);
    if (!ss.rank_known() || ss.rank() != 1 || !ss[0].known()) {
      std::vector<int64_t> axes = ctx.attr_ints("axes");
      if (!ctx.has_attr("axes")) {
        out.assign(out.size(), Dim::Unknown());
      } else {
        for (int64_t a : axes) {
          int64_t ax;
          KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, a, xs.rank(), &ax));
          out[static_cast<size_t>(ax)] = Dim::Unknown();
        }
      }
      ctx.set_output(0, ctx.input_dtype(0), Shape(std::move(out)));
      return Status::Ok();
    }
    // One value per axis (the axes attribute, else every axis): checked before
    // sizing anything by the declared length.
    const int64_t want = ctx.has_attr("axes") ? static_cast<int64_t>(ctx.attr_ints("axes").size()) : xs.rank();
    if (ss[0].value() != want)
      return ctx.Error("shape has " + std::to_string(ss[0].value()) + " values, must have one per axis (" +
                       std::to_string(want) + ")");
    target.assign(static_cast<size_t>(want), Dim::Unknown());
  }
  std::vector<int64_t> axes;
  KILN_RETURN_IF_ERROR(CropPadAxes(ctx, xs.rank(), target.size(), &axes));
  for (size_t i = 0; i < axes.size(); ++i) out[static_cast<size_t>(axes[i])] = target[i];
  ctx.set_output(0, ctx.input_dtype(0), Shape(std::move(out)));
  return Status::Ok();
}

Status RunCenterCropPad(RunContext& ctx) {
  const Tensor& x = ctx.input(0);
  const std::vector<int64_t> target = ctx.input(1).ToInt64s();
  std::vector<int64_t> axes;
  KILN_RETURN_IF_ERROR(CropPadAxes(ctx, x.rank(), target.size(), &axes));
  std::vector<int64_t> out = x.dims();
  // Per dim: where the kept range starts in the input and in the output.
  std::vector<int64_t> in_start(out.size(), 0), out_start(out.size(), 0), extent = x.dims();
  for (size_t i = 0; i < axes.size(); ++i) {
    const size_t a = static_cast<size_t>(axes[i]);
    const int64_t dim = x.dims()[a], sh = target[i];
    if (sh < 0) return ctx.Error("shape values must be non-negative");
    out[a] = sh;
    if (sh < dim) {
      in_start[a] = (dim - sh) / 2;
      extent[a] = sh;
    } else {
      out_start[a] = (sh - dim) / 2;
    }
  }
  Tensor y(x.dtype(), out);
  ElementCopier copy(x, y);
  const std::vector<int64_t> xs = Strides(x.dims()), ys = Strides(out);
  int64_t in_base = 0, out_base = 0;
  for (size_t d = 0; d < out.size(); ++d) {
    in_base += in_start[d] * xs[d];
    out_base += out_start[d] * ys[d];
  }
  ForEachBroadcast(extent, {xs, ys},
                   [&](const std::vector<int64_t>& off) { copy.Copy(in_base + off[0], out_base + off[1]); });
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
