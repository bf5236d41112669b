// Sequence ops: SequenceEmpty, SequenceConstruct, SequenceInsert, SequenceAt,
// SequenceErase, SequenceLength, SplitToSequence, ConcatFromSequence and
// SequenceMap (runs its body once per element). A sequence's TypeInfo holds
// the element type and the shape every element fits (see CommonShape).
#include "ops/control_util.h"
#include "ops/op_table.h"
#include "ops/op_util.h"

namespace kiln {
namespace ops {
namespace {

TypeInfo SequenceType(DataType dt, Shape elem_shape) {
  TypeInfo t;
  t.kind = ValueKind::kSequence;
  t.dtype = dt;
  t.shape = std::move(elem_shape);
  return t;
}

// Sequence input i, or an error naming it.
Expected<const std::vector<Tensor>*> SeqInput(const RunContext& ctx, size_t i) {
  if (!ctx.has_input(i) || ctx.input_value(i).kind != ValueKind::kSequence)
    return ctx.Error("input " + std::to_string(i) + " must be a sequence");
  return &ctx.input_value(i).sequence;
}

Status CheckSeqInputType(const InferContext& ctx, size_t i) {
  if (!ctx.has_input(i)) return ctx.Error("input " + std::to_string(i) + " is missing");
  const TypeInfo& t = ctx.input_type(i);
  if (t.known() && t.kind != ValueKind::kSequence)
    return ctx.Error("input " + std::to_string(i) + " must be a sequence, got " + t.ToString());
  return Status::Ok();
}

// Position input (scalar or 1-element int32/int64) checked against [-n, n-1]
// (or [-n, n] when `allow_end`), normalised to [0, n].
Expected<int64_t> Position(const RunContext& ctx, size_t i, int64_t n, bool allow_end, int64_t def) {
  if (!ctx.has_input(i)) return def;
  const Tensor& p = ctx.input(i);
  if (p.numel() != 1 || (p.dtype() != DataType::kInt64 && p.dtype() != DataType::kInt32))
    return ctx.Error("position must be a single int32/int64 value");
  int64_t pos = p.IntAt(0);
  const int64_t hi = allow_end ? n : n - 1;
  if (pos < -n || pos > hi)
    return ctx.Error("position " + std::to_string(pos) + " is out of range for a sequence of " +
                     std::to_string(n) + " tensors");
  return pos < 0 ? pos + n : pos;
}

}  // namespace

// ---------------------------------------------------------------- SequenceEmpty

Status InferSequenceEmpty(InferContext& ctx) {
  const int64_t dt = ctx.attr_int("dtype", 1);
  if (dt <= 0 || !IsValidDataType(static_cast<int32_t>(dt)))
    return ctx.Error("dtype " + std::to_string(dt) + " is not valid");
  ctx.set_output_type(0, SequenceType(static_cast<DataType>(dt), Shape::Unranked()));
  return Status::Ok();
}

Status RunSequenceEmpty(RunContext& ctx) {
  ctx.set_output_value(0, RtValue::FromSequence({}));
  return Status::Ok();
}

// ---------------------------------------------------------------- SequenceConstruct

Status InferSequenceConstruct(InferContext& ctx) {
  if (ctx.num_inputs() < 1) return ctx.Error("needs at least one input");
  TypeInfo elem = ctx.input_type(0);
  for (size_t i = 1; i < ctx.num_inputs(); ++i) {
    auto t = ctrl::CommonType(elem, ctx.input_type(i), "inputs");
    if (!t.ok()) return ctx.Error(t.status().message());
    elem = *t;
  }
  ctx.set_output_type(0, SequenceType(elem.dtype, elem.shape));
  return Status::Ok();
}

Status RunSequenceConstruct(RunContext& ctx) {
  std::vector<Tensor> seq;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i) || ctx.input_value(i).kind != ValueKind::kTensor)
      return ctx.Error("input " + std::to_string(i) + " must be a tensor");
    if (i > 0 && ctx.input(i).dtype() != ctx.input(0).dtype())
      return ctx.Error("inputs differ in element type");
    seq.push_back(ctx.input(i));
  }
  ctx.set_output_value(0, RtValue::FromSequence(std::move(seq)));
  return Status::Ok();
}

