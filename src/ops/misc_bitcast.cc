// BitCast: reinterprets each element's bits as another type of the same
// width (little endian, as kiln holds tensors).
#include <cstring>

#include "ops/op_table.h"

namespace kiln {
namespace ops {
namespace {

Expected<DataType> BitCastTarget(const NodeContext& ctx, DataType from) {
  if (!ctx.has_attr("to")) return ctx.Error("needs attribute 'to'");
  int64_t to_v = ctx.attr_int("to", 0);
  if (!IsValidDataType(static_cast<int32_t>(to_v)) || to_v == 0)
    return ctx.Error("'to' is not a valid data type: " + std::to_string(to_v));
  DataType to = static_cast<DataType>(to_v);
  if (to == DataType::kString || from == DataType::kString) return ctx.Error("BitCast does not take strings");
  if (from != DataType::kUndefined && ElementBits(from) != ElementBits(to))
    return ctx.Error("cannot reinterpret " + std::string(DataTypeName(from)) + " (" +
                     std::to_string(ElementBits(from)) + " bits) as " + std::string(DataTypeName(to)) + " (" +
                     std::to_string(ElementBits(to)) + " bits)");
  return to;
}

}  // namespace

Status InferBitCast(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(DataType to, BitCastTarget(ctx, ctx.input_dtype(0)));
  ctx.set_output(0, to, ctx.input_shape(0));
  return Status::Ok();
}

Status RunBitCast(RunContext& ctx) {
  const Tensor& x = ctx.input(0);
  KILN_ASSIGN_OR_RETURN(DataType to, BitCastTarget(ctx, x.dtype()));
  Tensor y(to, x.dims());
  const int bits = ElementBits(to);
  if (bits >= 8) {
    if (x.nbytes()) std::memcpy(y.mutable_raw(), x.raw(), x.nbytes());
  } else {
    // Sub-byte types are held one per byte: keep the low bits, sign-extend
    // for signed targets.
    const uint8_t* src = static_cast<const uint8_t*>(x.raw());
    uint8_t* dst = static_cast<uint8_t*>(y.mutable_raw());
    const uint8_t mask = static_cast<uint8_t>((1u << bits) - 1u);
    const bool sign = IsSignedInteger(to);
    for (int64_t i = 0; i < x.numel(); ++i) {
      uint8_t v = src[i] & mask;
      if (sign && (v >> (bits - 1)) & 1u) v = static_cast<uint8_t>(v | ~mask);
      dst[i] = v;
    }
  }
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
