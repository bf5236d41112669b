// Helpers private to the shape family; see shape_util.h.
#include "ops/shape_util.h"

#include <algorithm>
#include <cstring>

#include "ops/op_util.h"

namespace kiln {
namespace shape_ops {
namespace {

bool IsIntegerType(DataType dt) {
  return IsSignedInteger(dt) || IsUnsignedInteger(dt) || dt == DataType::kBool;
}

}  // namespace

// Dim arithmetic is canonical (core/dim_expr.h): like terms cancel there.
Dim SymSub(const Dim& a, const Dim& b) { return a - b; }

Dim SymAdd(const Dim& a, const Dim& b) { return a + b; }

std::optional<std::vector<int64_t>> ConstInts(const InferContext& ctx, size_t i) {
  if (!ctx.has_input(i)) return std::nullopt;
  const Tensor* t = ctx.input_data(i);
  if (!t || !IsIntegerType(t->dtype())) return std::nullopt;
  std::vector<int64_t> v(static_cast<size_t>(t->numel()));
  for (int64_t k = 0; k < t->numel(); ++k) v[static_cast<size_t>(k)] = t->IntAt(k);
  return v;
}

std::optional<std::vector<Dim>> SymInts(const InferContext& ctx, size_t i) {
  if (!ctx.has_input(i)) return std::nullopt;
  if (auto c = ConstInts(ctx, i)) {
    if (static_cast<int64_t>(c->size()) > kMaxSymElements) return std::nullopt;
    return ToDims(*c);
  }
  if (const std::vector<Dim>* s = ctx.input_sym(i)) return *s;
  return std::nullopt;
}

void SetIntsOutput(InferContext& ctx, size_t i, DataType dtype, const Shape& shape, std::vector<Dim> values) {
  bool all_constant =
      std::all_of(values.begin(), values.end(), [](const Dim& d) { return d.constant().has_value(); });
  if (all_constant && shape.fully_known() && (dtype == DataType::kInt64 || dtype == DataType::kInt32)) {
    Tensor t(dtype, *shape.concrete());
    if (t.numel() == static_cast<int64_t>(values.size())) {
      for (size_t k = 0; k < values.size(); ++k) {
        if (dtype == DataType::kInt64)
          t.mutable_data<int64_t>()[k] = *values[k].constant();
        else
          t.mutable_data<int32_t>()[k] = static_cast<int32_t>(*values[k].constant());
      }
      ctx.set_output_data(i, std::move(t));
      return;
    }
  }
  ctx.set_output(i, dtype, shape);
  if (static_cast<int64_t>(values.size()) <= kMaxSymElements) ctx.set_output_sym(i, std::move(values));
}

Status CheckDims(const NodeContext& ctx, const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return ctx.Error("shape " + IntsToString(dims) + " has a negative dim");
    if (d == 0) return Status::Ok();
  }
  for (int64_t d : dims) {
    if (d > kMaxElements || n > kMaxElements / d)
      return ctx.Error("shape " + IntsToString(dims) + " has too many elements");
    n *= d;
  }
  return Status::Ok();
}

namespace {
Status RequireInput(const RunContext& ctx, size_t i) {
  if (!ctx.has_input(i)) return ctx.Error("input " + std::to_string(i) + " is required");
  const RtValue& v = ctx.input_value(i);
  if (v.kind != ValueKind::kTensor || !v.tensor.defined())
    return ctx.Error("input " + std::to_string(i) + " must be a tensor");
  return Status::Ok();
}
}  // namespace

Status RequireInputs(const RunContext& ctx, size_t n) {
  for (size_t i = 0; i < n; ++i) KILN_RETURN_IF_ERROR(RequireInput(ctx, i));
  return Status::Ok();
}

Status ReadInts(const RunContext& ctx, size_t i, std::vector<int64_t>* out) {
  KILN_RETURN_IF_ERROR(RequireInput(ctx, i));
  const Tensor& t = ctx.input(i);
  if (!IsIntegerType(t.dtype()))
    return ctx.Error("input " + std::to_string(i) + " must be an integer tensor");
  *out = t.ToInt64s();
  return Status::Ok();
}

Status ReadScalarInt(const RunContext& ctx, size_t i, int64_t* out) {
  KILN_RETURN_IF_ERROR(RequireInput(ctx, i));
  const Tensor& t = ctx.input(i);
  if (t.numel() != 1) return ctx.Error("input " + std::to_string(i) + " must hold one value");
  if (!IsIntegerType(t.dtype()))
    return ctx.Error("input " + std::to_string(i) + " must be an integer tensor");
  *out = t.IntAt(0);
  return Status::Ok();
}

Dim Product(const std::vector<Dim>& dims) {
  Dim p(1);
  for (const Dim& d : dims) {
    if (d.unknown()) return Dim::Unknown();
    p = p * d;
  }
  return p;
}

Dim ExactDiv(const Dim& a, const Dim& b) {
  if (a.unknown() || b.unknown() || (b.known() && b.value() == 0)) return Dim::Unknown();
  Dim q = a.FloorDiv(b);
  if (q.unknown() || q * b != a) return Dim::Unknown();
  return q;
}

BlockCopier::BlockCopier(const Tensor& src, Tensor& dst) : size_(ElementSize(src.dtype())) {
  if (src.dtype() == DataType::kString) {
    src_str_ = &src.strings();
    dst_str_ = &dst.mutable_strings();
  } else {
    src_ = static_cast<const uint8_t*>(src.raw());
    dst_ = static_cast<uint8_t*>(dst.mutable_raw());
  }
}

void BlockCopier::Copy(int64_t src_off, int64_t dst_off, int64_t count) const {
  if (count <= 0) return;
  if (src_str_) {
    for (int64_t k = 0; k < count; ++k)
      (*dst_str_)[static_cast<size_t>(dst_off + k)] = (*src_str_)[static_cast<size_t>(src_off + k)];
    return;
  }
  std::memmove(dst_ + static_cast<size_t>(dst_off) * size_, src_ + static_cast<size_t>(src_off) * size_,
               static_cast<size_t>(count) * size_);
}

void FillWith(const Tensor& src, int64_t src_off, Tensor& dst) {
  if (dst.numel() == 0) return;
  if (src.dtype() == DataType::kString) {
    const std::string& v = src.strings()[static_cast<size_t>(src_off)];
    for (std::string& s : dst.mutable_strings()) s = v;
    return;
  }
  size_t size = ElementSize(src.dtype());
  const uint8_t* s = static_cast<const uint8_t*>(src.raw()) + static_cast<size_t>(src_off) * size;
  uint8_t* d = static_cast<uint8_t*>(dst.mutable_raw());
  for (int64_t k = 0; k < dst.numel(); ++k) std::memcpy(d + static_cast<size_t>(k) * size, s, size);
}

Tensor NumericScalar(DataType dt, double v) {
  Tensor t(dt, {});
  bool ok = DispatchAll(dt, [&](auto tag) {
    using T = decltype(tag);
    t.mutable_data<T>()[0] = FromCompute<T>(static_cast<compute_t<T>>(v));
  });
  return ok ? t : Tensor();
}

Status NormalizeAxes(const NodeContext& ctx, std::vector<int64_t>* axes, int64_t rank) {
  std::vector<bool> seen(static_cast<size_t>(std::max<int64_t>(rank, 0)), false);
  for (int64_t& a : *axes) {
    KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, a, rank, &a));
    if (seen[static_cast<size_t>(a)]) return ctx.Error("axis " + std::to_string(a) + " is repeated");
    seen[static_cast<size_t>(a)] = true;
  }
  return Status::Ok();
}

Tensor PermuteCopy(const Tensor& src, const std::vector<int64_t>& dims, const std::vector<int64_t>& perm) {
  std::vector<int64_t> strides = Strides(dims);
  std::vector<int64_t> out_dims(perm.size()), in_strides(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) {
    out_dims[i] = dims[static_cast<size_t>(perm[i])];
    in_strides[i] = strides[static_cast<size_t>(perm[i])];
  }
  Tensor out(src.dtype(), out_dims);
  ElementCopier copy(src, out);
  int64_t o = 0;
  ForEachBroadcast(out_dims, {in_strides}, [&](const std::vector<int64_t>& off) { copy.Copy(off[0], o++); });
  return out;
}

std::string IntsToString(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

}  // namespace shape_ops
}  // namespace kiln
