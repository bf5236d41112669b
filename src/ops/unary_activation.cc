// Activation functions of the unary family: Sigmoid Tanh Relu LeakyRelu Elu
// Selu Celu HardSigmoid HardSwish Softplus Softsign Gelu Mish Swish
// ThresholdedRelu Shrink Clip.
#include <cmath>
#include <limits>
#include <type_traits>

#include "ops/op_table.h"
#include "ops/unary_util.h"

namespace kiln {
namespace ops {
namespace {

template <class C>
C Sigmoid(C v) {
  if (v >= C(0)) return C(1) / (C(1) + std::exp(-v));
  C e = std::exp(v);
  return e / (C(1) + e);
}

template <class C>
C Softplus(C v) {
  // log(1 + exp(v)) without overflow for large v.
  return v > C(0) ? v + std::log1p(std::exp(-v)) : std::log1p(std::exp(v));
}

}  // namespace

Status RunSigmoid(RunContext& ctx) {
  return MapUnary<UnaryTypes::kFloat>(ctx, [](auto v) { return Sigmoid(v); });
}

Status RunTanh(RunContext& ctx) {
  return MapUnary<UnaryTypes::kFloat>(ctx, [](auto v) { return std::tanh(v); });
}

Status RunRelu(RunContext& ctx) {
  return MapUnary<UnaryTypes::kSigned>(ctx, [](auto v) {
    using C = decltype(v);
    return v > C(0) ? v : (std::is_floating_point_v<C> && v != v ? v : C(0));
  });
}

Status RunLeakyRelu(RunContext& ctx) {
  const double alpha = ctx.attr_float("alpha", 0.01f);
  return MapUnary<UnaryTypes::kFloat>(ctx, [&](auto v) {
    using C = decltype(v);
    return v < C(0) ? static_cast<C>(alpha) * v : v;
  });
}

Status RunElu(RunContext& ctx) {
  const double alpha = ctx.attr_float("alpha", 1.0f);
  return MapUnary<UnaryTypes::kFloat>(ctx, [&](auto v) {
    using C = decltype(v);
    return v < C(0) ? static_cast<C>(alpha) * (std::exp(v) - C(1)) : v;
  });
}

Status RunSelu(RunContext& ctx) {
  const double alpha = ctx.attr_float("alpha", 1.67326319217681884765625f);
  const double gamma = ctx.attr_float("gamma", 1.05070102214813232421875f);
  return MapUnary<UnaryTypes::kFloat>(ctx, [&](auto v) {
    using C = decltype(v);
    const C a = static_cast<C>(alpha), g = static_cast<C>(gamma);
    return v <= C(0) ? g * (a * std::exp(v) - a) : g * v;
  });
}

Status RunCelu(RunContext& ctx) {
  const double alpha = ctx.attr_float("alpha", 1.0f);
  return MapUnary<UnaryTypes::kFloat>(ctx, [&](auto v) {
    using C = decltype(v);
    const C a = static_cast<C>(alpha);
    return std::max(C(0), v) + std::min(C(0), a * (std::exp(v / a) - C(1)));
  });
}

Status RunHardSigmoid(RunContext& ctx) {
  const double alpha = ctx.attr_float("alpha", 0.2f);
  const double beta = ctx.attr_float("beta", 0.5f);
  return MapUnary<UnaryTypes::kFloat>(ctx, [&](auto v) {
    using C = decltype(v);
    return std::max(C(0), std::min(C(1), static_cast<C>(alpha) * v + static_cast<C>(beta)));
  });
}

Status RunHardSwish(RunContext& ctx) {
  return MapUnary<UnaryTypes::kFloat>(ctx, [](auto v) {
    using C = decltype(v);
    return v * std::max(C(0), std::min(C(1), v / C(6) + C(0.5)));
  });
}

Status RunSoftplus(RunContext& ctx) {
  return MapUnary<UnaryTypes::kFloat>(ctx, [](auto v) { return Softplus(v); });
}

Status RunSoftsign(RunContext& ctx) {
  return MapUnary<UnaryTypes::kFloat>(ctx, [](auto v) {
    using C = decltype(v);
    return v / (C(1) + std::fabs(v));
  });
}

Status RunGelu(RunContext& ctx) {
  const std::string approximate = ctx.attr_string("approximate", "none");
  if (approximate == "tanh") {
    return MapUnary<UnaryTypes::kFloat>(ctx, [](auto v) {
      using C = decltype(v);
      const C k = static_cast<C>(0.7978845608028654);  // sqrt(2/pi)
      return C(0.5) * v * (C(1) + std::tanh(k * (v + C(0.044715) * v * v * v)));
    });
  }
  if (approximate != "none")
    return ctx.Error("unknown approximate '" + approximate + "' (expected none or tanh)");
  return MapUnary<UnaryTypes::kFloat>(ctx, [](auto v) {
    using C = decltype(v);
    return C(0.5) * v * (C(1) + std::erf(v * static_cast<C>(0.7071067811865476)));
  });
}

Status RunMish(RunContext& ctx) {
  return MapUnary<UnaryTypes::kFloat>(ctx, [](auto v) { return v * std::tanh(Softplus(v)); });
}

Status RunSwish(RunContext& ctx) {
  const double alpha = ctx.attr_float("alpha", 1.0f);
  return MapUnary<UnaryTypes::kFloat>(ctx, [&](auto v) {
    using C = decltype(v);
    return v * Sigmoid(static_cast<C>(alpha) * v);
  });
}

Status RunThresholdedRelu(RunContext& ctx) {
  const double alpha = ctx.attr_float("alpha", 1.0f);
  return MapUnary<UnaryTypes::kFloat>(ctx, [&](auto v) {
    using C = decltype(v);
    return v > static_cast<C>(alpha) ? v : C(0);
  });
}

Status RunShrink(RunContext& ctx) {
  const double bias = ctx.attr_float("bias", 0.0f);
  const double lambd = ctx.attr_float("lambd", 0.5f);
  return MapUnary<UnaryTypes::kNumeric>(ctx, [&](auto v) {
    using C = decltype(v);
    const double d = static_cast<double>(v);
    if (d < -lambd) return static_cast<C>(d + bias);
    if (d > lambd) return static_cast<C>(d - bias);
    return C(0);
  });
}

// Clip: bounds are attributes before opset 11 and optional scalar inputs after.
Status RunClip(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(RequireTensorInputs(ctx, {0}));
  const Tensor& x = ctx.input(0);
  const bool bounds_as_inputs = ctx.opset() >= 11;
  for (size_t i = 1; i <= 2 && bounds_as_inputs; ++i) {
    if (!ctx.has_input(i)) continue;
    const Tensor& b = ctx.input(i);
    if (b.numel() != 1) return ctx.Error("min/max must be scalars");
    if (b.dtype() != x.dtype()) return ctx.Error("min/max must have the input's element type");
  }
  Tensor y(x.dtype(), x.dims());
  bool ok = DispatchNumeric(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    C lo, hi;
    if constexpr (std::is_floating_point_v<C>) {
      lo = -std::numeric_limits<C>::infinity();
      hi = std::numeric_limits<C>::infinity();
    } else {
      lo = std::numeric_limits<C>::lowest();
      hi = std::numeric_limits<C>::max();
    }
    if (bounds_as_inputs) {
      if (ctx.has_input(1)) lo = ToCompute<T>(ctx.input(1).data<T>()[0]);
      if (ctx.has_input(2)) hi = ToCompute<T>(ctx.input(2).data<T>()[0]);
    } else {
      if (ctx.has_attr("min")) lo = static_cast<C>(ctx.attr_float("min", 0.0f));
      if (ctx.has_attr("max")) hi = static_cast<C>(ctx.attr_float("max", 0.0f));
    }
    const T* in = x.data<T>();
    T* out = y.mutable_data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      C v = ToCompute<T>(in[i]);
      if (v < lo) v = lo;
      if (v > hi) v = hi;  // min > max gives max, as numpy.clip
      out[i] = FromCompute<T>(v);
    }
  });
  if (!ok)
    return ctx.UnsupportedError("element type " + std::string(DataTypeName(x.dtype())) + " is not supported");
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
