// Build pass: 3-D attention between head-split copies → 4-D "bshd" attention
// on the views (see attention_heads.h).
#include "passes/attention_heads.h"

#include <optional>
#include <string>
#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::HasRank;
using passes::HasSingleUse;
using passes::IsOnnxOp;
using passes::SameDim;

const std::vector<int64_t> kSwapSeqHeads = {0, 2, 1, 3};

class AttentionHeads {
 public:
  explicit AttentionHeads(Graph& g) : g_(g) {}

  int Run() {
    int rewritten = 0;
    for (Node* a : passes::KilnNodes(g_, "Attention")) rewritten += Rewrite(a) ? 1 : 0;
    return rewritten;
  }

 private:
  Node* SoleProducer(Value* v) { return passes::SoleProducer(g_, v); }

  static bool IsPerm(const Node* n, const std::vector<int64_t>& perm) {
    return IsOnnxOp(n, "Transpose") && passes::IsPlainNode(n, 1) && passes::AttrInts(*n, "perm") == perm;
  }

  struct HeadSplit {
    Node* reshape = nullptr;    // [B, H, S, D] → [B·H, S, D]
    Node* transpose = nullptr;  // [B, S, H, D] → [B, H, S, D]
    Value* view = nullptr;      // [B, S, H, D]
  };

  // v = Reshape(Transpose(X, [0, 2, 1, 3]), [B·H, S, D]) with single uses.
  std::optional<HeadSplit> SplitOf(Value* v) {
    Node* r = SoleProducer(v);
    if (!IsOnnxOp(r, "Reshape") || !HasRank(v, 3)) return std::nullopt;
    Node* t = SoleProducer(r->input(0));
    if (!IsPerm(t, kSwapSeqHeads) || !HasRank(t->input(0), 4)) return std::nullopt;
    const Shape& bhsd = t->output(0)->shape();
    const Shape& flat = v->shape();
    if (!SameDim(flat[1], bhsd[2]) || !SameDim(flat[2], bhsd[3]) || !SameDim(flat[0], bhsd[0] * bhsd[1]))
      return std::nullopt;
    return HeadSplit{r, t, t->input(0)};
  }

  // y = attention output [B·H, S, D]: Reshape to [B, H, S, D], then Transpose
  // to [B, S, H, D] (single uses); returns that Transpose.
  Node* MergeOf(Value* y, const Shape& q_view) {
    if (!HasSingleUse(g_, y)) return nullptr;
    Node* r = y->uses()[0];
    if (r->graph() != &g_ || !IsOnnxOp(r, "Reshape") || r->input(0) != y || !HasRank(r->output(0), 4)) return nullptr;
    const Shape& bhsd = r->output(0)->shape();
    if (!SameDim(bhsd[0], q_view[0]) || !SameDim(bhsd[1], q_view[2]) || !SameDim(bhsd[2], q_view[1]) ||
        !SameDim(bhsd[3], y->shape()[2]) || !HasSingleUse(g_, r->output(0)))
      return nullptr;
    Node* t = r->output(0)->uses()[0];
    return t->graph() == &g_ && IsPerm(t, kSwapSeqHeads) ? t : nullptr;
  }

  // The bias must not depend on the merged B·H axis.
  static bool BiasKeepsMeaning(const Value* bias) {
    if (!bias) return true;
    const Shape& s = bias->shape();
    if (!s.rank_known()) return false;
    return s.rank() <= 2 || (s.rank() == 3 && s[0].known() && s[0].value() == 1);
  }

  // x = Reshape(Mul(P, c)) with c a one-element constant of x's type: the Mul.
  Node* ScaledBeforeReshape(Value* x) {
    Node* r = SoleProducer(x);
    if (!IsOnnxOp(r, "Reshape")) return nullptr;
    Node* m = SoleProducer(r->input(0));
    if (!IsOnnxOp(m, "Mul") || !passes::IsPlainNode(m, 2)) return nullptr;
    const Value* c = m->input(1);
    if (!passes::IsConstant(c) || c->dtype() != x->dtype() || c->data->numel() != 1 || m->input(0) == c) return nullptr;
    auto f = passes::ConstScalar(c);
    return f && *f != 0 ? m : nullptr;
  }

  bool Rewrite(Node* a) {
    const Attribute* layout = a->attr("layout");
    if (!layout || layout->s != "bhsd" || a->num_inputs() < 3 || a->num_outputs() != 1) return false;
    Value* bias = a->num_inputs() > 3 ? a->input(3) : nullptr;
    if (!BiasKeepsMeaning(bias)) return false;
    std::optional<HeadSplit> q = SplitOf(a->input(0)), k = SplitOf(a->input(1)), v = SplitOf(a->input(2));
    if (!q || !k || !v || q->reshape == k->reshape || k->reshape == v->reshape || q->reshape == v->reshape)
      return false;
    const Shape& qs = q->view->shape();
    for (const HeadSplit* h : {&*k, &*v})
      if (!SameDim(h->view->shape()[0], qs[0]) || !SameDim(h->view->shape()[2], qs[2])) return false;
    Node* merge = MergeOf(a->output(0), qs);
    if (!merge) return false;

    const Attribute* scale_attr = a->attr("scale");
    double scale = scale_attr ? scale_attr->f : 1.0;
    Node* mul = ScaledBeforeReshape(q->view);
    if (mul) {
      scale *= *passes::ConstScalar(mul->input(1));
      q->view->producer()->SetInput(0, mul->input(0));
      g_.RemoveNode(mul);
    }
    Node* fused = g_.InsertNode(a, "Attention", a->name, "kiln");
    fused->attrs = a->attrs;
    fused->attrs["layout"] = Attribute::FromString("bshd");
    fused->attrs["scale"] = Attribute::FromFloat(static_cast<float>(scale));
    for (Value* in : {q->view, k->view, v->view}) fused->AddInput(in);
    if (bias) fused->AddInput(bias);
    Value* out = merge->output(0);
    Node* merge_reshape = merge->input(0)->producer();
    for (Node* n : {merge, merge_reshape, a, q->reshape, q->transpose, k->reshape, k->transpose, v->reshape,
                    v->transpose})
      g_.RemoveNode(n);
    fused->AddOutput(out);
    return true;
  }

  Graph& g_;
};

}  // namespace

Status RunAttentionHeads(Model& model, PassContext& ctx) {
  if (!model.graph) return Status::Ok();
  if (AttentionHeads(*model.graph).Run() > 0) {
    model.graph->RemoveUnusedValues();
    ctx.changed = true;
  }
  return Status::Ok();
}

}  // namespace kiln