// ---------------------------------------------------------------- SequenceInsert

Status InferSequenceInsert(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(CheckSeqInputType(ctx, 0));
  if (!ctx.has_input(1)) return ctx.Error("needs the tensor to insert");
  const TypeInfo& seq = ctx.input_type(0);
  const TypeInfo& t = ctx.input_type(1);
  if (seq.known() && t.known() && seq.dtype != t.dtype)
    return ctx.Error("tensor type " + t.ToString() + " does not match the sequence's " + seq.ToString());
  DataType dt = seq.known() ? seq.dtype : t.dtype;
  ctx.set_output_type(0, SequenceType(dt, ctrl::CommonShape(seq.shape, t.shape)));
  return Status::Ok();
}

Status RunSequenceInsert(RunContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const std::vector<Tensor>* seq, SeqInput(ctx, 0));
  if (!ctx.has_input(1) || ctx.input_value(1).kind != ValueKind::kTensor)
    return ctx.Error("input 1 must be a tensor");
  const Tensor& t = ctx.input(1);
  if (!seq->empty() && (*seq)[0].dtype() != t.dtype())
    return ctx.Error("tensor type does not match the sequence");
  const int64_t n = static_cast<int64_t>(seq->size());
  KILN_ASSIGN_OR_RETURN(int64_t pos, Position(ctx, 2, n, true, n));
  std::vector<Tensor> out = *seq;
  out.insert(out.begin() + pos, t);
  ctx.set_output_value(0, RtValue::FromSequence(std::move(out)));
  return Status::Ok();
}

// ---------------------------------------------------------------- SequenceAt

Status InferSequenceAt(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(CheckSeqInputType(ctx, 0));
  const TypeInfo& seq = ctx.input_type(0);
  ctx.set_output(0, seq.dtype, seq.shape);
  return Status::Ok();
}

Status RunSequenceAt(RunContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const std::vector<Tensor>* seq, SeqInput(ctx, 0));
  if (!ctx.has_input(1)) return ctx.Error("needs a position");
  KILN_ASSIGN_OR_RETURN(int64_t pos, Position(ctx, 1, static_cast<int64_t>(seq->size()), false, 0));
  ctx.set_output(0, (*seq)[static_cast<size_t>(pos)]);
  return Status::Ok();
}

// ---------------------------------------------------------------- SequenceErase

Status InferSequenceErase(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(CheckSeqInputType(ctx, 0));
  ctx.set_output_type(0, ctx.input_type(0));
  return Status::Ok();
}

Status RunSequenceErase(RunContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const std::vector<Tensor>* seq, SeqInput(ctx, 0));
  const int64_t n = static_cast<int64_t>(seq->size());
  if (n == 0) return ctx.Error("cannot erase from an empty sequence");
  KILN_ASSIGN_OR_RETURN(int64_t pos, Position(ctx, 1, n, false, n - 1));
  std::vector<Tensor> out = *seq;
  out.erase(out.begin() + pos);
  ctx.set_output_value(0, RtValue::FromSequence(std::move(out)));
  return Status::Ok();
}

// ---------------------------------------------------------------- SequenceLength

Status InferSequenceLength(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(CheckSeqInputType(ctx, 0));
  ctx.set_output(0, DataType::kInt64, Shape::Scalar());
  return Status::Ok();
}

Status RunSequenceLength(RunContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const std::vector<Tensor>* seq, SeqInput(ctx, 0));
  ctx.set_output(0, Tensor::ScalarInt64(static_cast<int64_t>(seq->size())));
  return Status::Ok();
}

// ---------------------------------------------------------------- SplitToSequence
// split omitted: pieces of 1 (axis dropped unless keepdims); scalar split:
// pieces of that size (the last may be shorter); 1-D split: the given sizes.

