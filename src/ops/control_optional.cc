// Optional ops: Optional (wraps a tensor or sequence, or makes an empty
// optional of the `type` attribute), OptionalHasElement and
// OptionalGetElement. The latter two also take a plain tensor or sequence
// (opset 18+), which counts as a present value.
#include "ops/op_table.h"

namespace kiln {
namespace ops {

Status InferOptional(InferContext& ctx) {
  TypeInfo elem;
  if (ctx.num_inputs() > 0 && ctx.has_input(0)) {
    elem = ctx.input_type(0);
  } else {
    const Attribute* a = ctx.node().attr("type");
    if (!a || a->type != Attribute::Type::kTypeProto)
      return ctx.Error("needs an input or the type attribute");
    elem = a->type_proto;
  }
  if (elem.kind == ValueKind::kOptional) return ctx.Error("cannot wrap an optional in an optional");
  TypeInfo t = elem;
  t.kind = ValueKind::kOptional;
  t.elem_kind = elem.kind;
  ctx.set_output_type(0, t);
  return Status::Ok();
}

Status RunOptional(RunContext& ctx) {
  RtValue v;
  v.kind = ValueKind::kOptional;
  if (ctx.num_inputs() > 0 && ctx.has_input(0)) {
    const RtValue& in = ctx.input_value(0);
    if (in.kind != ValueKind::kTensor && in.kind != ValueKind::kSequence)
      return ctx.Error("input must be a tensor or a sequence");
    v.elem_kind = in.kind;
    v.tensor = in.tensor;
    v.sequence = in.sequence;
    v.present = true;
  } else {
    const Attribute* a = ctx.node().attr("type");
    if (!a || a->type != Attribute::Type::kTypeProto)
      return ctx.Error("needs an input or the type attribute");
    v.elem_kind = a->type_proto.kind;
    v.present = false;
  }
  ctx.set_output_value(0, std::move(v));
  return Status::Ok();
}

Status InferOptionalHasElement(InferContext& ctx) {
  ctx.set_output(0, DataType::kBool, Shape::Scalar());
  return Status::Ok();
}

Status RunOptionalHasElement(RunContext& ctx) {
  bool present = false;
  if (ctx.num_inputs() > 0 && ctx.has_input(0)) {
    const RtValue& in = ctx.input_value(0);
    present = in.kind != ValueKind::kOptional || in.present;
  }
  ctx.set_output(0, Tensor::FromVector<bool>(DataType::kBool, {}, {present}));
  return Status::Ok();
}

Status InferOptionalGetElement(InferContext& ctx) {
  if (ctx.num_inputs() < 1 || !ctx.has_input(0)) return ctx.Error("needs an input");
  TypeInfo t = ctx.input_type(0);
  if (t.kind == ValueKind::kOptional) {
    t.kind = t.elem_kind;
    t.elem_kind = ValueKind::kTensor;
  }
  ctx.set_output_type(0, t);
  return Status::Ok();
}

Status RunOptionalGetElement(RunContext& ctx) {
  if (ctx.num_inputs() < 1 || !ctx.has_input(0)) return ctx.Error("needs an input");
  const RtValue& in = ctx.input_value(0);
  if (in.kind != ValueKind::kOptional) {
    ctx.set_output_value(0, in);
    return Status::Ok();
  }
  if (!in.present) return ctx.Error("the optional input is empty");
  ctx.set_output_value(0, in.elem_kind == ValueKind::kSequence ? RtValue::FromSequence(in.sequence)
                                                               : RtValue::FromTensor(in.tensor));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
