// Helpers shared by op implementations: broadcasting, axes, strides, dtype
// dispatch. Family-specific helpers stay in their family's files.
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/half.h"
#include "core/tensor.h"
#include "ops/op_context.h"

namespace kiln {

// Numpy-style multidirectional broadcast of symbolic shapes. Unknown rank in
// gives unknown rank out; an error names the mismatching dims.
Expected<Shape> BroadcastShapes(const std::vector<Shape>& shapes);
// Concrete broadcast; false when incompatible.
bool BroadcastDims(const std::vector<std::vector<int64_t>>& dims, std::vector<int64_t>* out);

// Row-major strides of dims.
std::vector<int64_t> Strides(const std::vector<int64_t>& dims);
// Strides of `in` (right-aligned to `out`'s rank) with 0 on broadcast dims.
std::vector<int64_t> BroadcastStrides(const std::vector<int64_t>& in, const std::vector<int64_t>& out);

// Walks every index of `out_dims` in row-major order, calling f(offsets) with
// one flat offset per input of `in_strides` (as made by BroadcastStrides).
template <class F>
void ForEachBroadcast(const std::vector<int64_t>& out_dims, const std::vector<std::vector<int64_t>>& in_strides,
                      F&& f) {
  const size_t rank = out_dims.size();
  const size_t n_in = in_strides.size();
  int64_t total = 1;
  for (int64_t d : out_dims) total *= d;
  if (total == 0) return;
  std::vector<int64_t> idx(rank, 0);
  std::vector<int64_t> off(n_in, 0);
  for (int64_t i = 0; i < total; ++i) {
    f(off);
    for (size_t d = rank; d-- > 0;) {
      ++idx[d];
      for (size_t k = 0; k < n_in; ++k) off[k] += in_strides[k][d];
      if (idx[d] < out_dims[d]) break;
      for (size_t k = 0; k < n_in; ++k) off[k] -= in_strides[k][d] * out_dims[d];
      idx[d] = 0;
    }
  }
}

// axis in [-rank, rank) → [0, rank); false when out of range.
bool NormalizeAxis(int64_t axis, int64_t rank, int64_t* out);
// Same, as a Status naming the node.
Status NormalizeAxis(const NodeContext& ctx, int64_t axis, int64_t rank, int64_t* out);

// A rank taken from the length of a 1-D shape input whose values are unknown
// (Reshape's shape, Expand's target, ...). Bounded: a hostile declared length
// must not size a shape (a plan or model declaring [1e17] asked for exabytes).
inline constexpr int64_t kMaxInferredRank = 4096;
Status RankFromLength(const NodeContext& ctx, const Dim& length, size_t* rank);

// Type used for arithmetic on T: float for Half/BFloat16, T otherwise.
template <class T>
struct ComputeType {
  using type = T;
};
template <>
struct ComputeType<Half> {
  using type = float;
};
template <>
struct ComputeType<BFloat16> {
  using type = float;
};
template <class T>
using compute_t = typename ComputeType<T>::type;

template <class T>
inline compute_t<T> ToCompute(T v) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
    return static_cast<float>(v);
  } else {
    return v;
  }
}
template <class T>
inline T FromCompute(compute_t<T> v) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
    return T(static_cast<float>(v));
  } else {
    return static_cast<T>(v);
  }
}

// Calls f(T{}) with T the C++ storage type of dt. Returns false when dt is not
// in the set. Sets: float types (float, double, Half, BFloat16), integer types
// (int8..int64, uint8..uint64), bool (as bool).
template <class F>
bool DispatchFloat(DataType dt, F&& f) {
  switch (dt) {
    case DataType::kFloat: f(float{}); return true;
    case DataType::kDouble: f(double{}); return true;
    case DataType::kFloat16: f(Half{}); return true;
    case DataType::kBFloat16: f(BFloat16{}); return true;
    default: return false;
  }
}
template <class F>
bool DispatchInteger(DataType dt, F&& f) {
  switch (dt) {
    case DataType::kInt8: f(int8_t{}); return true;
    case DataType::kInt16: f(int16_t{}); return true;
    case DataType::kInt32: f(int32_t{}); return true;
    case DataType::kInt64: f(int64_t{}); return true;
    case DataType::kUInt8: f(uint8_t{}); return true;
    case DataType::kUInt16: f(uint16_t{}); return true;
    case DataType::kUInt32: f(uint32_t{}); return true;
    case DataType::kUInt64: f(uint64_t{}); return true;
    default: return false;
  }
}
template <class F>
bool DispatchNumeric(DataType dt, F&& f) {
  return DispatchFloat(dt, f) || DispatchInteger(dt, f);
}
// Numeric types plus bool: for data-movement ops that only copy elements.
template <class F>
bool DispatchAll(DataType dt, F&& f) {
  if (dt == DataType::kBool) {
    f(bool{});
    return true;
  }
  return DispatchNumeric(dt, f);
}

// Copies elements of any dtype (strings included) from src[src_off] to
// dst[dst_off]; for data-movement ops (Gather, Transpose, Concat, ...).
class ElementCopier {
 public:
  ElementCopier(const Tensor& src, Tensor& dst);
  void Copy(int64_t src_off, int64_t dst_off) const;

 private:
  const uint8_t* src_;
  uint8_t* dst_;
  const std::vector<std::string>* src_str_ = nullptr;
  std::vector<std::string>* dst_str_ = nullptr;
  size_t size_;
};

// Output 0 gets input 0's type and shape (most unary ops).
Status InferSameAsInput(InferContext& ctx);

// The node has min_inputs..max_inputs inputs and one output; else an error that says what it `expects`.
Status CheckFusedArity(const NodeContext& ctx, size_t min_inputs, size_t max_inputs, const char* expects);

// A value of `scratch` (a fused node's scratch graph of the ops it fuses) with the type of n's input i, no
// data; nullptr when that input is omitted.
Value* ScratchInput(Graph& scratch, const Node& n, size_t i);

// A fused node's shape inference through an op it fuses: `infer` on `part`, a node of a scratch graph whose
// input values carry the node's input types; part's outputs then carry the inferred types.
Status InferPart(Status (*infer)(InferContext&), Node& part, int64_t opset);

// A fused node's CPU reference through an op it fuses (kiln.Im2ColConv, kiln.GateMulNhwc): runs `run` on
// `part`, a node of a scratch graph, with `inputs` and returns its output 0, which must be a tensor (else an
// Internal error naming `fused` and `what`).
Expected<RtValue> RunPart(Status (*run)(RunContext&), const Node& part, int64_t opset,
                          std::vector<const RtValue*> inputs, const Node& fused, const char* what);

}  // namespace kiln
