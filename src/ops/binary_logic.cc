// Comparison, logical and bitwise binary ops with numpy broadcasting: Equal,
// Less, Greater, LessOrEqual, GreaterOrEqual (-> bool), And, Or, Xor, BitShift,
// BitwiseAnd, BitwiseOr, BitwiseXor, and the ternary Where.
#include <string>

#include "ops/binary_util.h"
#include "ops/bit_shift.h"
#include "ops/op_table.h"

namespace kiln {
namespace ops {
namespace {

using binary::SymInt;

enum class Cmp { kEq, kLt, kGt, kLe, kGe };

template <class C>
bool Compare(Cmp op, C a, C b) {
  switch (op) {
    case Cmp::kEq:
      return a == b;
    case Cmp::kLt:
      return a < b;
    case Cmp::kGt:
      return a > b;
    case Cmp::kLe:
      return a <= b;
    case Cmp::kGe:
      return a >= b;
  }
  return false;
}

// Compares two symbolic ints where the answer is certain: both constant, the
// same symbol, or a dim (>= 0) against a negative constant.
SymInt CompareSym(Cmp op, const SymInt& a, const SymInt& b) {
  const SymInt kUnknown{std::nullopt, Dim::Unknown()};
  if (a.value && b.value) return SymInt::Const(Compare(op, *a.value, *b.value) ? 1 : 0);
  if (!a.value && !b.value && a.dim.symbolic() && a.dim == b.dim) {
    return SymInt::Const(op == Cmp::kEq || op == Cmp::kLe || op == Cmp::kGe ? 1 : 0);
  }
  // A dim is >= 0: compare against a negative constant c as if it were 0 > c.
  if (!a.value && !a.dim.unknown() && b.value && *b.value < 0)
    return SymInt::Const(Compare(op, 0, -1) ? 1 : 0);
  if (!b.value && !b.dim.unknown() && a.value && *a.value < 0)
    return SymInt::Const(Compare(op, -1, 0) ? 1 : 0);
  return kUnknown;
}

Status InferCompare(InferContext& ctx, Cmp op) {
  KILN_RETURN_IF_ERROR(binary::CheckInputs(ctx, 2, 2, true));
  Shape shape;
  if (binary::IsLegacyBroadcast(ctx)) {
    shape = ctx.input_shape(0);
  } else {
    KILN_RETURN_IF_ERROR(binary::InferBroadcastShape(ctx, 0, &shape));
  }
  ctx.set_output(0, DataType::kBool, shape);
  binary::PropagateSym(ctx, shape, [op](const std::vector<SymInt>& v) { return CompareSym(op, v[0], v[1]); });
  return Status::Ok();
}

Status RunCompare(RunContext& ctx, Cmp op) {
  KILN_RETURN_IF_ERROR(binary::CheckInputs(ctx, 2, 2, true));
  const DataType dt = ctx.input(0).dtype();
  if (dt == DataType::kString) {
    if (op != Cmp::kEq) return ctx.UnsupportedError("strings can only be compared for equality");
    const Tensor& a = ctx.input(0);
    Tensor b = binary::LegacyB(ctx, a, ctx.input(1));
    std::vector<int64_t> dims;
    KILN_RETURN_IF_ERROR(binary::OutputDims(ctx, {&a, &b}, &dims));
    Tensor out(DataType::kBool, dims);
    bool* po = out.mutable_data<bool>();
    const auto& sa = a.strings();
    const auto& sb = b.strings();
    int64_t i = 0;
    ForEachBroadcast(dims, {BroadcastStrides(a.dims(), dims), BroadcastStrides(b.dims(), dims)},
                     [&](const std::vector<int64_t>& off) {
                       po[i++] = sa[static_cast<size_t>(off[0])] == sb[static_cast<size_t>(off[1])];
                     });
    ctx.set_output(0, std::move(out));
    return Status::Ok();
  }
  Status st = Status::Ok();
  bool ok = DispatchAll(dt, [&](auto tag) {
    using T = decltype(tag);
    st = binary::Run2<T, T, bool>(ctx, DataType::kBool,
                                  [op](T a, T b) { return Compare(op, ToCompute(a), ToCompute(b)); });
  });
  if (!ok) return ctx.UnsupportedError("element type " + std::string(DataTypeName(dt)) + " is not supported");
  return st;
}

enum class Logic { kAnd, kOr, kXor };

Status InferLogic(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(binary::CheckInputs(ctx, 2, 2, true));
  Shape shape;
  if (binary::IsLegacyBroadcast(ctx)) {
    shape = ctx.input_shape(0);
  } else {
    KILN_RETURN_IF_ERROR(binary::InferBroadcastShape(ctx, 0, &shape));
  }
  ctx.set_output(0, DataType::kBool, shape);
  return Status::Ok();
}

Status RunLogic(RunContext& ctx, Logic op) {
  KILN_RETURN_IF_ERROR(binary::CheckInputs(ctx, 2, 2, true));
  if (ctx.input(0).dtype() != DataType::kBool) return ctx.Error("inputs must be bool");
  return binary::Run2<bool, bool, bool>(ctx, DataType::kBool, [op](bool a, bool b) {
    switch (op) {
      case Logic::kAnd:
        return a && b;
      case Logic::kOr:
        return a || b;
      case Logic::kXor:
        return a != b;
    }
    return false;
  });
}

enum class Bitwise { kAnd, kOr, kXor };

Status RunBitwise(RunContext& ctx, Bitwise op) {
  KILN_RETURN_IF_ERROR(binary::CheckInputs(ctx, 2, 2, true));
  const DataType dt = ctx.input(0).dtype();
  Status st = Status::Ok();
  bool ok = DispatchInteger(dt, [&](auto tag) {
    using T = decltype(tag);
    st = binary::Run2<T, T, T>(ctx, dt, [op](T a, T b) -> T {
      switch (op) {
        case Bitwise::kAnd:
          return static_cast<T>(a & b);
        case Bitwise::kOr:
          return static_cast<T>(a | b);
        case Bitwise::kXor:
          return static_cast<T>(a ^ b);
      }
      return 0;
    });
  });
  if (!ok) return ctx.UnsupportedError("element type " + std::string(DataTypeName(dt)) + " is not supported");
  return st;
}

}  // namespace

Status InferEqual(InferContext& ctx) { return InferCompare(ctx, Cmp::kEq); }
Status InferLess(InferContext& ctx) { return InferCompare(ctx, Cmp::kLt); }
Status InferGreater(InferContext& ctx) { return InferCompare(ctx, Cmp::kGt); }
Status InferLessOrEqual(InferContext& ctx) { return InferCompare(ctx, Cmp::kLe); }
Status InferGreaterOrEqual(InferContext& ctx) { return InferCompare(ctx, Cmp::kGe); }
Status RunEqual(RunContext& ctx) { return RunCompare(ctx, Cmp::kEq); }
Status RunLess(RunContext& ctx) { return RunCompare(ctx, Cmp::kLt); }
Status RunGreater(RunContext& ctx) { return RunCompare(ctx, Cmp::kGt); }
Status RunLessOrEqual(RunContext& ctx) { return RunCompare(ctx, Cmp::kLe); }
Status RunGreaterOrEqual(RunContext& ctx) { return RunCompare(ctx, Cmp::kGe); }

Status InferAnd(InferContext& ctx) { return InferLogic(ctx); }
Status InferOr(InferContext& ctx) { return InferLogic(ctx); }
Status InferXor(InferContext& ctx) { return InferLogic(ctx); }
Status RunAnd(RunContext& ctx) { return RunLogic(ctx, Logic::kAnd); }
Status RunOr(RunContext& ctx) { return RunLogic(ctx, Logic::kOr); }
Status RunXor(RunContext& ctx) { return RunLogic(ctx, Logic::kXor); }

// BitShift and the Bitwise* ops keep the input type.
Status InferBitwise(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(binary::CheckInputs(ctx, 2, 2, true));
  Shape shape;
  KILN_RETURN_IF_ERROR(binary::InferBroadcastShape(ctx, 0, &shape));
  ctx.set_output(0, ctx.input_dtype(0), shape);
  return Status::Ok();
}

Status RunBitwiseAnd(RunContext& ctx) { return RunBitwise(ctx, Bitwise::kAnd); }
Status RunBitwiseOr(RunContext& ctx) { return RunBitwise(ctx, Bitwise::kOr); }
Status RunBitwiseXor(RunContext& ctx) { return RunBitwise(ctx, Bitwise::kXor); }

Status RunBitShift(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(binary::CheckInputs(ctx, 2, 2, true));
  const std::string dir = ctx.attr_string("direction");
  if (dir != "LEFT" && dir != "RIGHT")
    return ctx.Error("attribute direction must be LEFT or RIGHT, got '" + dir + "'");
  const bool left = dir == "LEFT";
  const DataType dt = ctx.input(0).dtype();
  Status st = Status::Ok();
  bool ok = DispatchInteger(dt, [&](auto tag) {
    using T = decltype(tag);
    st = binary::Run2<T, T, T>(ctx, dt, [left](T x, T s) { return BitShift(x, s, left); });
  });
  if (!ok) return ctx.UnsupportedError("element type " + std::string(DataTypeName(dt)) + " is not supported");
  return st;
}

Status InferWhere(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(binary::CheckInputs(ctx, 3, 3, false));
  if (ctx.input_dtype(0) != DataType::kUndefined && ctx.input_dtype(0) != DataType::kBool)
    return ctx.Error("condition must be bool");
  DataType dt = ctx.input_dtype(1);
  if (dt == DataType::kUndefined) dt = ctx.input_dtype(2);
  if (ctx.input_dtype(1) != DataType::kUndefined && ctx.input_dtype(2) != DataType::kUndefined &&
      ctx.input_dtype(1) != ctx.input_dtype(2))
    return ctx.Error("X and Y must have the same element type");
  Shape shape;
  KILN_RETURN_IF_ERROR(binary::InferBroadcastShape(ctx, 0, &shape));
  ctx.set_output(0, dt, shape);
  if (dt == DataType::kInt64 || dt == DataType::kInt32) {
    binary::PropagateSym(ctx, shape, [](const std::vector<SymInt>& v) {
      if (v[0].value) return *v[0].value ? v[1] : v[2];
      if (v[1].value && v[2].value && *v[1].value == *v[2].value) return v[1];
      if (!v[1].value && !v[2].value && v[1].dim.symbolic() && v[1].dim == v[2].dim) return v[1];
      return SymInt{std::nullopt, Dim::Unknown()};
    });
  }
  return Status::Ok();
}

Status RunWhere(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(binary::CheckInputs(ctx, 3, 3, false));
  const Tensor& c = ctx.input(0);
  const Tensor& x = ctx.input(1);
  const Tensor& y = ctx.input(2);
  if (c.dtype() != DataType::kBool) return ctx.Error("condition must be bool");
  if (x.dtype() != y.dtype()) return ctx.Error("X and Y must have the same element type");
  std::vector<int64_t> dims;
  KILN_RETURN_IF_ERROR(binary::OutputDims(ctx, {&c, &x, &y}, &dims));
  Tensor out(x.dtype(), dims);
  ElementCopier from_x(x, out);
  ElementCopier from_y(y, out);
  const bool* pc = c.data<bool>();
  int64_t i = 0;
  ForEachBroadcast(
      dims,
      {BroadcastStrides(c.dims(), dims), BroadcastStrides(x.dims(), dims), BroadcastStrides(y.dims(), dims)},
      [&](const std::vector<int64_t>& off) {
        if (pc[off[0]])
          from_x.Copy(off[1], i);
        else
          from_y.Copy(off[2], i);
        ++i;
      });
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