Status InferSplitToSequence(InferContext& ctx) {
  const TypeInfo& in = ctx.input_type(0);
  const Shape& s = in.shape;
  if (!s.rank_known()) {
    ctx.set_output_type(0, SequenceType(in.dtype, Shape::Unranked()));
    return Status::Ok();
  }
  int64_t axis = 0;
  KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", 0), s.rank(), &axis));
  std::vector<Dim> dims = s.dims();
  Dim& d = dims[static_cast<size_t>(axis)];
  if (!ctx.has_input(1)) {
    if (ctx.attr_int("keepdims", 1) == 0)
      dims.erase(dims.begin() + axis);
    else
      d = Dim(1);
  } else if (const Tensor* split = ctx.input_data(1)) {
    if (split->rank() == 0) {
      int64_t size = split->IntAt(0);
      if (size <= 0) return ctx.Error("split must be positive");
      d = (d.known() && d.value() % size == 0) ? Dim(size) : Dim::Unknown();
    } else {
      std::vector<int64_t> sizes = split->ToInt64s();
      bool all_same = !sizes.empty();
      for (int64_t v : sizes) all_same = all_same && v == sizes[0];
      d = all_same ? Dim(sizes[0]) : Dim::Unknown();
    }
  } else {
    d = Dim::Unknown();
  }
  ctx.set_output_type(0, SequenceType(in.dtype, Shape(std::move(dims))));
  return Status::Ok();
}

Status RunSplitToSequence(RunContext& ctx) {
  if (!ctx.has_input(0) || ctx.input_value(0).kind != ValueKind::kTensor)
    return ctx.Error("input must be a tensor");
  const Tensor& x = ctx.input(0);
  if (x.rank() < 1) return ctx.Error("input must have rank >= 1");
  int64_t axis = 0;
  KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", 0), x.rank(), &axis));
  const int ax = static_cast<int>(axis);
  const int64_t n = x.dim(ax);
  std::vector<Tensor> out;
  if (!ctx.has_input(1)) {
    const bool keep = ctx.attr_int("keepdims", 1) != 0;
    for (int64_t i = 0; i < n; ++i)
      out.push_back(keep ? ctrl::SliceAxis(x, ax, i, 1) : ctrl::TakeAxis(x, ax, i));
  } else {
    const Tensor& split = ctx.input(1);
    if (split.dtype() != DataType::kInt64 && split.dtype() != DataType::kInt32)
      return ctx.Error("split must be int32 or int64");
    std::vector<int64_t> sizes;
    if (split.rank() == 0) {
      int64_t size = split.IntAt(0);
      if (size <= 0) return ctx.Error("split must be positive");
      for (int64_t start = 0; start < n; start += size) sizes.push_back(std::min(size, n - start));
    } else if (split.rank() == 1) {
      sizes = split.ToInt64s();
      int64_t total = 0;
      for (int64_t v : sizes) {
        if (v < 0) return ctx.Error("split sizes must be >= 0");
        total += v;
      }
      if (total != n)
        return ctx.Error("split sizes sum to " + std::to_string(total) + ", the axis has " +
                         std::to_string(n));
    } else {
      return ctx.Error("split must be a scalar or 1-D");
    }
    int64_t start = 0;
    for (int64_t size : sizes) {
      out.push_back(ctrl::SliceAxis(x, ax, start, size));
      start += size;
    }
  }
  ctx.set_output_value(0, RtValue::FromSequence(std::move(out)));
  return Status::Ok();
}

// ---------------------------------------------------------------- ConcatFromSequence

Status InferConcatFromSequence(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(CheckSeqInputType(ctx, 0));
  const TypeInfo& seq = ctx.input_type(0);
  if (!ctx.has_attr("axis")) return ctx.Error("needs attribute axis");
  const bool new_axis = ctx.attr_int("new_axis", 0) != 0;
  if (!seq.shape.rank_known()) {
    ctx.set_output(0, seq.dtype, Shape::Unranked());
    return Status::Ok();
  }
  const int64_t out_rank = seq.shape.rank() + (new_axis ? 1 : 0);
  int64_t axis = 0;
  KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", 0), out_rank, &axis));
  std::vector<Dim> dims = seq.shape.dims();
  if (new_axis)
    dims.insert(dims.begin() + axis, Dim::Unknown());
  else
    dims[static_cast<size_t>(axis)] = Dim::Unknown();  // depends on the number of elements
  ctx.set_output(0, seq.dtype, Shape(std::move(dims)));
  return Status::Ok();
}

