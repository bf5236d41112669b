// kiln.Im2Col and the product that reads it as one node (see im2col_conv.h).
#include "passes/im2col_conv.h"

#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

constexpr int64_t kMaxColumns = 256;      // the kernel keeps a block's windows and W's rows in shared memory
constexpr int64_t kVector = 8;            // its loads of W's rows and its stores are 8 float16 wide
constexpr int64_t kTileBytes = 64 << 10;  // the input rows a block's 128 pixels' windows cover, float16

// The input rows of 128 output pixels' windows (`channels` each) fit the kernel's shared memory.
bool TileFits(const Node& gather, int64_t channels) {
  const std::vector<int64_t> k = passes::AttrInts(gather, "kernel_shape").value_or(std::vector<int64_t>{});
  std::vector<int64_t> s = passes::AttrInts(gather, "strides").value_or(std::vector<int64_t>{});
  std::vector<int64_t> d = passes::AttrInts(gather, "dilations").value_or(std::vector<int64_t>{});
  if (k.size() != 2 || k[0] <= 0 || k[1] <= 0) return false;
  if (s.size() != 2) s = {1, 1};
  if (d.size() != 2) d = {1, 1};
  const int64_t width = 127 * s[1] + (k[1] - 1) * d[1] + 1;
  return channels * k[0] * width * 2 <= kTileBytes;
}

bool IsHalf(const Value* v) { return v && v->dtype() == DataType::kFloat16; }

// The Im2Col whose windows only `conv` reads, when the pair fits the kernel; else nullptr.
Node* FusableGather(Graph& g, Node* conv) {
  if (conv->num_inputs() < 2 || conv->num_inputs() > 3 || !conv->input(0) || !IsHalf(conv->input(0)))
    return nullptr;
  if (passes::AttrInt(*conv, "group", 1) != 1 || !passes::IsConstant(conv->input(1)) ||
      !IsHalf(conv->input(1)))
    return nullptr;
  if (conv->num_inputs() == 3 && conv->input(2) && !IsHalf(conv->input(2))) return nullptr;
  Node* gather = conv->input(0)->producer();
  if (!passes::IsKilnOp(gather, "Im2Col") || gather->num_inputs() != 1 || !gather->input(0)) return nullptr;
  if (!passes::HasSingleUse(g, conv->input(0))) return nullptr;
  const Tensor& w = *conv->input(1)->data;
  if (w.rank() != 4 || w.dim(1) != 1 || w.dim(2) != 1 || w.dim(3) > kMaxColumns || w.dim(3) % kVector != 0 ||
      w.dim(0) % kVector != 0 || passes::AttrInt(*gather, "columns", 0) != w.dim(3))
    return nullptr;
  const Shape& xs = gather->input(0)->shape();
  const bool last = passes::AttrInt(*gather, "channels_last", 1) != 0;
  if (!xs.rank_known() || xs.rank() != 4 || !xs[last ? 3 : 1].known()) return nullptr;
  if (!TileFits(*gather, xs[last ? 3 : 1].value())) return nullptr;
  const DataType x = gather->input(0)->dtype();
  return x == DataType::kFloat || x == DataType::kFloat16 ? gather : nullptr;
}

}  // namespace

Status RunFuseIm2ColConv(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  Graph& g = *model.graph;
  int count = 0;
  for (Node* conv : passes::KilnNodes(g, "FusedConvNhwc")) {
    Node* gather = FusableGather(g, conv);
    if (!gather) continue;
    Value* windows = conv->input(0);
    conv->op_type = "Im2ColConv";
    conv->attrs.erase("group");
    for (const auto& [name, value] : gather->attrs) conv->attrs[name] = value;
    conv->SetInput(0, gather->input(0));
    if (windows->uses().empty()) g.RemoveNode(gather);
    ++count;
  }
  passes::FinishKilnRewrite(model, ctx, count);
  return Status::Ok();
}

}  // namespace kiln
