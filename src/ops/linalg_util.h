// Helpers shared by the linalg ops (src/ops/linalg_*.cc): the accumulator type
// of an element type, whole-tensor conversion to and from it, and the
// float16/bfloat16 rounding used to mirror the reference's cast points.
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/tensor.h"
#include "ops/op_util.h"

namespace kiln {
namespace linalg {

// Attention head counts from attributes: no model has more, and the bound keeps
// heads x head size in int64 and the per-head loops finite on a hostile plan.
constexpr int64_t kMaxHeads = int64_t{1} << 16;

// Accumulator type of T for matrix products: float for float/float16/bfloat16,
// double for double, uint64_t for every integer type (unsigned, so overflow
// wraps with defined behaviour; narrowing back gives numpy's fixed-width
// integer results).
template <class T>
using acc_t = std::conditional_t<std::is_floating_point_v<compute_t<T>>, compute_t<T>, uint64_t>;

// Calls f(Acc{}) with Acc the accumulator type of dt; false for non-numeric dt.
template <class F>
bool DispatchAcc(DataType dt, F&& f) {
  return DispatchNumeric(dt, [&](auto tag) { f(acc_t<decltype(tag)>{}); });
}

// Every element of a numeric (or bool) tensor converted to Acc.
template <class Acc>
std::vector<Acc> ReadAs(const Tensor& t) {
  std::vector<Acc> out(static_cast<size_t>(t.numel()));
  DispatchAll(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = t.data<T>();
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<Acc>(ToCompute(p[i]));
  });
  return out;
}

// A tensor of type dt and the given dims from Acc values (rounded per element).
template <class Acc>
Tensor WriteAs(DataType dt, std::vector<int64_t> dims, const std::vector<Acc>& values) {
  Tensor t(dt, std::move(dims));
  DispatchAll(dt, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.mutable_data<T>();
    const int64_t n = t.numel();
    for (int64_t i = 0; i < n; ++i)
      p[i] = FromCompute<T>(static_cast<compute_t<T>>(values[static_cast<size_t>(i)]));
  });
  return t;
}

// v rounded to element type T and back (identity for float/double): mirrors a
// point where the ONNX reference materialises a float16/bfloat16 tensor.
template <class T, class C>
inline C RoundTo(C v) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
    return static_cast<C>(static_cast<float>(T(static_cast<float>(v))));
  } else if constexpr (std::is_same_v<T, float>) {
    return static_cast<C>(static_cast<float>(v));
  } else {
    return v;
  }
}

// A tensor's elements as a contiguous Acc array: the tensor's own memory when
// its element type is Acc, else a converted copy held in `buffer`.
template <class Acc>
struct AccData {
  std::vector<Acc> buffer;
  const Acc* ptr = nullptr;
};
template <class Acc>
AccData<Acc> AsAcc(const Tensor& t) {
  AccData<Acc> d;
  const DataType dt = t.dtype();
  const bool same = (std::is_same_v<Acc, float> && dt == DataType::kFloat) ||
                    (std::is_same_v<Acc, double> && dt == DataType::kDouble) ||
                    (std::is_same_v<Acc, int64_t> && dt == DataType::kInt64) ||
                    (std::is_same_v<Acc, uint64_t> && dt == DataType::kUInt64);
  if (same) {
    d.ptr = t.data<Acc>();
  } else {
    d.buffer = ReadAs<Acc>(t);
    d.ptr = d.buffer.data();
  }
  return d;
}

// Rounds v to element type dt (float16/bfloat16/float32/double) and back.
double RoundToType(DataType dt, double v);

}  // namespace linalg
}  // namespace kiln
