// Zero channels for channels-last convolutions with few inputs (see pad_channels.h).
#include "passes/pad_channels.h"

#include <string>
#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

constexpr int64_t kChannels = 8;      // 16 bytes of FP16
constexpr int64_t kMinPixels = 1024;  // H·W of the inputs worth padding (32x32)

bool Pads(const Node& n) {
  if (n.domain != "kiln" || n.op_type != "FusedConvNhwc" || n.num_inputs() < 2 || !n.input(0) || !n.input(1))
    return false;
  if (passes::AttrInt(n, "group", 1) != 1 || !passes::IsConstant(n.input(1))) return false;
  const Tensor& w = *n.input(1)->data;
  const Shape& xs = n.input(0)->shape();
  if (w.rank() != 4 || !xs.rank_known() || xs.rank() != 4 || !xs[3].known()) return false;
  const int64_t c = w.dim(3);
  // Images only (or sizes chosen at run time): an SE block's 1x1 convolution of 4 channels on
  // [N, 1, 1, 4] would pay a Pad kernel for nothing.
  const bool small = xs[1].known() && xs[2].known() && xs[1].value() * xs[2].value() < kMinPixels;
  return c > 0 && c < kChannels && xs[3].value() == c && !small && passes::IsArithmeticFloat(w.dtype());
}

}  // namespace

Status RunPadConvChannels(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  Graph& g = *model.graph;
  std::vector<Node*> convs;
  for (Node* n : g.nodes())
    if (Pads(*n)) convs.push_back(n);
  for (Node* n : convs) {
    Value* x = n->input(0);
    const int64_t c = x->shape()[3].value();
    std::vector<Dim> dims = x->shape().dims();
    dims[3] = Dim(kChannels);
    Value* padded = passes::NewTensorValue(g, x->name() + "/pad_channels", x->dtype(), Shape(dims));
    Node* pad = g.InsertNode(n, "Pad", g.UniqueName(n->name + "/pad_channels"));
    pad->AddInput(x);
    pad->AddInput(passes::AddInt64Initializer(g, n->name + "/channel_pads", {0, 0, 0, 0, 0, 0, 0, kChannels - c}));
    pad->AddOutput(padded);
    n->SetInput(0, padded);
    const Tensor w = passes::PadLastAxis(*n->input(1)->data, kChannels);  // W [K, R, S, C] → [K, R, S, 8]
    n->SetInput(1, passes::AddInitializer(g, n->input(1)->name() + "_pad8", w));
  }
  passes::FinishKilnRewrite(model, ctx, static_cast<int>(convs.size()));
  return Status::Ok();
}

}  // namespace kiln
