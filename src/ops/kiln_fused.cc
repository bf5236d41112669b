// kiln's fused internal ops (domain "kiln", see defs/kiln.def), made by the
// GPU build pass src/passes/fuse_gpu.cc:
//   FusedConv(X, W, B?, Z?)   Y = act(Conv(X, W, B) + Z)   attrs: Conv's + activation
//                                                          (+ activation_min/max for Clip)
//                             Y = act(Conv(X, W, B)) + Z   with residual_after_activation = 1
//   FusedMatMul(A, B, bias?, Z?)  Y = act(MatMul(A, B) + bias + Z)  attrs: activation
//   Gelu(X)                   ONNX Gelu (listed in kiln.def with its functions)
// FusedConv's activation (string, default ""): "" (none), "Relu", "Clip",
// "Sigmoid", "Swish" (v * sigmoid(v)), "HardSwish", "HardSigmoid", "Gelu" (the erf form) or "LeakyRelu";
// for "Clip" the float attributes activation_min / activation_max (default -inf /
// +inf) are Clip's bounds, for "HardSigmoid" activation_alpha /
// activation_beta (default 0.2 / 0.5) are HardSigmoid's alpha and beta, for
// "LeakyRelu" activation_alpha (default 0.01) is its slope below zero.
// FusedMatMul's activation is "" or "Relu". Shape inference reuses Conv's /
// MatMul's; the CPU reference runs the unfused ops' references and then the
// epilogue, rounding to the storage type after each step exactly as the
// unfused graph does (so a fused and an unfused model agree bit for bit on the
// CPU).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "ops/fused_epilogue.h"
#include "ops/op_table.h"
#include "ops/op_util.h"

