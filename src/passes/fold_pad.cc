// Zero Pad into Conv / AveragePool (see fold_pad.h).
#include "passes/fold_pad.h"

#include <optional>
#include <string>
#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::IsConstant;
using passes::IsOnnxOp;

// The Pad's begin/end pads over the spatial axes of a rank-`rank` [N, C, spatial...] input ([b..., e...],
// ONNX order), when it pads only those, by zeros, in constant mode.
std::optional<std::vector<int64_t>> SpatialZeroPads(const Node& pad, int rank) {
  if (passes::AttrString(pad, "mode", "constant") != "constant") return std::nullopt;
  if (pad.num_inputs() < 2 || !pad.input(1) || (pad.num_inputs() > 3 && pad.input(3))) return std::nullopt;
  if (pad.num_inputs() > 2 && pad.input(2)) {  // constant_value
    const Value* c = pad.input(2);
    if (!IsConstant(c) || c->data->numel() != 1 || c->data->ScalarAt(0) != 0.0) return std::nullopt;
  }
  std::optional<std::vector<int64_t>> p = passes::ConstInts(pad.input(1));
  if (!p || static_cast<int>(p->size()) != 2 * rank) return std::nullopt;
  std::vector<int64_t> out;
  for (int half = 0; half < 2; ++half) {
    if ((*p)[half * rank] != 0 || (*p)[half * rank + 1] != 0) return std::nullopt;  // N, C
    for (int d = 2; d < rank; ++d) {
      const int64_t v = (*p)[half * rank + d];
      if (v < 0) return std::nullopt;
      out.push_back(v);
    }
  }
  return out;
}

bool Folds(const Node& op, int spatial) {
  if (passes::AttrString(op, "auto_pad", "NOTSET") != "NOTSET") return false;
  if (IsOnnxOp(&op, "Conv")) return true;
  if (!IsOnnxOp(&op, "AveragePool") || passes::AttrInt(op, "ceil_mode", 0) != 0) return false;
  if (passes::AttrInt(op, "count_include_pad", 0) == 1) return true;
  std::optional<std::vector<int64_t>> own = passes::AttrInts(op, "pads");
  return !own || *own == std::vector<int64_t>(static_cast<size_t>(2 * spatial), 0);
}

}  // namespace

Status RunFoldPad(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  Graph& root = *model.graph;
  passes::ForEachGraph(root, [&](Graph& g) {
    for (Node* op : g.nodes()) {
      if (!IsOnnxOp(op, "Conv") && !IsOnnxOp(op, "AveragePool")) continue;
      Value* y = op->num_inputs() > 0 ? op->input(0) : nullptr;
      Node* pad = y ? y->producer() : nullptr;
      if (!IsOnnxOp(pad, "Pad") || pad->graph() != &g || !pad->input(0)) continue;
      if (!passes::HasSingleUse(root, y) || passes::IsGraphOutput(g, y)) continue;
      const Shape& s = pad->input(0)->shape();
      if (!s.rank_known() || s.rank() < 3) continue;
      const int rank = s.rank(), spatial = rank - 2;
      std::optional<std::vector<int64_t>> add = SpatialZeroPads(*pad, rank);
      if (!add || !Folds(*op, spatial)) continue;
      std::vector<int64_t> pads =
          passes::AttrInts(*op, "pads").value_or(std::vector<int64_t>(static_cast<size_t>(2 * spatial), 0));
      if (static_cast<int>(pads.size()) != 2 * spatial) continue;
      for (size_t i = 0; i < pads.size(); ++i) pads[i] += (*add)[i];
      op->attrs["pads"] = Attribute::FromInts(pads);
      if (IsOnnxOp(op, "AveragePool")) op->attrs["count_include_pad"] = Attribute::FromInt(1);
      op->SetInput(0, pad->input(0));
      g.RemoveNode(pad);
      ctx.changed = true;
    }
  });
  return Status::Ok();
}

}  // namespace kiln
