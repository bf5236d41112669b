// Convolutions of few input channels as one GEMM over their windows (see stem_im2col.h).
#include "passes/stem_im2col.h"

#include <string>
#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

constexpr int64_t kMaxChannels = 8;   // fewer: cuDNN's tensor-core kernels want 16-byte channel rows
constexpr int64_t kColumnAlign = 8;   // 16 bytes of FP16 per GEMM row
constexpr int64_t kMinPixels = 1024;  // H·W of the inputs worth it (32x32), as pad_channels

bool Rewrites(const Node& n) {
  if (n.domain != "kiln" || n.op_type != "FusedConvNhwc" || n.num_inputs() < 2 || !n.input(0) || !n.input(1))
    return false;
  if (passes::AttrInt(n, "group", 1) != 1 || !passes::IsConstant(n.input(1))) return false;
  const Tensor& w = *n.input(1)->data;
  const Shape& xs = n.input(0)->shape();
  if (w.rank() != 4 || !xs.rank_known() || xs.rank() != 4) return false;
  if (!xs[1].known() || !xs[2].known() || !xs[3].known()) return false;
  const int64_t c = w.dim(3);
  return c > 0 && c < kMaxChannels && xs[3].value() == c && w.dim(1) * w.dim(2) > 1 &&
         xs[1].value() * xs[2].value() >= kMinPixels && passes::IsArithmeticFloat(w.dtype());
}

// The NCHW tensor X is the NHWC Transpose of, or nullptr.
Value* NchwSource(Value* x) {
  const Node* t = x->producer();
  if (!passes::IsOnnxOp(t, "Transpose") || t->num_inputs() != 1 || !t->input(0)) return nullptr;
  return passes::AttrInts(*t, "perm") == std::vector<int64_t>{0, 2, 3, 1} ? t->input(0) : nullptr;
}

// The product now runs as a 1x1 (cuBLASLt or kiln's small kernel, an activation pass or epilogue either
// way): a HardSwish or HardSigmoid reading only its output joins it. fuse_gpu left it out of the dense
// convolution (cuDNN's graph API has none); MobileNetV3's stem is Conv → HardSwish.
void TakeHardActivation(Graph& g, Node* conv) {
  const Attribute* act = conv->attr("activation");
  if (conv->num_outputs() != 1 || (act && !act->s.empty())) return;
  Node* u = passes::SoleUser(g, conv->output(0));
  if (!passes::SetHardActivation(u, &conv->attrs)) return;
  Value* out = u->output(0);
  g.RemoveNode(u);
  conv->SetOutput(0, out);
}

}  // namespace

Status RunStemIm2Col(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  Graph& g = *model.graph;
  std::vector<Node*> convs;
  for (Node* n : g.nodes())
    if (Rewrites(*n)) convs.push_back(n);
  for (Node* n : convs) {
    Value* x = n->input(0);
    const Tensor& w = *n->input(1)->data;
    const int64_t taps = w.dim(1) * w.dim(2) * w.dim(3);
    const int64_t columns = (taps + kColumnAlign - 1) / kColumnAlign * kColumnAlign;
    Value* source = NchwSource(x);
    Node* im2col = g.InsertNode(n, "Im2Col", g.UniqueName(n->name + "/im2col"), "kiln");
    im2col->AddInput(source ? source : x);
    im2col->attrs["kernel_shape"] = Attribute::FromInts({w.dim(1), w.dim(2)});
    for (const char* a : {"strides", "pads", "dilations", "auto_pad"})
      if (const Attribute* v = n->attr(a)) im2col->attrs[a] = *v;
    im2col->attrs["columns"] = Attribute::FromInt(columns);
    im2col->attrs["channels_last"] = Attribute::FromInt(source ? 0 : 1);
    const Shape& ys = n->output(0)->shape();
    std::vector<Dim> dims = {x->shape()[0], ys.rank_known() && ys.rank() == 4 ? ys[1] : Dim(),
                             ys.rank_known() && ys.rank() == 4 ? ys[2] : Dim(), Dim(columns)};
    Value* cols = passes::NewTensorValue(g, n->name + "/windows", x->dtype(), Shape(dims));
    im2col->AddOutput(cols);
    n->SetInput(0, cols);
    // W [K, R, S, C] as [K, 1, 1, columns]: each filter's R·S·C taps, then zeros.
    Tensor windows = passes::PadLastAxis(w.Reshaped({w.dim(0), 1, 1, taps}), columns);
    n->SetInput(1, passes::AddInitializer(g, n->input(1)->name() + "_windows", std::move(windows)));
    for (const char* a : {"kernel_shape", "strides", "pads", "dilations", "auto_pad"}) n->attrs.erase(a);
    if (source && x->uses().empty() && !passes::IsAnyGraphOutput(g, x)) g.RemoveNode(x->producer());
    TakeHardActivation(g, n);
  }
  passes::FinishKilnRewrite(model, ctx, static_cast<int>(convs.size()));
  return Status::Ok();
}

}  // namespace kiln
