// kiln's channels-last ops (domain "kiln", see defs/kiln.def), made by the GPU
// build pass src/passes/layout_nhwc.cc so that cuDNN runs convolutions and
// pooling on NHWC tensors (its tensor-core kernels' native layout) without a
// layout transform per call:
//   FusedConvNhwc(X, W, B?, Z?)  X, Z, Y: [N,H,W,C]; W: [K,R,S,C/group];
//                                attributes and meaning of kiln.FusedConv
//   QConvNhwc(X, .., W, .., Z?)  kiln.QConv's inputs and attributes with X, Z, Y
//                                [N,H,W,C] and W [M,R,S,C/group]
//   PoolNhwc(X)                  X, Y: [N,H,W,C]; attribute `pool` names the
//                                ONNX op (MaxPool, AveragePool,
//                                GlobalAveragePool, GlobalMaxPool), the other
//                                attributes are that op's
// Shape inference and the CPU reference permute to NCHW, run the NCHW op's
// function (same attributes) and permute back, so the channels-last graph
// computes bit for bit what the NCHW graph does.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "ops/op_table.h"
#include "ops/op_util.h"
#include "ops/shape_util.h"

namespace kiln {
namespace ops {
namespace {

constexpr int64_t kInnerOpset = 22;  // the NCHW ops' meaning is the same in every opset we accept
const std::vector<int64_t> kToNchw = {0, 3, 1, 2};
const std::vector<int64_t> kToNhwc = {0, 2, 3, 1};

Shape PermuteShape(const Shape& s, const std::vector<int64_t>& perm) {
  if (!s.rank_known() || s.rank() != 4) return s;
  std::vector<Dim> d;
  for (int64_t p : perm) d.push_back(s[static_cast<size_t>(p)]);
  return Shape(d);
}

// The NCHW twin of a channels-last node: same attributes, and a scratch graph
// whose input values carry the permuted types (no data: the NCHW ops infer
// from shapes, and the CPU reference passes its inputs to the twin's run).
struct NchwTwin {
  Graph graph;
  Node* node = nullptr;
};

// The inputs a channels-last op stores permuted (the others are scalars and vectors).
using Permuted = std::vector<size_t>;
const Permuted kFusedConvPermuted = {0, 1, 3};  // X, W, Z (B is a vector)
const Permuted kQConvPermuted = {0, 3, 9};      // X, W, Z
const Permuted kPoolPermuted = {0};

bool IsPermuted(const Permuted& p, size_t i) { return std::find(p.begin(), p.end(), i) != p.end(); }

std::unique_ptr<NchwTwin> MakeTwin(const Node& n, const std::string& op, const std::string& domain,
                                   const Permuted& permuted) {
  auto t = std::make_unique<NchwTwin>();
  t->node = t->graph.AddNode(op, n.name, domain);
  t->node->attrs = n.attrs;
  for (size_t i = 0; i < n.num_inputs(); ++i) {
    const Value* src = n.input(i);
    if (!src) {
      t->node->AddInput(nullptr);
      continue;
    }
    Value* v = t->graph.AddValue("in" + std::to_string(i));
    v->type = src->type;
    if (IsPermuted(permuted, i)) v->type.shape = PermuteShape(src->type.shape, kToNchw);
    t->node->AddInput(v);
  }
  for (size_t i = 0; i < n.num_outputs(); ++i) t->node->AddOutput(t->graph.AddValue("out" + std::to_string(i)));
  return t;
}

Status RequireRank4(const NodeContext& ctx, const Shape& s, const char* what) {
  if (s.rank_known() && s.rank() != 4)
    return ctx.Error(std::string(what) + " must be 4-D (channels last), got " + s.ToString());
  return Status::Ok();
}

Status InferThroughTwin(InferContext& ctx, const std::string& op, const std::string& domain, InferFn infer,
                        const Permuted& permuted) {
  for (size_t i : permuted)
    if (i < ctx.num_inputs() && ctx.has_input(i))
      KILN_RETURN_IF_ERROR(RequireRank4(ctx, ctx.input_shape(i), "input"));
  // Types only: permuting a convolution's weights here (as this did) copied
  // every weight at each inference, 84 of ResNet-50's 85 ms at a new shape.
  std::unique_ptr<NchwTwin> twin = MakeTwin(ctx.node(), op, domain, permuted);
  InferContext inner(*twin->node, domain.empty() ? kInnerOpset : 1);
  KILN_RETURN_IF_ERROR(infer(inner));
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    TypeInfo t = twin->node->output(i)->type;
    t.shape = PermuteShape(t.shape, kToNhwc);
    ctx.set_output_type(i, t);
  }
  return Status::Ok();
}

// Runs `run` on the `permuted` inputs permuted to NCHW and permutes output 0 back.
Status RunThroughTwin(RunContext& ctx, const std::string& op, const std::string& domain, RunFn run,
                      const Permuted& permuted) {
  std::vector<RtValue> nchw(ctx.num_inputs());
  std::vector<const RtValue*> ptrs(ctx.num_inputs(), nullptr);
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) continue;
    const Tensor& t = ctx.input(i);
    if (IsPermuted(permuted, i)) {
      if (t.rank() != 4) return ctx.Error("input " + std::to_string(i) + " must be 4-D, got " + t.Describe());
      nchw[i] = RtValue::FromTensor(shape_ops::PermuteCopy(t, t.dims(), kToNchw));
    } else {
      nchw[i] = ctx.input_value(i);
    }
    ptrs[i] = &nchw[i];
  }
  std::unique_ptr<NchwTwin> twin = MakeTwin(ctx.node(), op, domain, permuted);
  RunContext inner(*twin->node, domain.empty() ? kInnerOpset : 1, std::move(ptrs));
  KILN_RETURN_IF_ERROR(run(inner));
  if (inner.outputs().empty() || inner.outputs()[0].kind != ValueKind::kTensor)
    return Internal(ctx.node().Label() + ": inner op produced no tensor");
  const Tensor& y = inner.outputs()[0].tensor;
  ctx.set_output(0, shape_ops::PermuteCopy(y, y.dims(), kToNhwc));
  return Status::Ok();
}