namespace kiln {
namespace ops {
namespace {

// A float attribute, or `def` when absent; an error when of another type.
Status ReadFloatAttr(const NodeContext& ctx, const char* name, float* out) {
  const Attribute* a = ctx.node().attr(name);
  if (!a) return Status::Ok();
  if (a->type != Attribute::Type::kFloat)
    return ctx.Error(std::string("attribute ") + name + " must be a float");
  *out = a->f;
  return Status::Ok();
}

}  // namespace

// See fused_epilogue.h.
Expected<Activation> ReadActivation(const NodeContext& ctx, bool conv) {
  std::string a = ctx.attr_string("activation", "");
  Activation act;
  if (a == "Relu")
    act.kind = ActKind::kRelu;
  else if (a == "Clip" && conv)
    act.kind = ActKind::kClip;
  else if (a == "Sigmoid" && conv)
    act.kind = ActKind::kSigmoid;
  else if (a == "Swish" && conv)
    act.kind = ActKind::kSwish;
  else if (a == "HardSwish" && conv)
    act.kind = ActKind::kHardSwish;
  else if (a == "HardSigmoid" && conv)
    act.kind = ActKind::kHardSigmoid;
  else if (a == "GeluTanh" && !conv)
    act.kind = ActKind::kGeluTanh;
  else if (a == "Gelu" && conv)
    act.kind = ActKind::kGelu;
  else if (a == "LeakyRelu" && conv) {
    act.kind = ActKind::kLeakyRelu;
    act.alpha = 0.01f;  // LeakyRelu's default
  } else if (!a.empty())
    return ctx.UnsupportedError("unknown activation '" + a + "' (expected " +
                                (conv ? "\"\", \"Relu\", \"Clip\", \"Sigmoid\", \"Swish\", \"HardSwish\", "
                                        "\"HardSigmoid\", \"Gelu\" or \"LeakyRelu\")"
                                      : "\"\", \"Relu\" or \"GeluTanh\")"));
  if (act.kind != ActKind::kClip && (ctx.has_attr("activation_min") || ctx.has_attr("activation_max")))
    return ctx.Error("activation_min/activation_max apply only to activation \"Clip\"");
  if (act.kind != ActKind::kHardSigmoid && ctx.has_attr("activation_beta"))
    return ctx.Error("activation_beta applies only to activation \"HardSigmoid\"");
  if (act.kind != ActKind::kHardSigmoid && act.kind != ActKind::kLeakyRelu &&
      ctx.has_attr("activation_alpha"))
    return ctx.Error("activation_alpha applies only to activations \"HardSigmoid\" and \"LeakyRelu\"");
  KILN_RETURN_IF_ERROR(ReadFloatAttr(ctx, "activation_min", &act.min));
  KILN_RETURN_IF_ERROR(ReadFloatAttr(ctx, "activation_max", &act.max));
  KILN_RETURN_IF_ERROR(ReadFloatAttr(ctx, "activation_alpha", &act.alpha));
  KILN_RETURN_IF_ERROR(ReadFloatAttr(ctx, "activation_beta", &act.beta));
  return act;
}

namespace {

// Default-domain opset the inner Conv/MatMul references run at. Neither op
// changed meaning across its versions (only types were added).
constexpr int64_t kInnerOpset = 22;

// Sigmoid exactly as the ONNX Sigmoid reference computes it
// (unary_activation.cc): fused and unfused results must agree bit for bit.
template <class C>
C Sigmoid(C v) {
  if (v >= C(0)) return C(1) / (C(1) + std::exp(-v));
  C e = std::exp(v);
  return e / (C(1) + e);
}

// act(v), rounding to T after each step of the unfused ops: Relu and Clip
// (NaN passes through both, as in their references), Sigmoid, Swish as
// Sigmoid then Mul, HardSwish and HardSigmoid (one op each).
template <class T>
T Activate(T v, const Activation& act) {
  using C = compute_t<T>;
  const C c = ToCompute(v);
  switch (act.kind) {
    case ActKind::kNone:
      return v;
    case ActKind::kRelu:
      return !(c > C(0)) && c == c ? FromCompute<T>(C(0)) : v;
    case ActKind::kClip: {
      C r = c;
      if (r < static_cast<C>(act.min)) r = static_cast<C>(act.min);
      if (r > static_cast<C>(act.max)) r = static_cast<C>(act.max);  // min > max gives max, as Clip
      return FromCompute<T>(r);
    }
    case ActKind::kSigmoid:
      return FromCompute<T>(Sigmoid(c));
    case ActKind::kSwish:
      return FromCompute<T>(c * ToCompute(FromCompute<T>(Sigmoid(c))));
    case ActKind::kHardSwish:  // as the HardSwish reference (unary_activation.cc)
      return FromCompute<T>(c * std::max(C(0), std::min(C(1), c / C(6) + C(0.5))));
    case ActKind::kHardSigmoid: {  // as the HardSigmoid reference: alpha, beta from float attributes
      const C alpha = static_cast<C>(static_cast<double>(act.alpha));
      const C beta = static_cast<C>(static_cast<double>(act.beta));
      return FromCompute<T>(std::max(C(0), std::min(C(1), alpha * c + beta)));
    }
    case ActKind::kLeakyRelu:  // as the LeakyRelu reference: the float attribute through double; NaN passes
      return c < C(0) ? FromCompute<T>(static_cast<C>(static_cast<double>(act.alpha)) * c) : v;
    case ActKind::kGelu:  // as Gelu(approximate="none") (unary_activation.cc)
      return FromCompute<T>(C(0.5) * c * (C(1) + std::erf(c * static_cast<C>(0.7071067811865476))));
    case ActKind::kGeluTanh: {                         // as Gelu(approximate="tanh") (unary_activation.cc)
      const C k = static_cast<C>(0.7978845608028654);  // sqrt(2/pi)
      return FromCompute<T>(C(0.5) * c * (C(1) + std::tanh(k * (c + C(0.044715) * c * c * c))));
    }
  }
  return v;
}

// Shapes that can be the same at run time: unknown rank or unknown/symbolic
// dims are accepted; two different known extents are not.
bool MaybeSameShape(const Shape& a, const Shape& b) {
  if (!a.rank_known() || !b.rank_known()) return true;
  if (a.rank() != b.rank()) return false;
  for (int i = 0; i < a.rank(); ++i) {
    const Dim& x = a[static_cast<size_t>(i)];
    const Dim& y = b[static_cast<size_t>(i)];
    if (x.known() && y.known() && x.value() != y.value()) return false;
  }
  return true;
}

// y = act(y + add), where add (may be null) is either y's shape (`per_row` ==
// 0) or a vector repeated over rows of `per_row` elements. Each step rounds to
// the storage type, like the unfused Add then the activation's ops.
template <class T>
void Epilogue(Tensor* y, const Tensor* add, int64_t per_row, const Activation& act) {
  T* py = y->mutable_data<T>();
  const T* pa = add ? add->data<T>() : nullptr;
  const int64_t n = y->numel();
  for (int64_t i = 0; i < n; ++i) {
    T v = py[i];
    if (pa) v = FromCompute<T>(ToCompute(v) + ToCompute(pa[per_row ? i % per_row : i]));
    py[i] = Activate(v, act);
  }
}

Status ApplyEpilogue(const NodeContext& ctx, Tensor* y, const Tensor* add, int64_t per_row,
                     const Activation& act) {
  if (!add && act.kind == ActKind::kNone) return Status::Ok();
  if (!DispatchFloat(y->dtype(), [&](auto t) { Epilogue<decltype(t)>(y, add, per_row, act); }))
    return ctx.UnsupportedError("type " + std::string(DataTypeName(y->dtype())) + " is not supported");
  return Status::Ok();
}

// Runs `run` (Conv or MatMul reference) on the first `count` inputs of ctx.
Expected<Tensor> RunInner(RunContext& ctx, size_t count, RunFn run) {
  std::vector<const RtValue*> inputs;
  for (size_t i = 0; i < count; ++i) inputs.push_back(ctx.has_input(i) ? &ctx.input_value(i) : nullptr);
  RunContext inner(ctx.node(), kInnerOpset, std::move(inputs));
  KILN_RETURN_IF_ERROR(run(inner));
  if (inner.outputs().empty() || inner.outputs()[0].kind != ValueKind::kTensor)
    return Internal(ctx.node().Label() + ": inner op produced no tensor");
  return std::move(inner.outputs()[0].tensor);
}

}  // namespace

float ActivateFloat(float v, const Activation& act) { return Activate(v, act); }

Status InferFusedConv(InferContext& ctx) {
  if (ctx.num_inputs() < 2 || ctx.num_inputs() > 4 || !ctx.has_input(0) || !ctx.has_input(1))
    return ctx.Error("expects inputs X, W and optional B, Z");
  KILN_RETURN_IF_ERROR(ReadActivation(ctx, true).status());
  const int64_t after = ctx.attr_int("residual_after_activation", 0);
  if (after != 0 && after != 1) return ctx.Error("residual_after_activation must be 0 or 1");
  KILN_RETURN_IF_ERROR(InferConv(ctx));
  if (ctx.has_input(3)) {
    DataType zt = ctx.input_dtype(3), xt = ctx.input_dtype(0);
    if (zt != DataType::kUndefined && xt != DataType::kUndefined && zt != xt)
      return ctx.Error("Z must have the type of X");
    // Conv's InferFn set output 0: Z must be that shape (no broadcasting).
    Shape y = ctx.node().output(0) ? ctx.node().output(0)->shape() : Shape::Unranked();
    if (!MaybeSameShape(y, ctx.input_shape(3)))
      return ctx.Error("Z " + ctx.input_shape(3).ToString() + " must have the conv output's shape " +
                       y.ToString());
  }
  return Status::Ok();
}

Status RunFusedConv(RunContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1)) return ctx.Error("expects inputs X and W");
  KILN_ASSIGN_OR_RETURN(Activation act, ReadActivation(ctx, true));
  KILN_ASSIGN_OR_RETURN(Tensor y, RunInner(ctx, 3, &RunConv));
  const Tensor* z = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  if (z && (z->dtype() != y.dtype() || z->dims() != y.dims()))
    return ctx.Error("Z " + z->Describe() + " must have the conv output's type and shape " + y.Describe());
  if (ctx.attr_int("residual_after_activation", 0) != 0) {  // act(conv + B) + Z
    KILN_RETURN_IF_ERROR(ApplyEpilogue(ctx, &y, nullptr, 0, act));
    KILN_RETURN_IF_ERROR(ApplyEpilogue(ctx, &y, z, 0, Activation{}));
  } else {
    KILN_RETURN_IF_ERROR(ApplyEpilogue(ctx, &y, z, 0, act));
  }
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

Status InferProductEpilogue(InferContext& ctx, size_t bias_at, size_t z_at, const Dim& n, DataType type) {
  KILN_RETURN_IF_ERROR(ReadActivation(ctx, false).status());
  if (ctx.has_input(bias_at)) {
    const Shape& bias = ctx.input_shape(bias_at);
    if (bias.rank_known() && bias.rank() != 1) return ctx.Error("bias must be 1-D");
    if (n.known() && bias.rank_known() && bias[0].known() && n.value() != bias[0].value())
      return ctx.Error("bias length " + std::to_string(bias[0].value()) +
                       " must equal the product's column count " + std::to_string(n.value()));
    DataType bt = ctx.input_dtype(bias_at);
    if (bt != DataType::kUndefined && type != DataType::kUndefined && bt != type)
      return ctx.Error("bias must have the product's type");
  }
  if (ctx.has_input(z_at)) {
    DataType zt = ctx.input_dtype(z_at);
    if (zt != DataType::kUndefined && type != DataType::kUndefined && zt != type)
      return ctx.Error("Z must have the product's type");
    Shape y = ctx.node().output(0) ? ctx.node().output(0)->shape() : Shape::Unranked();
    if (!MaybeSameShape(y, ctx.input_shape(z_at)))
      return ctx.Error("Z " + ctx.input_shape(z_at).ToString() + " must have the product's shape " +
                       y.ToString());
  }
  return Status::Ok();
}

Status RunProductEpilogue(RunContext& ctx, Tensor* y, size_t bias_at, size_t z_at) {
  KILN_ASSIGN_OR_RETURN(Activation act, ReadActivation(ctx, false));
  const Tensor* bias = ctx.has_input(bias_at) ? &ctx.input(bias_at) : nullptr;
  int64_t n = 0;
  if (bias) {
    if (y->rank() < 1 || bias->rank() != 1 || bias->dtype() != y->dtype() ||
        bias->dim(0) != y->dim(y->rank() - 1))
      return ctx.Error("bias " + bias->Describe() + " must be 1-D with one value per column of " +
                       y->Describe());
    n = bias->dim(0);
    if (n == 0) bias = nullptr;  // no columns: nothing to add
  }
  const Tensor* z = ctx.has_input(z_at) ? &ctx.input(z_at) : nullptr;
  if (z && (z->dtype() != y->dtype() || z->dims() != y->dims()))
    return ctx.Error("Z " + z->Describe() + " must have the product's type and shape " + y->Describe());
  if (z) KILN_RETURN_IF_ERROR(ApplyEpilogue(ctx, y, bias, n, Activation()));  // bias, then Z and act
  return ApplyEpilogue(ctx, y, z ? z : bias, z ? 0 : n, act);
}

Status InferFusedMatMul(InferContext& ctx) {
  if (ctx.num_inputs() < 2 || ctx.num_inputs() > 4 || !ctx.has_input(0) || !ctx.has_input(1))
    return ctx.Error("expects inputs A, B and optional bias and Z");
  KILN_RETURN_IF_ERROR(ReadActivation(ctx, false).status());
  KILN_RETURN_IF_ERROR(InferMatMul(ctx));
  const Shape& b = ctx.input_shape(1);
  if (ctx.has_input(2) && b.rank_known() && b.rank() < 2) return ctx.Error("a bias needs B of rank >= 2");
  const Dim n = b.rank_known() && b.rank() >= 2 ? b[static_cast<size_t>(b.rank() - 1)] : Dim();
  return InferProductEpilogue(ctx, 2, 3, n, ctx.input_dtype(0));
}

Status RunFusedMatMul(RunContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1)) return ctx.Error("expects inputs A and B");
  KILN_RETURN_IF_ERROR(ReadActivation(ctx, false).status());
  if (ctx.has_input(2) && ctx.input(1).rank() < 2) return ctx.Error("a bias needs B of rank >= 2");
  KILN_ASSIGN_OR_RETURN(Tensor y, RunInner(ctx, 2, &RunMatMul));
  KILN_RETURN_IF_ERROR(RunProductEpilogue(ctx, &y, 2, 3));
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
