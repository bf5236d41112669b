// kiln's fused internal ops (domain "kiln", see defs/kiln.def), made by the
// GPU build pass src/passes/fuse_gpu.cc:
//   FusedConv(X, W, B?, Z?)   Y = act(Conv(X, W, B) + Z)   attrs: Conv's + activation
//   FusedMatMul(A, B, bias?)  Y = act(MatMul(A, B) + bias)  attrs: activation
// activation is "" (none) or "Relu". Shape inference reuses Conv's / MatMul's;
// the CPU reference runs the unfused ops' references and then the epilogue,
// rounding after each step exactly as the unfused graph does (so a fused and an
// unfused model agree bit for bit on the CPU).
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "ops/op_table.h"
#include "ops/op_util.h"

namespace kiln {
namespace ops {
namespace {

// Default-domain opset the inner Conv/MatMul references run at. Neither op
// changed meaning across its versions (only types were added).
constexpr int64_t kInnerOpset = 22;

enum class Activation { kNone, kRelu };

Expected<Activation> ReadActivation(const NodeContext& ctx) {
  std::string a = ctx.attr_string("activation", "");
  if (a.empty()) return Activation::kNone;
  if (a == "Relu") return Activation::kRelu;
  return ctx.UnsupportedError("unknown activation '" + a + "' (expected \"\" or \"Relu\")");
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
// the storage type, like the unfused Add then Relu.
template <class T>
void Epilogue(Tensor* y, const Tensor* add, int64_t per_row, Activation act) {
  using C = compute_t<T>;
  T* py = y->mutable_data<T>();
  const T* pa = add ? add->data<T>() : nullptr;
  const int64_t n = y->numel();
  for (int64_t i = 0; i < n; ++i) {
    T v = py[i];
    if (pa) v = FromCompute<T>(ToCompute(v) + ToCompute(pa[per_row ? i % per_row : i]));
    if (act == Activation::kRelu) {
      C c = ToCompute(v);
      if (!(c > C(0)) && c == c) v = FromCompute<T>(C(0));  // NaN passes through, as in Relu
    }
    py[i] = v;
  }
}

Status ApplyEpilogue(const NodeContext& ctx, Tensor* y, const Tensor* add, int64_t per_row, Activation act) {
  if (!add && act == Activation::kNone) return Status::Ok();
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

Status InferFusedConv(InferContext& ctx) {
  if (ctx.num_inputs() < 2 || ctx.num_inputs() > 4 || !ctx.has_input(0) || !ctx.has_input(1))
    return ctx.Error("expects inputs X, W and optional B, Z");
  KILN_RETURN_IF_ERROR(ReadActivation(ctx).status());
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
  KILN_ASSIGN_OR_RETURN(Activation act, ReadActivation(ctx));
  KILN_ASSIGN_OR_RETURN(Tensor y, RunInner(ctx, 3, &RunConv));
  const Tensor* z = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  if (z && (z->dtype() != y.dtype() || z->dims() != y.dims()))
    return ctx.Error("Z " + z->Describe() + " must have the conv output's type and shape " + y.Describe());
  KILN_RETURN_IF_ERROR(ApplyEpilogue(ctx, &y, z, 0, act));
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

Status InferFusedMatMul(InferContext& ctx) {
  if (ctx.num_inputs() < 2 || ctx.num_inputs() > 3 || !ctx.has_input(0) || !ctx.has_input(1))
    return ctx.Error("expects inputs A, B and optional bias");
  KILN_RETURN_IF_ERROR(ReadActivation(ctx).status());
  KILN_RETURN_IF_ERROR(InferMatMul(ctx));
  if (ctx.has_input(2)) {
    const Shape& b = ctx.input_shape(1);
    const Shape& bias = ctx.input_shape(2);
    if (b.rank_known() && b.rank() < 2) return ctx.Error("a bias needs B of rank >= 2");
    if (bias.rank_known() && bias.rank() != 1) return ctx.Error("bias must be 1-D");
    if (b.rank_known() && bias.rank_known()) {
      const Dim& n = b[static_cast<size_t>(b.rank() - 1)];
      if (n.known() && bias[0].known() && n.value() != bias[0].value())
        return ctx.Error("bias length must equal B's last dim");
    }
    DataType bt = ctx.input_dtype(2), at = ctx.input_dtype(0);
    if (bt != DataType::kUndefined && at != DataType::kUndefined && bt != at)
      return ctx.Error("bias must have the type of A");
  }
  return Status::Ok();
}

Status RunFusedMatMul(RunContext& ctx) {
  if (!ctx.has_input(0) || !ctx.has_input(1)) return ctx.Error("expects inputs A and B");
  KILN_ASSIGN_OR_RETURN(Activation act, ReadActivation(ctx));
  KILN_ASSIGN_OR_RETURN(Tensor y, RunInner(ctx, 2, &RunMatMul));
  const Tensor* bias = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  int64_t n = 0;
  if (bias) {
    if (ctx.input(1).rank() < 2 || y.rank() < 1 || bias->rank() != 1 || bias->dtype() != y.dtype() ||
        bias->dim(0) != y.dim(y.rank() - 1))
      return ctx.Error("bias " + bias->Describe() + " must be 1-D with one value per column of " +
                       y.Describe());
    n = bias->dim(0);
    if (n == 0) bias = nullptr;  // no columns: nothing to add
  }
  KILN_RETURN_IF_ERROR(ApplyEpilogue(ctx, &y, bias, n, act));
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