Status RunConcatFromSequence(RunContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const std::vector<Tensor>* seq, SeqInput(ctx, 0));
  if (seq->empty()) return ctx.Error("cannot concatenate an empty sequence");
  if (!ctx.has_attr("axis")) return ctx.Error("needs attribute axis");
  const bool new_axis = ctx.attr_int("new_axis", 0) != 0;
  const int64_t rank = (*seq)[0].rank() + (new_axis ? 1 : 0);
  int64_t axis = 0;
  KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", 0), rank, &axis));
  auto r = new_axis ? ctrl::StackAxis(*seq, static_cast<int>(axis))
                    : ctrl::ConcatAxis(*seq, static_cast<int>(axis));
  if (!r.ok()) return ctx.Error(r.status().message());
  ctx.set_output(0, std::move(*r));
  return Status::Ok();
}

// ---------------------------------------------------------------- SequenceMap
// Body inputs: one element of the input sequence, then for each additional
// input the matching element (sequences) or the whole tensor. Each body
// output becomes one element of an output sequence.

Status InferSequenceMap(InferContext& ctx) {
  const Graph* body = ctx.attr_graph("body");
  if (!body) return ctx.Error("needs graph attribute body");
  if (body->inputs.size() != ctx.num_inputs() || body->outputs.size() != ctx.num_outputs())
    return ctx.Error("body has " + std::to_string(body->inputs.size()) + " inputs and " +
                     std::to_string(body->outputs.size()) + " outputs");
  KILN_RETURN_IF_ERROR(CheckSeqInputType(ctx, 0));
  std::vector<TypeInfo> in;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const TypeInfo& t = ctx.input_type(i);
    in.push_back(t.kind == ValueKind::kSequence ? TypeInfo::Tensor(t.dtype, t.shape) : t);
  }
  auto out = ctx.InferSubgraph(*body, in);
  if (!out.ok()) return out.status().WithPrefix(ctx.node().Label() + " body");
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    const TypeInfo& e = (*out)[i];
    ctx.set_output_type(i, SequenceType(e.dtype, e.shape));
  }
  return Status::Ok();
}

Status RunSequenceMap(RunContext& ctx) {
  const Graph* body = ctx.attr_graph("body");
  if (!body) return ctx.Error("needs graph attribute body");
  if (body->inputs.size() != ctx.num_inputs() || body->outputs.size() < ctx.num_outputs())
    return ctx.Error("body signature does not match the node's inputs and outputs");
  KILN_ASSIGN_OR_RETURN(const std::vector<Tensor>* seq, SeqInput(ctx, 0));
  const size_t n = seq->size();
  for (size_t i = 1; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) return ctx.Error("input " + std::to_string(i) + " is missing");
    const RtValue& v = ctx.input_value(i);
    if (v.kind == ValueKind::kSequence && v.sequence.size() != n)
      return ctx.Error("input sequences differ in length: " + std::to_string(n) + " vs " +
                       std::to_string(v.sequence.size()));
  }
  std::vector<std::vector<Tensor>> outs(ctx.num_outputs());
  for (size_t e = 0; e < n; ++e) {
    std::vector<RtValue> in{RtValue::FromTensor((*seq)[e])};
    for (size_t i = 1; i < ctx.num_inputs(); ++i) {
      const RtValue& v = ctx.input_value(i);
      in.push_back(v.kind == ValueKind::kSequence ? RtValue::FromTensor(v.sequence[e]) : v);
    }
    auto r = ctx.RunSubgraph(*body, in);
    if (!r.ok()) return r.status().WithPrefix(ctx.node().Label() + " body");
    if (r->size() < ctx.num_outputs()) return ctx.Error("body returned too few values");
    for (size_t o = 0; o < ctx.num_outputs(); ++o) {
      if ((*r)[o].kind != ValueKind::kTensor) return ctx.Error("body outputs must be tensors");
      outs[o].push_back(std::move((*r)[o].tensor));
    }
  }
  for (size_t o = 0; o < ctx.num_outputs(); ++o)
    ctx.set_output_value(o, RtValue::FromSequence(std::move(outs[o])));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
