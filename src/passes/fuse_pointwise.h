// Build-time pointwise fusion for the CUDA engine: the last build pass (after
// the precision pass, so its Casts fuse too). Connected elementwise nodes of
// one output shape become one kiln.Pointwise node (src/ops/kiln_pointwise.cc),
// which the builder compiles into one generated kernel
// (src/build/codegen/pointwise_source.h): the group's intermediate values
// never go through memory.
//
// What joins a group: a node the generator can write
// (codegen::CanGeneratePointwise: unary math and activations, binary
// arithmetic with broadcasting, comparisons, logic, Where, Cast, Clip) whose
// output has a known rank <= 8, dims that are known or symbolic, and is not
// host shape arithmetic (backend/gpu_caps.h HostShapeValues). It joins the
// group of a producer of one of its inputs whose outputs have exactly its
// output's dims, unless a path leaves that group and comes back to the node
// (the fused node would depend on itself); otherwise it starts a group. The
// groups of its other producers merge in under the same condition when they
// have its dims, or when their dims broadcast to its dims and they feed only
// this group: their values are then recomputed per element of the larger
// domain instead of being stored (an SE gate's Sigmoid over [N,C,1,1] before
// the Mul over [N,C,H,W]; a decomposed norm's Add(var, eps) → Sqrt).
// Row reductions join too (codegen::RowReduceOf: ReduceSum/Mean/Max/Min/
// SumSquare/L2 over the last axis with keepdims, of a row longer than one):
// a reduction joins the group over its input's dims, and the per-row nodes
// after it (output dims: the domain's with the last dim 1, e.g. Add(var,
// eps) → Sqrt) join as row-level members, so a decomposed LayerNorm, RMSNorm,
// Softmax or L2 norm becomes one row kernel. A per-row value used outside
// its group keeps the group unfused (kernels store over the domain only).
// A Concat joins too (codegen::ConcatBranches: float/bool operands whose
// extents along the axis are known): the groups computing its operands (their
// dims the Concat's but along the axis) merge in when they feed only it, and
// the kernel computes each operand in its branch of the concat axis instead of
// storing it (Llama's rotate_half). Reductions and Concats never share a
// group (row kernels take no Concat).
// Groups of one node stay as they are (the hand-written kernels run them),
// except a Concat that reads views: one kernel instead of the views' copies
// and the Concat's (a channel interleave of Slices, interleave_concat.h).
//
// The fused node: inputs are the operands from outside the group (any shape
// that broadcasts; one-element constants are copied into the body instead),
// outputs are the group's values used outside it or graph outputs, which keep
// their Value (names, graph outputs). Transposes, Slices with constant
// bounds and Expands to constant shapes (codegen::ViewOpOf) whose outputs only
// the group (and other absorbed views) read are absorbed, chains included
// (Slices of a Transpose): the kernel reads their source through the view
// (build/codegen/pointwise_view.h).
// Each value read through a view takes its own input slot (the same source
// may fill several: q and its two halves), and the body starts with that
// slot's copy of the view chain, so the CPU reference still runs it. Body
// values are named "pw<k>/...". At most 16 inputs and 8 outputs (the kernel
// ABI, ops/pointwise_abi.h); a larger group stays unfused. Only the main graph
// is rewritten.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunFusePointwise(Model& model, PassContext& ctx);

// The inverse, for one node: puts kiln.Pointwise `fused`'s body back into `g`
// in its place (new value names made unique; the node's output values are
// kept). The builder falls back to it when a generated kernel cannot be made.
Status UnfusePointwise(Graph& g, Node* fused);

}  // namespace kiln
