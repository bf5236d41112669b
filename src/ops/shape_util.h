// Helpers private to the shape family (src/ops/shape_*.cc): reading small int
// tensors (constant or symbolic) at inference time, setting shape-tensor
// outputs, canonical symbolic products, and block copies of any dtype.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/shape.h"
#include "core/tensor.h"
#include "ops/op_context.h"

namespace kiln {
namespace shape_ops {

// Largest shape tensor whose symbolic contents are tracked.
constexpr int64_t kMaxSymElements = 64;

// Contents of constant input i as int64 (int32/int64 inputs; other integer
// types converted). nullopt when the input is absent or not constant.
std::optional<std::vector<int64_t>> ConstInts(const InferContext& ctx, size_t i);
// Contents of input i as Dims: constant data (negative values as negative
// constants, Dim::Constant) or the symbolic contents. nullopt when neither is
// known. A negative constant is unknown() to whatever reads it as a dim.
std::optional<std::vector<Dim>> SymInts(const InferContext& ctx, size_t i);

// Output i is an integer tensor of `shape` holding `values` (row-major):
// a constant when every value is a constant and the dtype is int64/int32, else the
// type plus its symbolic contents (when small enough).
void SetIntsOutput(InferContext& ctx, size_t i, DataType dtype, const Shape& shape, std::vector<Dim> values);

// Largest tensor (in elements) the shape ops create from user-given dims.
constexpr int64_t kMaxElements = int64_t{1} << 40;
// Checks that dims (from data: Expand/Tile/ConstantOfShape/Pad ...) are
// non-negative and describe at most kMaxElements elements.
Status CheckDims(const NodeContext& ctx, const std::vector<int64_t>& dims);

// Inputs 0..n-1 are given and are tensors (the executor does not check
// input counts against the schema).
Status RequireInputs(const RunContext& ctx, size_t n);

// Int list of tensor input i at run time (any integer dtype).
Status ReadInts(const RunContext& ctx, size_t i, std::vector<int64_t>* out);
// Scalar (or 1-element) integer input i at run time.
Status ReadScalarInt(const RunContext& ctx, size_t i, int64_t* out);

// Product of dims in Dim's canonical form: symbols sorted, then the known
// coefficient ("batch*seq*12"). Unknown if any dim is unknown.
Dim Product(const std::vector<Dim>& dims);
// a / b when it is exact: known / known, or symbolic factors cancelling
// ("batch*150528" / "batch" = 150528). Unknown otherwise.
Dim ExactDiv(const Dim& a, const Dim& b);
// a - b and a + b; Dim's arithmetic cancels symbolic terms ("(past+seq)" -
// "past" = "seq", "seq" - "seq-1" = 1); a negative constant gives an unknown
// dim.
Dim SymSub(const Dim& a, const Dim& b);
Dim SymAdd(const Dim& a, const Dim& b);

// Integer contents as Dims (negative values as negative constants).
inline std::vector<Dim> ToDims(const std::vector<int64_t>& v) {
  std::vector<Dim> d;
  d.reserve(v.size());
  for (int64_t x : v) d.push_back(Dim::Constant(x));
  return d;
}

// Copies runs of contiguous elements of any dtype (strings included).
class BlockCopier {
 public:
  BlockCopier(const Tensor& src, Tensor& dst);
  void Copy(int64_t src_off, int64_t dst_off, int64_t count) const;

 private:
  const uint8_t* src_ = nullptr;
  uint8_t* dst_ = nullptr;
  const std::vector<std::string>* src_str_ = nullptr;
  std::vector<std::string>* dst_str_ = nullptr;
  size_t size_;
};

// Fills every element of `dst` with element `src_off` of `src` (same dtype).
void FillWith(const Tensor& src, int64_t src_off, Tensor& dst);

// A scalar of numeric/bool dtype `dt` holding `v` (rounded as the type
// does); undefined for other types (strings, float8, ...).
Tensor NumericScalar(DataType dt, double v);

// Normalizes every axis of `axes` for `rank`; error on out-of-range or repeats.
Status NormalizeAxes(const NodeContext& ctx, std::vector<int64_t>* axes, int64_t rank);

// out = transpose(src viewed as `dims`, perm) (any dtype).
Tensor PermuteCopy(const Tensor& src, const std::vector<int64_t>& dims, const std::vector<int64_t>& perm);

// "[1,2,3]" for messages.
std::string IntsToString(const std::vector<int64_t>& v);

}  // namespace shape_ops
}  // namespace kiln