struct PoolOp {
  const char* name;
  InferFn infer;
  RunFn run;
};

Expected<PoolOp> ReadPool(const NodeContext& ctx) {
  static const PoolOp kPools[] = {{"MaxPool", &InferMaxPool, &RunMaxPool},
                                  {"AveragePool", &InferAveragePool, &RunAveragePool},
                                  {"GlobalAveragePool", &InferGlobalPool, &RunGlobalAveragePool},
                                  {"GlobalMaxPool", &InferGlobalPool, &RunGlobalMaxPool}};
  std::string p = ctx.attr_string("pool", "");
  for (const PoolOp& op : kPools)
    if (p == op.name) return op;
  return ctx.Error("attribute pool must be MaxPool, AveragePool, GlobalAveragePool or GlobalMaxPool, got '" + p +
                   "'");
}

}  // namespace

Status InferFusedConvNhwc(InferContext& ctx) {
  return InferThroughTwin(ctx, "FusedConv", "kiln", &InferFusedConv, kFusedConvPermuted);
}

Status RunFusedConvNhwc(RunContext& ctx) {
  return RunThroughTwin(ctx, "FusedConv", "kiln", &RunFusedConv, kFusedConvPermuted);
}

Status InferQConvNhwc(InferContext& ctx) {
  return InferThroughTwin(ctx, "QConv", "kiln", &InferQConv, kQConvPermuted);
}

Status RunQConvNhwc(RunContext& ctx) {
  return RunThroughTwin(ctx, "QConv", "kiln", &RunQConv, kQConvPermuted);
}

Status InferPoolNhwc(InferContext& ctx) {
  if (ctx.num_inputs() != 1 || ctx.num_outputs() != 1) return ctx.Error("expects one input and one output");
  KILN_ASSIGN_OR_RETURN(PoolOp op, ReadPool(ctx));
  return InferThroughTwin(ctx, op.name, "", op.infer, kPoolPermuted);
}

Status RunPoolNhwc(RunContext& ctx) {
  if (ctx.num_inputs() != 1 || !ctx.has_input(0)) return ctx.Error("expects one input");
  KILN_ASSIGN_OR_RETURN(PoolOp op, ReadPool(ctx));
  return RunThroughTwin(ctx, op.name, "", op.run, kPoolPermuted);
}

}  // namespace ops
}  // namespace kiln
