// Shared helpers of the binary op family (see binary_util.h).
#include "ops/binary_util.h"

#include <string>

namespace kiln {
namespace binary {

Status OutputDims(const RunContext& ctx, const std::vector<const Tensor*>& ins, std::vector<int64_t>* out) {
  std::vector<std::vector<int64_t>> dims;
  dims.reserve(ins.size());
  for (const Tensor* t : ins) dims.push_back(t->dims());
  if (!BroadcastDims(dims, out)) return ctx.Error("input shapes cannot be broadcast together");
  return Status::Ok();
}

bool IsLegacyBroadcast(const NodeContext& ctx) {
  return ctx.opset() < 7 && ctx.attr_int("broadcast", 0) != 0;
}

Tensor LegacyB(const NodeContext& ctx, const Tensor& a, const Tensor& b) {
  if (!IsLegacyBroadcast(ctx)) return b;
  const int64_t ra = a.rank();
  const int64_t rb = b.rank();
  int64_t axis = ctx.has_attr("axis") ? ctx.attr_int("axis", 0) : ra - rb;
  if (axis < 0) axis += ra;
  if (axis < 0 || axis + rb > ra) return b;
  std::vector<int64_t> dims(static_cast<size_t>(axis), 1);
  dims.insert(dims.end(), b.dims().begin(), b.dims().end());
  dims.resize(static_cast<size_t>(ra), 1);
  return b.Reshaped(dims);
}

namespace {

template <class Ctx>
Status CheckCount(const Ctx& ctx, size_t min_inputs, size_t max_inputs) {
  if (ctx.num_inputs() < min_inputs || ctx.num_inputs() > max_inputs) {
    return ctx.Error("expects " + std::to_string(min_inputs) +
                     (max_inputs == min_inputs ? "" : " to " + std::to_string(max_inputs)) + " inputs, got " +
                     std::to_string(ctx.num_inputs()));
  }
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    if (!ctx.has_input(i)) return ctx.Error("input " + std::to_string(i) + " is required");
  return Status::Ok();
}

}  // namespace

Status CheckInputs(const InferContext& ctx, size_t min_inputs, size_t max_inputs, bool same_dtype) {
  KILN_RETURN_IF_ERROR(CheckCount(ctx, min_inputs, max_inputs));
  if (!same_dtype) return Status::Ok();
  DataType dt = DataType::kUndefined;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    DataType x = ctx.input_dtype(i);
    if (x == DataType::kUndefined) continue;
    if (dt != DataType::kUndefined && x != dt)
      return ctx.Error("inputs must have the same element type, got " + std::string(DataTypeName(dt)) +
                       " and " + std::string(DataTypeName(x)));
    dt = x;
  }
  return Status::Ok();
}

Status CheckInputs(const RunContext& ctx, size_t min_inputs, size_t max_inputs, bool same_dtype) {
  KILN_RETURN_IF_ERROR(CheckCount(ctx, min_inputs, max_inputs));
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    if (ctx.input_value(i).kind != ValueKind::kTensor) return ctx.Error("inputs must be tensors");
  if (!same_dtype) return Status::Ok();
  for (size_t i = 1; i < ctx.num_inputs(); ++i) {
    if (ctx.input(i).dtype() != ctx.input(0).dtype())
      return ctx.Error("inputs must have the same element type");
  }
  return Status::Ok();
}

Status InferBroadcastShape(const InferContext& ctx, size_t first, Shape* out) {
  std::vector<Shape> shapes;
  for (size_t i = first; i < ctx.num_inputs(); ++i) shapes.push_back(ctx.input_shape(i));
  Expected<Shape> s = BroadcastShapes(shapes);
  if (!s.ok()) return ctx.Error(s.status().message());
  *out = std::move(*s);
  return Status::Ok();
}

std::optional<std::vector<SymInt>> ReadSymInts(const InferContext& ctx, size_t i) {
  constexpr int64_t kMaxElements = 64;
  // Constant data first: it covers every integer type and bool.
  const Tensor* t = ctx.input_data(i);
  if (t && t->numel() <= kMaxElements && t->rank() <= 1) {
    DataType dt = t->dtype();
    if ((IsSignedInteger(dt) || IsUnsignedInteger(dt) || dt == DataType::kBool) && dt != DataType::kUInt64) {
      std::vector<SymInt> out;
      for (int64_t k = 0; k < t->numel(); ++k) out.push_back(SymInt::Const(t->IntAt(k)));
      return out;
    }
  }
  if (const std::vector<Dim>* sym = ctx.input_sym(i)) {
    std::vector<SymInt> out;
    for (const Dim& d : *sym) out.push_back(SymInt::FromDim(d));
    return out;
  }
  return std::nullopt;
}

void WriteSymInts(InferContext& ctx, const std::vector<SymInt>& vals) {
  std::vector<Dim> dims;
  dims.reserve(vals.size());
  for (const SymInt& v : vals)
    dims.push_back(v.value ? Dim::Constant(*v.value) : v.dim);
  ctx.set_output_sym(0, std::move(dims));
}

}  // namespace binary
}  // namespace kiln
