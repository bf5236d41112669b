// Helpers of the binary (elementwise, broadcasting) op family: output dims of
// a broadcast, element loops over broadcast inputs, shared shape inference, and
// symbolic-value propagation for small shape tensors (Shape(x)[0] * 2, ...).
#pragma once

#include <cmath>
#include <limits>
#include <optional>
#include <type_traits>
#include <vector>

#include "ops/op_util.h"

namespace kiln {
namespace binary {

// Output dims of broadcasting the given tensors; an error names the node.
Status OutputDims(const RunContext& ctx, const std::vector<const Tensor*>& ins, std::vector<int64_t>* out);

// Before opset 7, B broadcast to A only with attribute broadcast=1, its dims
// placed at attribute `axis` (default: aligned to A's trailing dims).
bool IsLegacyBroadcast(const NodeContext& ctx);
// B with dims rewritten so numpy broadcasting matches the legacy rule (B
// itself when the node does not use it).
Tensor LegacyB(const NodeContext& ctx, const Tensor& a, const Tensor& b);

// out[i] = f(a[ia], b[ib]) over the broadcast of a and b (out already sized).
template <class A, class B, class O, class F>
void Apply(const Tensor& a, const Tensor& b, Tensor* out, F&& f) {
  const A* pa = a.data<A>();
  const B* pb = b.data<B>();
  O* po = out->mutable_data<O>();
  const int64_t n = out->numel();
  if (n == 0) return;
  // Any input with as many elements as the output has its layout (all dims >= 1).
  if (a.numel() == n && b.numel() == n) {
    for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i], pb[i]);
    return;
  }
  if (a.numel() == n && b.numel() == 1) {
    for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i], pb[0]);
    return;
  }
  if (a.numel() == 1 && b.numel() == n) {
    for (int64_t i = 0; i < n; ++i) po[i] = f(pa[0], pb[i]);
    return;
  }
  std::vector<std::vector<int64_t>> strides = {BroadcastStrides(a.dims(), out->dims()),
                                               BroadcastStrides(b.dims(), out->dims())};
  int64_t i = 0;
  ForEachBroadcast(out->dims(), strides,
                   [&](const std::vector<int64_t>& off) { po[i++] = f(pa[off[0]], pb[off[1]]); });
}

// Broadcasts a and b, makes the output of dtype `out_dt` and fills it with
// f(A, B) -> O.
template <class A, class B, class O, class F>
Status Run2(RunContext& ctx, DataType out_dt, F&& f) {
  const Tensor& a = ctx.input(0);
  Tensor b = LegacyB(ctx, a, ctx.input(1));
  std::vector<int64_t> dims;
  KILN_RETURN_IF_ERROR(OutputDims(ctx, {&a, &b}, &dims));
  Tensor out(out_dt, dims);
  Apply<A, B, O>(a, b, &out, f);
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

// Checks that the op has `min_inputs` present inputs and that all given input
// types agree (unknown types are skipped).
Status CheckInputs(const InferContext& ctx, size_t min_inputs, size_t max_inputs, bool same_dtype);
Status CheckInputs(const RunContext& ctx, size_t min_inputs, size_t max_inputs, bool same_dtype);

// Broadcast shape of inputs [first, num_inputs) into `out`.
Status InferBroadcastShape(const InferContext& ctx, size_t first, Shape* out);

// Integer add/sub/mul that wrap (two's complement) instead of overflowing.
template <class T>
T WrapAdd(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
}
template <class T>
T WrapSub(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(static_cast<U>(a) - static_cast<U>(b)));
}
template <class T>
T WrapMul(T a, T b) {
  using U = std::conditional_t<sizeof(T) < sizeof(unsigned), unsigned, std::make_unsigned_t<T>>;
  return static_cast<T>(static_cast<U>(static_cast<U>(a) * static_cast<U>(b)));
}

// Float to integer conversion that saturates (NaN -> 0) instead of being UB.
template <class I>
I SaturateToInt(double v) {
  if (std::isnan(v)) return 0;
  constexpr double lo = static_cast<double>(std::numeric_limits<I>::lowest());
  constexpr double hi = static_cast<double>(std::numeric_limits<I>::max());
  if (v <= lo) return std::numeric_limits<I>::lowest();
  if (v >= hi) return std::numeric_limits<I>::max();
  return static_cast<I>(v);
}

// One element of a small integer tensor during inference: a constant of any
// sign, or a symbolic dim.
struct SymInt {
  std::optional<int64_t> value;
  Dim dim;  // value as a Dim (Dim::Constant), else the symbol or unknown
  static SymInt Const(int64_t v) { return {v, Dim::Constant(v)}; }
  static SymInt FromDim(const Dim& d) {
    if (auto c = d.constant()) return Const(*c);
    return {std::nullopt, d};
  }
};

// Contents of input i as SymInts when small and known (constant int/bool data
// or symbolic shape data), else nullopt.
std::optional<std::vector<SymInt>> ReadSymInts(const InferContext& ctx, size_t i);
// Sets the symbolic contents of output 0 from `vals`.
void WriteSymInts(InferContext& ctx, const std::vector<SymInt>& vals);
// Combines the contents of inputs with numpy broadcasting of 0-D/1-D tensors:
// out[i] = f(in_0[i], in_1[i], ...). Sets output 0's symbolic contents when all
// inputs are readable, at least one is symbolic and the output has rank <= 1.
template <class F>
void PropagateSym(InferContext& ctx, const Shape& out_shape, F&& f) {
  if (!out_shape.rank_known() || out_shape.rank() > 1) return;
  std::vector<std::vector<SymInt>> ins;
  bool any_sym = false;
  size_t n = 1;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    auto v = ReadSymInts(ctx, i);
    if (!v) return;
    if (ctx.input_sym(i) && !ctx.input_data(i)) any_sym = true;
    if (v->size() != 1) {
      if (n != 1 && n != v->size()) return;
      n = v->size();
    }
    ins.push_back(std::move(*v));
  }
  if (!any_sym) return;
  if (out_shape.rank() == 1 && !(out_shape[0].known() && static_cast<size_t>(out_shape[0].value()) == n))
    return;
  std::vector<SymInt> out;
  std::vector<SymInt> args(ins.size());
  for (size_t e = 0; e < n; ++e) {
    for (size_t k = 0; k < ins.size(); ++k) args[k] = ins[k].size() == 1 ? ins[k][0] : ins[k][e];
    out.push_back(f(args));
  }
  WriteSymInts(ctx, out);
}

}  // namespace binary
}  // namespace kiln
