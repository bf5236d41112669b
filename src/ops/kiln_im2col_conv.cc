// kiln.Im2ColConv(X, W, B?): a convolution of few input channels as one implicit matrix product, made by
// src/passes/im2col_conv.cc from the pair src/passes/stem_im2col.cc writes,
//
//   A = kiln.Im2Col(X)                       (window attributes, channels_last, columns, to)
//   Y = kiln.FusedConvNhwc(A, W[K,1,1,columns], B?)   (activation attributes)
//
// so that the CUDA kernel never writes A (src/backend/cuda/im2col_conv.cu). The node carries both nodes'
// attributes: FusedConv's activation ones ("activation", "activation_*") and Im2Col's (all others). Shape
// inference and the CPU reference run the two ops themselves, so the fused node computes bit for bit what the
// pair did.
#include <memory>
#include <string>
#include <vector>

#include "ops/op_table.h"
#include "ops/op_util.h"

namespace kiln {
namespace ops {
namespace {

bool IsEpilogueAttr(const std::string& name) { return name.rfind("activation", 0) == 0; }

// The pair in a scratch graph; its values carry the node's input types (no data).
struct Pair {
  Graph graph;
  Node* gather = nullptr;
  Node* conv = nullptr;
};

std::unique_ptr<Pair> MakePair(const Node& n) {
  auto p = std::make_unique<Pair>();
  auto input = [&](size_t i) { return ScratchInput(p->graph, n, i); };
  p->gather = p->graph.AddNode("Im2Col", n.name, "kiln");
  p->conv = p->graph.AddNode("FusedConvNhwc", n.name, "kiln");
  for (const auto& [name, value] : n.attrs) (IsEpilogueAttr(name) ? p->conv : p->gather)->attrs[name] = value;
  p->gather->AddInput(input(0));
  Value* a = p->graph.AddValue("a");
  p->gather->AddOutput(a);
  p->conv->AddInput(a);
  p->conv->AddInput(input(1));
  if (n.num_inputs() > 2) p->conv->AddInput(input(2));
  p->conv->AddOutput(p->graph.AddValue("y"));
  return p;
}

Status CheckArity(const NodeContext& ctx) {
  return CheckFusedArity(ctx, 2, 3, "X, W, optional B and one output");
}

}  // namespace

Status InferIm2ColConv(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(CheckArity(ctx));
  std::unique_ptr<Pair> p = MakePair(ctx.node());
  KILN_RETURN_IF_ERROR(InferPart(&InferIm2Col, *p->gather, 1));
  KILN_RETURN_IF_ERROR(InferPart(&InferFusedConvNhwc, *p->conv, 1));
  ctx.set_output_type(0, p->conv->output(0)->type);
  return Status::Ok();
}

Status RunIm2ColConv(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(CheckArity(ctx));
  std::unique_ptr<Pair> p = MakePair(ctx.node());
  KILN_ASSIGN_OR_RETURN(
      RtValue a, RunPart(&RunIm2Col, *p->gather, 1, {&ctx.input_value(0)}, ctx.node(), "the window gather"));
  std::vector<const RtValue*> conv_inputs = {&a, &ctx.input_value(1)};
  if (ctx.num_inputs() > 2) conv_inputs.push_back(ctx.has_input(2) ? &ctx.input_value(2) : nullptr);
  KILN_ASSIGN_OR_RETURN(
      RtValue y, RunPart(&RunFusedConvNhwc, *p->conv, 1, std::move(conv_inputs), ctx.node(), "the product"));
  ctx.set_output(0, y.tensor);
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
