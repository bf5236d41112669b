// BatchNormalization folding (see fuse_batchnorm.h).
#include "passes/fuse_batchnorm.h"

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "passes/batchnorm_params.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::BnParams;
using passes::IsConstant;
using passes::ReadBn;
using passes::ScaleAlong;
using passes::ToDoubles;

class BnFolder {
 public:
  BnFolder(Model& model, PassContext& ctx) : model_(model), ctx_(ctx), opset_(model.OpsetOf("")) {}

  void FoldGraph(Graph& g) {
    for (Node* bn : g.nodes()) {
      if (bn->op_type != "BatchNormalization" || !bn->domain.empty() || !bn->input(0) || !bn->output(0))
        continue;
      Value* y = bn->input(0);
      Node* p = y->producer();
      if (!p || p->graph() != &g || !p->domain.empty() || !passes::HasSingleUse(*model_.graph, y)) continue;
      auto params = ReadBn(*model_.graph, *bn, opset_);
      if (!params) continue;
      bool done = false;
      if (p->op_type == "Conv") done = FoldConv(g, *p, *params);
      if (p->op_type == "Gemm") done = FoldGemm(g, *p, *params);
      if (p->op_type == "MatMul") done = FoldMatMul(g, *p, nullptr, *params);
      if (p->op_type == "Flatten" || p->op_type == "Reshape") done = FoldThroughFlatten(g, *p, *params);
      if (p->op_type == "Add") {
        // MatMul → Add(bias) → BN
        for (size_t i = 0; i < 2 && !done; ++i) {
          Value* mm = p->input(i);
          Value* bias = p->input(1 - i);
          if (mm && bias && mm->producer() && mm->producer()->op_type == "MatMul" &&
              mm->producer()->domain.empty() && mm->producer()->graph() == &g &&
              passes::HasSingleUse(*model_.graph, mm))
            done = FoldMatMul(g, *mm->producer(), p, *params);
        }
      }
      if (!done) continue;
      Value* out = bn->output(0);
      g.RemoveNode(bn);
      Node* last = y->producer();
      for (size_t i = 0; i < last->num_outputs(); ++i)
        if (last->output(i) == y) last->SetOutput(i, out);
      ctx_.changed = true;
    }
  }

 private:
  // (bias·bias_scale) mapped through the BN: (bias·bias_scale)·s + shift, as a
  // [C] tensor. `bias` may be null (zero) or hold 1 or C elements.
  static std::optional<Tensor> NewBias(const Value* bias, double bias_scale, const BnParams& p, DataType dt) {
    size_t c = p.scale.size();
    std::vector<double> b(c, 0.0);
    if (bias) {
      if (!IsConstant(bias)) return std::nullopt;
      std::vector<double> v = ToDoubles(*bias->data);
      if (v.size() != c && v.size() != 1) return std::nullopt;
      for (size_t k = 0; k < c; ++k) b[k] = v[v.size() == 1 ? 0 : k];
    }
    for (size_t k = 0; k < c; ++k) b[k] = b[k] * bias_scale * p.scale[k] + p.shift[k];
    return passes::FromDoubles(dt, {static_cast<int64_t>(c)}, b);
  }

  bool FoldConv(Graph& g, Node& conv, const BnParams& p) {
    Value* w = conv.input(1);
    if (!IsConstant(w) || w->data->rank() < 2) return false;
    const Value* b = conv.input(2);
    if (b && (!IsConstant(b) || b->data->rank() != 1)) return false;
    auto nw = ScaleAlong(*w->data, 0, p.scale);
    auto nb = NewBias(b, 1.0, p, w->data->dtype());
    if (!nw || !nb) return false;
    conv.SetInput(1, passes::AddInitializer(g, w->name() + "_bn", *nw));
    Value* bias = passes::AddInitializer(g, conv.output(0)->name() + "_bias", *nb);
    if (conv.num_inputs() < 3)
      conv.AddInput(bias);
    else
      conv.SetInput(2, bias);
    return true;
  }

  bool FoldGemm(Graph& g, Node& gemm, const BnParams& p) {
    Value* b = gemm.input(1);
    if (!IsConstant(b) || b->data->rank() != 2 || passes::AttrInt(gemm, "transA", 0) != 0) return false;
    int axis = passes::AttrInt(gemm, "transB", 0) ? 0 : 1;
    const Value* c = gemm.input(2);
    if (c && (!IsConstant(c) || (c->data->rank() == 2 && c->data->dim(0) != 1))) return false;
    auto nb = ScaleAlong(*b->data, axis, p.scale);
    auto nc = NewBias(c, passes::AttrFloat(gemm, "beta", 1.0f), p, b->data->dtype());
    if (!nb || !nc) return false;
    gemm.SetInput(1, passes::AddInitializer(g, b->name() + "_bn", *nb));
    Value* bias = passes::AddInitializer(g, gemm.output(0)->name() + "_bias", *nc);
    if (gemm.num_inputs() < 3)
      gemm.AddInput(bias);
    else
      gemm.SetInput(2, bias);
    gemm.attrs["beta"] = Attribute::FromFloat(1.0f);
    return true;
  }

