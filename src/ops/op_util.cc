#include "ops/op_util.h"

#include <cstring>
#include <string>

namespace kiln {

Expected<Shape> BroadcastShapes(const std::vector<Shape>& shapes) {
  size_t rank = 0;
  for (const Shape& s : shapes) {
    if (!s.rank_known()) return Shape::Unranked();
    rank = std::max(rank, s.dims().size());
  }
  std::vector<Dim> out(rank, Dim(1));
  for (size_t d = 0; d < rank; ++d) {
    Dim acc(1);
    bool acc_set = false;
    for (const Shape& s : shapes) {
      size_t r = s.dims().size();
      if (d + r < rank) continue;  // implicit leading 1
      const Dim& x = s.dims()[d + r - rank];
      if (x.known() && x.value() == 1) continue;
      if (!acc_set) {
        acc = x;
        acc_set = true;
        continue;
      }
      if (acc == x) continue;
      if (acc.known() && x.known())
        return InvalidArgument("cannot broadcast dim " + acc.ToString() + " with " + x.ToString());
      // One side symbolic/unknown: prefer the known value (the other must be it
      // or 1), else unknown.
      if (x.known()) acc = x;
      else if (!acc.known()) acc = Dim::Unknown();
    }
    out[d] = acc;
  }
  return Shape(std::move(out));
}

bool BroadcastDims(const std::vector<std::vector<int64_t>>& dims, std::vector<int64_t>* out) {
  size_t rank = 0;
  for (const auto& d : dims) rank = std::max(rank, d.size());
  out->assign(rank, 1);
  for (const auto& d : dims) {
    for (size_t i = 0; i < d.size(); ++i) {
      int64_t& o = (*out)[rank - d.size() + i];
      int64_t x = d[i];
      if (x == o || x == 1) continue;
      if (o == 1) {
        o = x;
        continue;
      }
      return false;
    }
  }
  return true;
}

std::vector<int64_t> Strides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (size_t i = dims.size(); i-- > 1;) s[i - 1] = s[i] * dims[i];
  return s;
}

std::vector<int64_t> BroadcastStrides(const std::vector<int64_t>& in, const std::vector<int64_t>& out) {
  std::vector<int64_t> s(out.size(), 0);
  std::vector<int64_t> own = Strides(in);
  size_t off = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i) s[off + i] = (in[i] == 1 && out[off + i] != 1) ? 0 : own[i];
  return s;
}

bool NormalizeAxis(int64_t axis, int64_t rank, int64_t* out) {
  if (axis < -rank || axis >= rank) return false;
  *out = axis < 0 ? axis + rank : axis;
  return true;
}

Status RankFromLength(const NodeContext& ctx, const Dim& length, size_t* rank) {
  if (!length.known() || length.value() > kMaxInferredRank)
    return ctx.Error("a shape input of length " + length.ToString() + " (more than " +
                     std::to_string(kMaxInferredRank) + " dims)");
  *rank = static_cast<size_t>(length.value());
  return Status::Ok();
}

Status NormalizeAxis(const NodeContext& ctx, int64_t axis, int64_t rank, int64_t* out) {
  if (NormalizeAxis(axis, rank, out)) return Status::Ok();
  return ctx.Error("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
}

ElementCopier::ElementCopier(const Tensor& src, Tensor& dst) : size_(ElementSize(src.dtype())) {
  if (src.dtype() == DataType::kString) {
    src_str_ = &src.strings();
    dst_str_ = &dst.mutable_strings();
    src_ = nullptr;
    dst_ = nullptr;
  } else {
    src_ = static_cast<const uint8_t*>(src.raw());
    dst_ = static_cast<uint8_t*>(dst.mutable_raw());
  }
}

void ElementCopier::Copy(int64_t src_off, int64_t dst_off) const {
  if (src_str_) {
    (*dst_str_)[static_cast<size_t>(dst_off)] = (*src_str_)[static_cast<size_t>(src_off)];
    return;
  }
  std::memcpy(dst_ + static_cast<size_t>(dst_off) * size_, src_ + static_cast<size_t>(src_off) * size_, size_);
}

Status CheckFusedArity(const NodeContext& ctx, size_t min_inputs, size_t max_inputs, const char* expects) {
  const Node& n = ctx.node();
  if (n.num_inputs() < min_inputs || n.num_inputs() > max_inputs || n.num_outputs() != 1)
    return ctx.Error(std::string("expects ") + expects);
  return Status::Ok();
}

Value* ScratchInput(Graph& scratch, const Node& n, size_t i) {
  if (i >= n.num_inputs() || !n.input(i)) return nullptr;
  Value* v = scratch.AddValue("in" + std::to_string(i));
  v->type = n.input(i)->type;
  return v;
}

Status InferPart(Status (*infer)(InferContext&), Node& part, int64_t opset) {
  InferContext ctx(part, opset);
  return infer(ctx);
}

Expected<RtValue> RunPart(Status (*run)(RunContext&), const Node& part, int64_t opset,
                          std::vector<const RtValue*> inputs, const Node& fused, const char* what) {
  RunContext ctx(part, opset, std::move(inputs));
  KILN_RETURN_IF_ERROR(run(ctx));
  if (ctx.outputs().empty() || ctx.outputs()[0].kind != ValueKind::kTensor)
    return Internal(fused.Label() + ": " + what + " produced no tensor");
  return ctx.outputs()[0];
}

Status InferSameAsInput(InferContext& ctx) {
  if (ctx.num_inputs() < 1 || !ctx.has_input(0)) return ctx.Error("expects at least one input");
  ctx.set_output_type(0, ctx.input_type(0));
  return Status::Ok();
}

}  // namespace kiln
