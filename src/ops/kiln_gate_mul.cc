// kiln.GateMulNhwc(X, H, W, B?): a squeeze-and-excitation gate's last 1x1 convolution and the Mul that
// applies it, as one node, made by src/passes/gate_mul.cc from
//
//   G = kiln.FusedConvNhwc(H [N,1,1,R], W [C,1,1,R], B?)   (the gate's Sigmoid/HardSigmoid as activation)
//   Y = Mul(X [N,H,W,C], G)                                 (either input order)
//
// so that the CUDA kernel computes each block's gates itself and G is never a kernel of its own
// (src/backend/cuda/gate_mul.cu). The node carries the convolution's attributes. Shape inference and the CPU
// reference run the two ops themselves, so the fused node computes bit for bit what the pair did.
#include <memory>
#include <string>
#include <vector>

#include "ops/op_table.h"
#include "ops/op_util.h"

namespace kiln {
namespace ops {
namespace {

// The pair in a scratch graph; its values carry the node's input types (no data).
struct Pair {
  Graph graph;
  Node* gate = nullptr;
  Node* mul = nullptr;
};

std::unique_ptr<Pair> MakePair(const Node& n) {
  auto p = std::make_unique<Pair>();
  auto input = [&](size_t i) { return ScratchInput(p->graph, n, i); };
  p->gate = p->graph.AddNode("FusedConvNhwc", n.name, "kiln");
  p->gate->attrs = n.attrs;
  p->gate->AddInput(input(1));
  p->gate->AddInput(input(2));
  if (n.num_inputs() > 3) p->gate->AddInput(input(3));
  Value* g = p->graph.AddValue("g");
  p->gate->AddOutput(g);
  p->mul = p->graph.AddNode("Mul", n.name);
  p->mul->AddInput(input(0));
  p->mul->AddInput(g);
  p->mul->AddOutput(p->graph.AddValue("y"));
  return p;
}

Status CheckArity(const NodeContext& ctx) {
  return CheckFusedArity(ctx, 3, 4, "X, H, W, optional B and one output");
}

}  // namespace

Status InferGateMulNhwc(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(CheckArity(ctx));
  std::unique_ptr<Pair> p = MakePair(ctx.node());
  KILN_RETURN_IF_ERROR(InferPart(&InferFusedConvNhwc, *p->gate, 1));
  KILN_RETURN_IF_ERROR(InferPart(&InferMul, *p->mul, 14));
  ctx.set_output_type(0, p->mul->output(0)->type);
  return Status::Ok();
}

Status RunGateMulNhwc(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(CheckArity(ctx));
  std::unique_ptr<Pair> p = MakePair(ctx.node());
  std::vector<const RtValue*> gate_inputs = {&ctx.input_value(1), &ctx.input_value(2)};
  if (ctx.num_inputs() > 3) gate_inputs.push_back(ctx.has_input(3) ? &ctx.input_value(3) : nullptr);
  KILN_ASSIGN_OR_RETURN(RtValue g, RunPart(&RunFusedConvNhwc, *p->gate, 1, std::move(gate_inputs), ctx.node(),
                                           "the gate's convolution"));
  KILN_ASSIGN_OR_RETURN(
      RtValue y, RunPart(&RunMul, *p->mul, 14, {&ctx.input_value(0), &g}, ctx.node(), "the gate's Mul"));
  ctx.set_output(0, y.tensor);
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