  // LeViT's LinearNorm (and BatchNorm1d after a Linear on tokens in general): MatMul(x, W) [→ Add(bias)] →
  // Flatten/Reshape to [M, C] → BN, the flattening keeping the product's last axis (the BN's channels). The
  // BN folds into W's columns and the bias (an Add made when there was none); the flattening stays (no copy).
  bool FoldThroughFlatten(Graph& g, Node& flat, const BnParams& p) {
    Value* t = flat.num_inputs() > 0 ? flat.input(0) : nullptr;
    if (!t) return false;
    const Shape& in = t->shape();
    const Shape& out = flat.output(0)->shape();
    const int64_t c = static_cast<int64_t>(p.scale.size());
    if (!in.rank_known() || in.rank() < 2 || !out.rank_known() || out.rank() != 2 ||
        !in[in.rank() - 1].known() || in[in.rank() - 1].value() != c || !out[1].known() ||
        out[1].value() != c || !passes::HasSingleUse(*model_.graph, t))
      return false;
    Node* q = t->producer();
    if (!q || q->graph() != &g || !q->domain.empty()) return false;
    Node* mm = q;
    Node* add = nullptr;
    if (q->op_type == "Add" && passes::IsPlainNode(q, 2)) {
      for (size_t i = 0; i < 2 && !add; ++i) {
        Value* v = q->input(i);
        if (v->producer() && v->producer()->op_type == "MatMul" && v->producer()->domain.empty() &&
            v->producer()->graph() == &g && IsConstant(q->input(1 - i)) &&
            passes::HasSingleUse(*model_.graph, v)) {
          mm = v->producer();
          add = q;
        }
      }
      if (!add) return false;
    }
    if (mm->op_type != "MatMul" || !passes::IsPlainNode(mm, 2)) return false;
    Value* w = mm->input(1);
    if (!IsConstant(w) || w->data->rank() != 2) return false;
    const Value* bias = add ? (add->input(0) == mm->output(0) ? add->input(1) : add->input(0)) : nullptr;
    if (bias && bias->data->numel() != c && bias->data->numel() != 1) return false;
    auto nw = ScaleAlong(*w->data, 1, p.scale);
    auto nb = NewBias(bias, 1.0, p, w->data->dtype());
    if (!nw || !nb) return false;
    mm->SetInput(1, passes::AddInitializer(g, w->name() + "_bn", *nw));
    Value* b = passes::AddInitializer(g, t->name() + "_bias", *nb);
    if (add) {
      add->SetInput(add->input(0) == mm->output(0) ? 1 : 0, b);
    } else {
      Value* biased =
          passes::InsertOp(g, &flat, "Add", t->name() + "_biased", {t, b}, t->dtype(), t->shape());
      flat.SetInput(0, biased);
    }
    return true;
  }

  // MatMul(x, W) [→ Add(bias)] → BN with x and W 2-D becomes one Gemm.
  bool FoldMatMul(Graph& g, Node& mm, Node* add, const BnParams& p) {
    Value* x = mm.input(0);
    Value* w = mm.input(1);
    if (!x || !IsConstant(w) || w->data->rank() != 2 || x->shape().rank() != 2) return false;
    const Value* bias = nullptr;
    if (add) {
      bias = add->input(0) == mm.output(0) ? add->input(1) : add->input(0);
      if (!IsConstant(bias) || bias->data->rank() > 2 || (bias->data->rank() == 2 && bias->data->dim(0) != 1))
        return false;
    }
    auto nw = ScaleAlong(*w->data, 1, p.scale);
    auto nb = NewBias(bias, 1.0, p, w->data->dtype());
    if (!nw || !nb) return false;
    Value* y = add ? add->output(0) : mm.output(0);
    Node* gemm = g.InsertNode(&mm, "Gemm", mm.name);
    gemm->AddInput(x);
    gemm->AddInput(passes::AddInitializer(g, w->name() + "_bn", *nw));
    gemm->AddInput(passes::AddInitializer(g, y->name() + "_bias", *nb));
    if (add) g.RemoveNode(add);
    g.RemoveNode(&mm);
    gemm->AddOutput(y);
    return true;
  }

  Model& model_;
  PassContext& ctx_;
  int64_t opset_;
};

}  // namespace

Status RunFuseBatchNorm(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  BnFolder folder(model, ctx);
  passes::ForEachGraph(*model.graph, [&](Graph& g) { folder.FoldGraph(g); });
  return Status::Ok();
}

}  // namespace kiln
