// Bias folding (see fuse_bias.h).
#include "passes/fuse_bias.h"

#include <optional>
#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::IsConstant;

// The per-channel values of c when it broadcasts over a [N, M, spatial...]
// output only along the channel axis (or is a single element).
std::optional<std::vector<double>> ChannelBias(const Tensor& c, int64_t m, int out_rank) {
  std::vector<int64_t> dims = c.dims();
  if (c.numel() == 1 && c.rank() <= out_rank)
    return std::vector<double>(static_cast<size_t>(m), c.ScalarAt(0));
  // [1, M, 1, ...] or [M, 1, ...]: the channel axis is out_rank - 1 - (trailing ones).
  if (c.rank() != out_rank && c.rank() != out_rank - 1) return std::nullopt;
  int channel = c.rank() == out_rank ? 1 : 0;
  for (int d = 0; d < c.rank(); ++d)
    if (dims[static_cast<size_t>(d)] != (d == channel ? m : 1)) return std::nullopt;
  return passes::ToDoubles(c);
}

Node* FuseConvAdd(Graph& g, Node& conv, Node& add, const Value* c) {
  Value* w = conv.input(1);
  const Value* y = conv.output(0);
  if (!IsConstant(w) || w->data->rank() < 2 || !y->shape().rank_known()) return nullptr;
  if (!passes::IsArithmeticFloat(w->data->dtype()) || c->data->dtype() != w->data->dtype()) return nullptr;
  if (!passes::SameDims(y->shape(), add.output(0)->shape())) return nullptr;  // the Add must not broadcast y
  int64_t m = w->data->dim(0);
  auto bias = ChannelBias(*c->data, m, y->shape().rank());
  if (!bias) return nullptr;
  const Value* b = conv.input(2);
  if (b) {
    if (!IsConstant(b) || b->data->numel() != m) return nullptr;
    std::vector<double> old = passes::ToDoubles(*b->data);
    for (size_t k = 0; k < bias->size(); ++k) (*bias)[k] += old[k];
  }
  Value* nb = passes::AddInitializer(g, add.output(0)->name() + "_bias",
                                     passes::FromDoubles(w->data->dtype(), {m}, *bias));
  if (conv.num_inputs() < 3)
    conv.AddInput(nb);
  else
    conv.SetInput(2, nb);
  return &conv;
}

Node* FuseMatMulAdd(Graph& g, Node& mm, Node& add, Value* c, int64_t opset) {
  Value* a = mm.input(0);
  Value* b = mm.input(1);
  const Value* y = mm.output(0);
  if (opset < 7 || !a || !b || a->shape().rank() != 2 || b->shape().rank() != 2 || !y->shape().rank_known())
    return nullptr;
  if (!passes::IsArithmeticFloat(y->dtype()) || c->dtype() != y->dtype()) return nullptr;
  if (!passes::SameDims(y->shape(), add.output(0)->shape())) return nullptr;
  const Tensor& t = *c->data;
  bool row = t.numel() == 1 || (t.rank() == 1) || (t.rank() == 2 && t.dim(0) == 1);
  if (!row) return nullptr;
  Node* gemm = g.InsertNode(&mm, "Gemm", mm.name);
  gemm->AddInput(a);
  gemm->AddInput(b);
  gemm->AddInput(c);
  g.RemoveNode(&mm);
  return gemm;
}

}  // namespace

Status RunFuseBias(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  Graph& root = *model.graph;
  passes::ForEachGraph(root, [&](Graph& g) {
    for (Node* add : g.nodes()) {
      if (add->op_type != "Add" || !add->domain.empty() || add->num_inputs() != 2 || !add->output(0))
        continue;
      for (size_t i = 0; i < 2; ++i) {
        Value* y = add->input(i);
        Value* c = add->input(1 - i);
        if (!y || !IsConstant(c) || !y->producer() || y->producer()->graph() != &g) continue;
        Node* p = y->producer();
        if (!p->domain.empty() || !passes::HasSingleUse(root, y)) continue;
        Node* fused = nullptr;
        if (p->op_type == "Conv") fused = FuseConvAdd(g, *p, *add, c);
        if (p->op_type == "MatMul") fused = FuseMatMulAdd(g, *p, *add, c, model.OpsetOf(""));
        if (!fused) continue;
        // The fused op produces the Add's output under its name.
        Value* out = add->output(0);
        g.RemoveNode(add);
        fused->SetOutput(0, out);
        ctx.changed = true;
        break;
      }
    }
  });
  return Status::Ok();
}

}  // namespace kiln
