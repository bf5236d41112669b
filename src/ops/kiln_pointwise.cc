// kiln.Pointwise (domain "kiln", defs/kiln.def): a group of elementwise nodes
// that src/passes/fuse_pointwise.cc fused into one node for the GPU, which runs
// it as one generated kernel (src/build/codegen/pointwise_source.h).
//   inputs:  the group's operands from outside it (any shapes that broadcast
//            to the group's domain)
//   outputs: the group's values used outside it (each of the domain's shape)
//   body:    graph attribute, the group's nodes as a closed graph whose inputs
//            and outputs match the node's; one-element constants live in it
//   kernel, cubin, input_modes, input_views, row_kernel: set by the builder
//            (the entry point's name, the compiled kernel, how each input is
//            indexed and the view it is read through); the CPU ignores them
// Shape inference and the CPU reference run the body as a subgraph, so a
// fused graph computes exactly what the unfused one did.
#include "ops/op_table.h"

namespace kiln {
namespace ops {

Status InferPointwise(InferContext& ctx) {
  const Graph* body = ctx.attr_graph("body");
  if (!body) return ctx.Error("needs graph attribute body");
  if (body->inputs.size() != ctx.num_inputs() || body->outputs.size() != ctx.num_outputs())
    return ctx.Error("body takes " + std::to_string(body->inputs.size()) + " inputs and returns " +
                     std::to_string(body->outputs.size()) + " values for a node with " +
                     std::to_string(ctx.num_inputs()) + " inputs and " + std::to_string(ctx.num_outputs()) +
                     " outputs");
  std::vector<TypeInfo> in;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) return ctx.Error("input " + std::to_string(i) + " is omitted");
    in.push_back(ctx.input_type(i));
  }
  auto out = ctx.InferSubgraph(*body, in);
  if (!out.ok()) return out.status().WithPrefix(ctx.node().Label() + " body");
  for (size_t i = 0; i < ctx.num_outputs() && i < out->size(); ++i) ctx.set_output_type(i, (*out)[i]);
  return Status::Ok();
}

Status RunPointwise(RunContext& ctx) {
  const Graph* body = ctx.attr_graph("body");
  if (!body) return ctx.Error("needs graph attribute body");
  std::vector<RtValue> in;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) in.push_back(ctx.input_value(i));
  auto out = ctx.RunSubgraph(*body, in);
  if (!out.ok()) return out.status().WithPrefix(ctx.node().Label() + " body");
  if (out->size() != ctx.num_outputs())
    return ctx.Error("body returned " + std::to_string(out->size()) + " values for " +
                     std::to_string(ctx.num_outputs()) + " outputs");
  for (size_t i = 0; i < ctx.num_outputs(); ++i) ctx.set_output_value(i, std::move((*out)[i]));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
