// Common types and axis slicing / stacking for the control, sequence and
// optional ops (see control_util.h).
#include "ops/control_util.h"

#include "ops/op_util.h"

namespace kiln {
namespace ctrl {

Shape CommonShape(const Shape& a, const Shape& b) {
  if (!a.rank_known() || !b.rank_known() || a.rank() != b.rank()) return Shape::Unranked();
  std::vector<Dim> dims;
  for (int i = 0; i < a.rank(); ++i) dims.push_back(a[i] == b[i] ? a[i] : Dim::Unknown());
  return Shape(std::move(dims));
}

Expected<TypeInfo> CommonType(const TypeInfo& a, const TypeInfo& b, const std::string& what) {
  if (a.kind != b.kind || (a.kind == ValueKind::kOptional && a.elem_kind != b.elem_kind)) {
    if (!a.known() || !b.known()) return TypeInfo{};
    return InvalidArgument(what + " differ in kind: " + a.ToString() + " vs " + b.ToString());
  }
  TypeInfo out;
  out.kind = a.kind;
  out.elem_kind = a.elem_kind;
  if (!a.known() || !b.known()) return out;
  if (a.dtype != b.dtype)
    return InvalidArgument(what + " differ in element type: " + a.ToString() + " vs " + b.ToString());
  out.dtype = a.dtype;
  out.shape = CommonShape(a.shape, b.shape);
  return out;
}

TypeInfo TypeOfValue(const RtValue& v) {
  TypeInfo t;
  t.kind = v.kind;
  t.elem_kind = v.elem_kind;
  bool is_seq = v.kind == ValueKind::kSequence ||
                (v.kind == ValueKind::kOptional && v.elem_kind == ValueKind::kSequence);
  if (v.kind == ValueKind::kOptional && !v.present) return t;
  if (!is_seq) {
    t.dtype = v.tensor.dtype();
    t.shape = v.tensor.shape();
    return t;
  }
  if (v.sequence.empty()) return t;
  t.dtype = v.sequence[0].dtype();
  t.shape = v.sequence[0].shape();
  for (const Tensor& e : v.sequence) t.shape = CommonShape(t.shape, e.shape());
  return t;
}

namespace {

int64_t Product(const std::vector<int64_t>& dims, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to; ++i) p *= dims[i];
  return p;
}

}  // namespace

Tensor SliceAxis(const Tensor& t, int axis, int64_t start, int64_t len) {
  std::vector<int64_t> dims = t.dims();
  const size_t ax = static_cast<size_t>(axis);
  const int64_t outer = Product(dims, 0, ax);
  const int64_t inner = Product(dims, ax + 1, dims.size());
  const int64_t n = dims[ax];
  dims[ax] = len;
  Tensor out(t.dtype(), dims);
  if (out.numel() == 0) return out;
  ElementCopier copy(t, out);
  int64_t dst = 0;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = start; k < start + len; ++k)
      for (int64_t j = 0; j < inner; ++j) copy.Copy((o * n + k) * inner + j, dst++);
  return out;
}

Tensor TakeAxis(const Tensor& t, int axis, int64_t index) {
  Tensor s = SliceAxis(t, axis, index, 1);
  std::vector<int64_t> dims = t.dims();
  dims.erase(dims.begin() + axis);
  return s.Reshaped(dims);
}

Expected<Tensor> ConcatAxis(const std::vector<Tensor>& parts, int axis) {
  if (parts.empty()) return InvalidArgument("nothing to concatenate");
  const Tensor& first = parts[0];
  const size_t ax = static_cast<size_t>(axis);
  if (axis < 0 || axis >= first.rank())
    return InvalidArgument("axis " + std::to_string(axis) + " is out of range for " + first.Describe());
  std::vector<int64_t> dims = first.dims();
  int64_t total = 0;
  for (const Tensor& p : parts) {
    bool same = p.dtype() == first.dtype() && p.rank() == first.rank();
    for (size_t d = 0; same && d < dims.size(); ++d)
      if (d != ax && p.dims()[d] != dims[d]) same = false;
    if (!same)
      return InvalidArgument("cannot concatenate " + p.Describe() + " with " + first.Describe() +
                             " on axis " + std::to_string(axis));
    total += p.dims()[ax];
  }
  dims[ax] = total;
  Tensor out(first.dtype(), dims);
  if (out.numel() == 0) return out;
  const int64_t outer = Product(dims, 0, ax);
  const int64_t inner = Product(dims, ax + 1, dims.size());
  int64_t offset = 0;  // position along axis
  for (const Tensor& p : parts) {
    const int64_t n = p.dims()[ax];
    if (p.numel() > 0) {
      ElementCopier copy(p, out);
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t k = 0; k < n; ++k)
          for (int64_t j = 0; j < inner; ++j)
            copy.Copy((o * n + k) * inner + j, (o * total + offset + k) * inner + j);
    }
    offset += n;
  }
  return out;
}

Expected<Tensor> StackAxis(const std::vector<Tensor>& parts, int axis) {
  if (parts.empty()) return InvalidArgument("nothing to stack");
  std::vector<Tensor> expanded;
  expanded.reserve(parts.size());
  for (const Tensor& p : parts) {
    if (p.dims() != parts[0].dims() || p.dtype() != parts[0].dtype())
      return InvalidArgument("cannot stack " + p.Describe() + " with " + parts[0].Describe());
    if (axis < 0 || axis > p.rank())
      return InvalidArgument("axis " + std::to_string(axis) + " is out of range to stack " + p.Describe());
    std::vector<int64_t> dims = p.dims();
    dims.insert(dims.begin() + axis, 1);
    expanded.push_back(p.Reshaped(dims));
  }
  return ConcatAxis(expanded, axis);
}

bool TensorTruth(const Tensor& t) {
  if (t.numel() < 1) return false;
  if (t.dtype() == DataType::kBool) return t.data<uint8_t>()[0] != 0;
  return t.ScalarAt(0) != 0.0;
}

}  // namespace ctrl
}  // namespace kiln
