// Attention fusion for the CUDA engine (see fuse_attention.h).
#include "passes/fuse_attention.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ops/attention_layout.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::HasSingleUse;
using passes::IsConstant;
using passes::IsOnnxOp;
using passes::IsPlainNode;
using passes::SameDim;
using passes::SoleProducer;


// The rank-r permutations the pattern uses.
std::vector<int64_t> SwapLastTwo(int r) { return r == 4 ? std::vector<int64_t>{0, 1, 3, 2} : std::vector<int64_t>{0, 2, 1}; }
std::vector<int64_t> SwapSeqHeads(int r) { return r == 4 ? std::vector<int64_t>{0, 2, 1, 3} : std::vector<int64_t>{1, 0, 2}; }
std::vector<int64_t> SeqFirstToKt(int r) { return r == 4 ? std::vector<int64_t>{0, 2, 3, 1} : std::vector<int64_t>{1, 2, 0}; }

std::optional<std::vector<int64_t>> TransposePerm(const Node* n) {
  if (!IsOnnxOp(n, "Transpose") || !IsPlainNode(n, 1)) return std::nullopt;
  return passes::AttrInts(*n, "perm");
}

class AttentionFuser {
 public:
  AttentionFuser(Graph& g, int64_t opset) : g_(g), opset_(opset) {}

  int Run() {
    int count = 0;
    std::vector<Node*> softmaxes;
    for (Node* n : g_.nodes())
      if (IsOnnxOp(n, "Softmax")) softmaxes.push_back(n);
    for (Node* s : softmaxes) count += Fuse(s) ? 1 : 0;
    return count;
  }

 private:
  // v = Mul(base, c) | Mul(c, base) | Div(base, c) with c a one-element
  // constant of v's type: appends the node to chain_, multiplies scale_ by
  // the factor and returns base; otherwise returns v unchanged.
  Value* StripScale(Value* v) {
    Node* n = SoleProducer(g_, v);
    if (!IsPlainNode(n, 2) || !(IsOnnxOp(n, "Mul") || IsOnnxOp(n, "Div"))) return v;
    const bool div = IsOnnxOp(n, "Div");
    for (size_t i = 0; i < (div ? 1u : 2u); ++i) {
      Value* base = n->input(i);
      Value* c = n->input(1 - i);
      if (base == c || !IsConstant(c) || c->data->dtype() != v->dtype() || c->data->numel() != 1 ||
          !v->shape().rank_known() || c->data->rank() > v->shape().rank())
        continue;
      std::optional<double> f = passes::ConstScalar(c);
      if (!f || *f == 0) continue;
      scale_ *= div ? 1.0 / *f : *f;
      chain_.push_back(n);
      return base;
    }
    return v;
  }

  bool Fuse(Node* softmax) {
    chain_.clear();
    scale_ = 1.0;
    if (!IsPlainNode(softmax, 1)) return false;
    Value* probs = softmax->output(0);
    const Shape& ps = probs->shape();
    if (!ps.rank_known() || (ps.rank() != 3 && ps.rank() != 4)) return false;
    const int r = ps.rank();
    int64_t axis = passes::AttrInt(*softmax, "axis", -1);
    if (!softmax->attrs.count("axis") && opset_ < 13) axis = 1;  // the old default
    if (axis != -1 && axis != r - 1) return false;
    // p → [Where(IsNaN(p), 0, p)] → MatMul(·, V)
    Value* weights = probs;
    Node* guard = NanGuard(probs);
    if (guard) {
      chain_.push_back(guard->input(0)->producer());
      chain_.push_back(guard);
      weights = guard->output(0);
    }
    if (!HasSingleUse(g_, weights)) return false;
    Node* mm2 = weights->uses()[0];
    if (mm2->graph() != &g_ || !IsOnnxOp(mm2, "MatMul") || !IsPlainNode(mm2, 2) || mm2->input(0) != weights ||
        mm2->input(1) == weights)
      return false;
    Value* v_log = mm2->input(1);
    // Softmax input: [Add(·, bias)]* ∘ [mask] ∘ [scale] ∘ MatMul(Q', Kᵀ'); T5 adds
    // its position bias and then the padding mask.
    Value* x = softmax->input(0);
    std::vector<Value*> addends;
    Node* add = SoleProducer(g_, x);  // the last Add, whose output is the biased scores
    Value* scores = x;
    for (Node* a = add; IsOnnxOp(a, "Add") && IsPlainNode(a, 2); a = SoleProducer(g_, scores)) {
      const size_t before = addends.size();
      for (size_t i = 0; i < 2 && addends.size() == before; ++i)
        if (a->input(1 - i) != a->input(i) && LeadsToScores(a->input(i))) {
          scores = a->input(i);
          addends.push_back(a->input(1 - i));
        }
      if (addends.size() == before || addends.size() > kMaxAddends) return false;
      chain_.push_back(a);
    }
    Value* bias = addends.empty() ? nullptr : addends[0];
    Node* mask = MaskWhere(scores);  // Where(causal, s, min) / masked_fill: part of the bias
    if (mask) {
      chain_.push_back(mask);
      scores = mask->input(ScoresSlot(mask));
    }
    Value* raw = StripScale(scores);
    Node* mm1 = SoleProducer(g_, raw);
    if (!IsOnnxOp(mm1, "MatMul") || !IsPlainNode(mm1, 2)) return false;
    chain_.push_back(mm1);
    Value* q_log = StripScale(mm1->input(0));
    Value* kt = StripScale(mm1->input(1));
    Node* kt_node = SoleProducer(g_, kt);
    std::optional<std::vector<int64_t>> kperm = TransposePerm(kt_node);
    // The dynamo exporter's Kᵀ: Reshape(Transpose(K [S, N, D], [1, 2, 0]), [B, H, D, S]).
    Value* k3 = kperm || r != 4 ? nullptr : SeqFirstKt(kt);
    if (!kperm && !k3) return false;
    chain_.push_back(kt_node);
    if (k3) chain_.push_back(kt_node->input(0)->producer());
    Value* k_phys = k3 ? kt : kt_node->input(0);  // (the checks below see Kᵀ's rank and type)
    // Types and shapes.
    const DataType dt = probs->dtype();
    for (const Value* v : {q_log, kt, v_log, k_phys, raw, mm2->output(0)})
      if (v->dtype() != dt || !v->shape().rank_known() || v->shape().rank() != r) return false;
    if (!passes::IsArithmeticFloat(dt) || (bias && bias->dtype() != dt)) return false;
    const Shape& qs = q_log->shape();
    const Shape& ks = kt->shape();  // [.., H, D, Skv]
    const Shape& vs = v_log->shape();
    const Dim& d = qs[static_cast<size_t>(r - 1)];
    const Dim& dv = vs[static_cast<size_t>(r - 1)];
    if (!d.known() || !dv.known() || d.value() > kMaxAttentionHeadDim || dv.value() > kMaxAttentionHeadDim ||
        d.value() <= 0 || dv.value() <= 0 || !SameDim(d, ks[static_cast<size_t>(r - 2)]))
      return false;
    for (size_t a = 0; a + 2 < static_cast<size_t>(r); ++a)
      if (!SameDim(qs[a], ks[a]) || !SameDim(qs[a], vs[a])) return false;
    std::optional<Shape> bias_shape = bias ? std::optional<Shape>(bias->shape()) : std::nullopt;
    for (size_t i = 1; i < addends.size() && bias_shape; ++i)
      bias_shape = BroadcastShape(*bias_shape, addends[i]->shape());
    for (Value* b : addends)
      if (b->dtype() != dt) return false;
    // The bias Add's output has the scores' shape: no valid bias grows them,
    // although some of its dims are unknown here (HF's masks are
    // `mask.expand(batch, -1, q, k)`, whose -1 shape inference cannot follow).
    // At run time each bias dim must be 1 or the scores' (the Adds would fail
    // otherwise), and the attention kernels check just that.
    const bool keeps = bias && KeepsShape(add->output(0)->shape(), raw->shape());
    if (bias && !bias_shape) return false;
    if (bias && !BiasFits(*bias_shape, raw->shape()) && !keeps) return false;
    std::optional<Shape> mask_bias_shape;
    if (mask) {  // its fill has the scores' type (MaskWhere)
      mask_bias_shape = bias ? BroadcastShape(mask->input(0)->shape(), *bias_shape) : mask->input(0)->shape();
      if (!mask_bias_shape || (!BiasFits(*mask_bias_shape, raw->shape()) && !keeps)) return false;
    }
    // Layout: K's Transpose says which; "bshd" also needs Q's and V's.
    AttentionLayout layout = AttentionLayout::kBhsd;
    Value* q_in = q_log;
    Value* k_in = k_phys;
    Value* v_in = v_log;
    std::vector<std::pair<Value*, Shape>> regroup;  // "sbhd": [S, N, D] sources, their [B, H, S, D] views
    if (k3) {
      Value* q3 = SeqFirstSource(q_log);
      Value* v3 = SeqFirstSource(v_log);
      if (!q3 || !v3) return false;
      layout = AttentionLayout::kSbhd;
      AbsorbSeqFirst({q_log, v_log});
      regroup = {{q3, qs}, {k3, Shape({ks[0], ks[1], ks[3], ks[2]})}, {v3, vs}};
    } else if (*kperm == SeqFirstToKt(r)) {
      Node* qt = SoleProducer(g_, q_log);
      Node* vt = SoleProducer(g_, v_log);
      if (qt == vt || TransposePerm(qt) != SwapSeqHeads(r) || TransposePerm(vt) != SwapSeqHeads(r)) return false;
      layout = AttentionLayout::kBshd;
      q_in = qt->input(0);
      v_in = vt->input(0);
      chain_.push_back(qt);
      chain_.push_back(vt);
    } else if (*kperm != SwapLastTwo(r)) {
      return false;
    } else if (r == 4) {
      Value* q3 = SeqFirstSource(q_log);
      Value* kr = SeqFirstSource(k_phys);
      Value* v3 = SeqFirstSource(v_log);
      if (q3 && kr && v3) {
        layout = AttentionLayout::kSbhd;
        AbsorbSeqFirst({q_log, k_phys, v_log});
        regroup = {{q3, qs}, {kr, k_phys->shape()}, {v3, vs}};
      }
    }
    chain_.push_back(softmax);
    chain_.push_back(mm2);
    Value* y = mm2->output(0);
    Node* last = mm2;
    Value* out = y;
    Node* yt = nullptr;  // absorbed Transpose of Y to the layout
    if (layout != AttentionLayout::kBhsd && HasSingleUse(g_, y) && y->uses()[0]->graph() == &g_ &&
        TransposePerm(y->uses()[0]) == FromLogical(layout, r)) {
      yt = y->uses()[0];
      chain_.push_back(yt);
      last = yt;
      out = yt->output(0);
    }
    // The fused node takes `last`'s place; without an absorbed Transpose, a
    // new one turns its output back into Y.
    Node* next = NextNode(last);
    std::vector<Value*> inputs = {q_in, k_in, v_in};
    for (size_t i = 0; i < regroup.size(); ++i) inputs[i] = Regroup(last, regroup[i].first, regroup[i].second);
    if (addends.size() > 1) bias = SumBiases(last, addends, *bias_shape);
    if (mask) bias = MaskBias(last, mask, bias, *mask_bias_shape);
    Node* fused = g_.InsertNode(last, "Attention", mm1->name, "kiln");
    fused->attrs["scale"] = Attribute::FromFloat(static_cast<float>(scale_));
    fused->attrs["layout"] = Attribute::FromString(AttentionLayoutName(layout));
    for (Value* v : inputs) fused->AddInput(v);
    if (bias) fused->AddInput(bias);
    Value* zero = guard ? guard->input(1) : nullptr;
    for (auto it = chain_.rbegin(); it != chain_.rend(); ++it) g_.RemoveNode(*it);
    Value* made = out;  // what the fused node (with the guard and the Transpose back after it) makes
    if (layout != AttentionLayout::kBhsd && !yt) {
      const std::vector<int64_t> perm = FromLogical(layout, r);
      std::vector<Dim> dims;
      for (int64_t a : perm) dims.push_back(y->shape()[static_cast<size_t>(a)]);
      made = passes::NewTensorValue(g_, y->name() + "/" + AttentionLayoutName(layout), dt, Shape(dims));
    }
    fused->AddOutput(guard ? AddNanGuard(next, zero, made) : made);
    if (made != out) {
      Node* back = g_.InsertNode(next, "Transpose", g_.UniqueName(y->name() + "/to_bhsd"));
      back->attrs["perm"] = Attribute::FromInts(ToLogical(layout, r));
      back->AddInput(made);
      back->AddOutput(y);
    }
    return true;
  }

  // probs → Where(IsNaN(probs), 0, probs): torch's SDPA decomposition (the
  // dynamo exporter) zeroes the rows a full mask made NaN. Returns the Where.
  Node* NanGuard(Value* probs) {
    if (probs->uses().size() != 2 || passes::IsAnyGraphOutput(g_, probs)) return nullptr;
    for (Node* n : probs->uses()) {
      if (!IsOnnxOp(n, "IsNaN") || !IsPlainNode(n, 1)) continue;
      Value* isnan = n->output(0);
      if (!HasSingleUse(g_, isnan)) return nullptr;
      Node* where = isnan->uses()[0];
      if (where->graph() != &g_ || !IsOnnxOp(where, "Where") || !IsPlainNode(where, 3) || where->input(0) != isnan ||
          where->input(2) != probs || !IsConstant(where->input(1)) || where->input(1)->data->numel() != 1 ||
          where->input(1)->dtype() != probs->dtype())
        return nullptr;
      std::optional<double> z = passes::ConstScalar(where->input(1));
      if (!z || *z != 0) return nullptr;
      const Node* other = probs->uses()[0] == n ? probs->uses()[1] : probs->uses()[0];
      return other == where ? where : nullptr;
    }
    return nullptr;
  }

  // out = Where(IsNaN(y), zero, y) by new nodes before `at`: the guard after
  // the fused node (its fully masked rows are NaN, as the unfused Softmax's;
  // with finite V, zeroing them after the product equals zeroing the
  // weights before it). Returns y, the value the fused node makes.
  Value* AddNanGuard(Node* at, Value* zero, Value* out) {
    Value* y = passes::NewTensorValue(g_, out->name() + "/unguarded", out->dtype(), out->shape());
    Value* nan = passes::NewTensorValue(g_, out->name() + "/isnan", DataType::kBool, out->shape());
    Node* isnan = g_.InsertNode(at, "IsNaN", g_.UniqueName(out->name() + "/isnan"));
    isnan->AddInput(y);
    isnan->AddOutput(nan);
    Node* where = g_.InsertNode(at, "Where", g_.UniqueName(out->name() + "/nan_to_zero"));
    where->AddInput(nan);
    where->AddInput(zero);
    where->AddInput(y);
    where->AddOutput(out);
    return y;
  }

  // x = Reshape(Transpose(X, perm), [B, H, ·, ·]) with X = [S, N, D] and
  // x's axes seq_axis / dim_axis holding S / D: returns X, else nullptr.
  // Needs H and D known and single uses.
  Value* ReshapedTransposeSource(Value* x, const std::vector<int64_t>& perm, size_t seq_axis, size_t dim_axis) {
    Node* reshape = SoleProducer(g_, x);
    if (!IsOnnxOp(reshape, "Reshape") || reshape->num_outputs() != 1) return nullptr;
    const Shape& xs = x->shape();
    if (!xs.rank_known() || xs.rank() != 4 || !xs[1].known() || !xs[dim_axis].known()) return nullptr;
    Node* t = SoleProducer(g_, reshape->input(0));
    if (TransposePerm(t) != perm) return nullptr;
    Value* src = t->input(0);
    const Shape& ss = src->shape();
    if (!ss.rank_known() || ss.rank() != 3 || src->dtype() != x->dtype() || !SameDim(ss[0], xs[seq_axis]) ||
        !SameDim(ss[2], xs[dim_axis]))
      return nullptr;
    return src;
  }
  // nn.MultiheadAttention's heads: x = Reshape(Transpose([S, N, D], [1, 0, 2]), [B, H, S, D]).
  Value* SeqFirstSource(Value* x) { return ReshapedTransposeSource(x, SwapSeqHeads(3), 2, 3); }
  // The dynamo exporter's Kᵀ = Reshape(Transpose([S, N, D], [1, 2, 0]), [B, H, D, S]).
  Value* SeqFirstKt(Value* kt) { return ReshapedTransposeSource(kt, {1, 2, 0}, 3, 2); }

  // Queues the Reshape and Transpose that SeqFirstSource looked through for removal.
  void AbsorbSeqFirst(std::initializer_list<Value*> views) {
    for (Value* x : views) {
      Node* reshape = x->producer();
      chain_.push_back(reshape);
      chain_.push_back(reshape->input(0)->producer());
    }
  }

  // [S, N, D] as [S, B, H, D] (a Reshape: no data moves), inserted before
  // `before`; `vs` is the [B, H, S, D] shape it stands for.
  Value* Regroup(Node* before, Value* src, const Shape& vs) {
    Value* out = passes::NewTensorValue(g_, src->name() + "/sbhd", src->dtype(), Shape({vs[2], vs[0], vs[1], vs[3]}));
    Node* r = g_.InsertNode(before, "Reshape", g_.UniqueName(src->name() + "/heads"));
    r->AddInput(src);
    r->AddInput(passes::AddInt64Initializer(g_, src->name() + "/heads_shape", {0, -1, vs[1].value(), vs[3].value()}));
    r->AddOutput(out);
    return out;
  }

  // Permutations between the logical [B, H, S, D] and a layout.
  static std::vector<int64_t> FromLogical(AttentionLayout l, int r) {
    return l == AttentionLayout::kSbhd ? std::vector<int64_t>{2, 0, 1, 3} : SwapSeqHeads(r);
  }
  static std::vector<int64_t> ToLogical(AttentionLayout l, int r) {
    return l == AttentionLayout::kSbhd ? std::vector<int64_t>{1, 2, 0, 3} : SwapSeqHeads(r);
  }

  // The bias broadcasts to the scores without growing them: right-aligned,
  // each of its dims is 1 or provably the scores' dim.
  static bool BiasFits(const Shape& bias, const Shape& scores) {
    if (!bias.rank_known() || bias.rank() > scores.rank()) return false;
    for (int i = 1; i <= bias.rank(); ++i) {
      const Dim& b = bias[static_cast<size_t>(bias.rank() - i)];
      const Dim& s = scores[static_cast<size_t>(scores.rank() - i)];
      if (!(b.known() && b.value() == 1) && !SameDim(b, s)) return false;
    }
    return true;
  }

  // sum's dims are provably the scores'.
  static bool KeepsShape(const Shape& sum, const Shape& scores) {
    if (!sum.rank_known() || !scores.rank_known() || sum.rank() != scores.rank()) return false;
    for (int i = 0; i < sum.rank(); ++i)
      if (!SameDim(sum[static_cast<size_t>(i)], scores[static_cast<size_t>(i)])) return false;
    return true;
  }

  // v = Where(cond, s, m) or Where(cond, m, s) (torch's masked_fill): the
  // scores s masked to m, a one-element constant so negative that s + m == m
  // for any finite score (-inf; <= -1e30 in float32 and float64, as
  // torch.finfo(float32).min; <= -6e4 in 16-bit types, where only -inf is
  // exact, so a row with every score masked may differ), and cond a bool that
  // broadcasts to the scores. Then Softmax(Where(c, s, m) + a)
  // = Softmax(s + (Where(c, 0, m) + a)): the mask becomes part of the bias.
  // A finite fill down to -1e4 (older GPT-2, GPT-Neo and GPT-J exports:
  // masked_bias -1e4 / -1e9) is taken only for a mask that keeps a key in
  // every row (KeepsFirstKey: a causal mask): there a masked weight,
  // exp(s + m - max) or exp(m - max), is 0 in float32 either way for scores
  // within ±4900 of each other, and only a row with every key masked (uniform
  // weights under Where, softmax(s) with the bias) would tell them apart.
  Node* MaskWhere(Value* v) {
    Node* w = SoleProducer(g_, v);
    if (!IsOnnxOp(w, "Where") || !IsPlainNode(w, 3) || IsConstant(w->input(1)) == IsConstant(w->input(2)))
      return nullptr;
    Value* cond = w->input(0);
    Value* fill = w->input(FillSlot(w));
    if (cond->dtype() != DataType::kBool || fill->dtype() != v->dtype() || fill->data->numel() != 1 ||
        !v->shape().rank_known() || !BiasFits(cond->shape(), v->shape()))
      return nullptr;
    std::optional<double> m = passes::ConstScalar(fill);
    const bool wide = v->dtype() == DataType::kFloat || v->dtype() == DataType::kDouble;
    if (!m) return nullptr;
    const bool negligible = std::isinf(*m) ? *m < 0 : *m <= (wide ? -1e30 : -6e4);
    if (!negligible && !(*m <= -1e4 && KeepsFirstKey(cond, FillSlot(w) == 2))) return nullptr;
    return w;
  }

  // Every row of the mask (last axis: the keys) keeps key 0: cond (true =
  // keep when keep_true, else true = mask) is, through Casts, Reshapes and
  // Unsqueezes that keep the last axis and Slices that start it at 0, a
  // constant whose first column keeps, or Trilu(ones, upper = 0, k >= 0): the
  // lower triangle, a causal mask. Proves no row is fully masked.
  bool KeepsFirstKey(Value* cond, bool keep_true) const {
    Value* v = cond;
    for (int depth = 0; depth < 8 && v; ++depth) {
      if (IsConstant(v)) return FirstColumnKeeps(*v->data, keep_true);
      Node* n = v->producer();
      if (!n || n->graph() != &g_ || n->num_outputs() != 1 || !n->input(0)) return false;
      const Shape& in = n->input(0)->shape();
      const Shape& out = v->shape();
      const bool last_kept = in.rank_known() && out.rank_known() && in.rank() >= 1 && out.rank() >= 1 &&
                             SameDim(in.dims().back(), out.dims().back());
      if (IsOnnxOp(n, "Cast")) {
        // To bool, or from bool: zero stays zero and nonzero nonzero (float → int could truncate 0.5 to 0).
        if (v->dtype() != DataType::kBool && n->input(0)->dtype() != DataType::kBool) return false;
      } else if (IsOnnxOp(n, "Unsqueeze") || IsOnnxOp(n, "Reshape") || IsOnnxOp(n, "Expand")) {
        if (!last_kept) return false;
      } else if (IsOnnxOp(n, "Slice")) {
        if (!SliceKeepsFirstColumn(*n)) return false;
      } else if (IsOnnxOp(n, "Trilu")) {
        return keep_true && passes::AttrInt(*n, "upper", 1) == 0 && TriluOffsetAtLeastZero(*n) &&
               AllNonZero(n->input(0));
      } else {
        return false;
      }
      v = n->input(0);
    }
    return false;
  }

  // Column 0 of every row of t (last axis) keeps: nonzero when keep_true, zero otherwise.
  static bool FirstColumnKeeps(const Tensor& t, bool keep_true) {
    if (t.rank() < 1 || t.dims().back() <= 0) return false;
    const int64_t row = t.dims().back();
    for (int64_t i = 0; i < t.numel(); i += row)
      if ((t.ScalarAt(i) != 0) != keep_true) return false;
    return true;
  }

  // A Slice whose bounds are constant where they touch the last axis and start it at 0.
  static bool SliceKeepsFirstColumn(const Node& n) {
    const Shape& in = n.input(0)->shape();
    if (!in.rank_known() || n.num_inputs() < 3 || n.attr("starts")) return false;
    const int64_t last = in.rank() - 1;
    std::vector<int64_t> axes;
    if (n.num_inputs() > 3 && n.input(3)) {
      auto a = passes::ConstInts(n.input(3));
      if (!a) return false;
      axes = *a;
    } else {
      for (int64_t i = 0; i < in.rank(); ++i) axes.push_back(i);
    }
    for (size_t i = 0; i < axes.size(); ++i) {
      if (axes[i] != last && axes[i] != -1) continue;
      auto starts = passes::ConstInts(n.input(1));
      if (!starts || i >= starts->size() || (*starts)[i] != 0) return false;
      if (n.num_inputs() > 4 && n.input(4)) {
        auto steps = passes::ConstInts(n.input(4));
        if (!steps || i >= steps->size() || (*steps)[i] <= 0) return false;
      }
    }
    return true;
  }

  static bool TriluOffsetAtLeastZero(const Node& n) {
    if (n.num_inputs() < 2 || !n.input(1)) return true;  // k = 0
    std::optional<double> k = passes::ConstScalar(n.input(1));
    return k && *k >= 0;
  }

  // v is all nonzero: a constant, or ConstantOfShape of a nonzero value.
  static bool AllNonZero(const Value* v) {
    const Tensor* t = IsConstant(v) ? &*v->data : nullptr;
    const Node* n = v->producer();
    if (!t && IsOnnxOp(n, "ConstantOfShape")) {
      const Attribute* value = n->attr("value");
      if (!value || value->type != Attribute::Type::kTensor) return false;  // the default value is 0
      t = &value->t;
    }
    if (!t || t->numel() == 0) return false;
    for (int64_t i = 0; i < t->numel(); ++i)
      if (t->ScalarAt(i) == 0) return false;
    return true;
  }
  // A mask Where's constant (1 or 2) and its scores (the other).
  static size_t FillSlot(const Node* where) { return IsConstant(where->input(1)) ? 1 : 2; }
  static size_t ScoresSlot(const Node* where) { return 3 - FillSlot(where); }

  // The shape a and b broadcast to: each dim pair's common dim when they are
  // provably equal or one is 1, else unknown (a run-time check's business);
  // nullopt when a rank is unknown.
  static std::optional<Shape> BroadcastShape(const Shape& a, const Shape& b) {
    if (!a.rank_known() || !b.rank_known()) return std::nullopt;
    const int r = std::max(a.rank(), b.rank());
    std::vector<Dim> dims(static_cast<size_t>(r));
    for (int i = 1; i <= r; ++i) {
      const Dim one(1);
      const Dim& x = i <= a.rank() ? a[static_cast<size_t>(a.rank() - i)] : one;
      const Dim& y = i <= b.rank() ? b[static_cast<size_t>(b.rank() - i)] : one;
      if (x.known() && x.value() == 1)
        dims[static_cast<size_t>(r - i)] = y;
      else if ((y.known() && y.value() == 1) || SameDim(x, y))
        dims[static_cast<size_t>(r - i)] = x;
      else
        dims[static_cast<size_t>(r - i)] = Dim::Unknown();
    }
    return Shape(dims);
  }

  // The bias that replaces a mask Where (and adds the Add's bias, if any),
  // computed by new nodes inserted before `at`.
  Value* MaskBias(Node* at, Node* where, Value* bias, const Shape& shape) {
    const DataType dt = where->output(0)->dtype();
    Value* zero = passes::AddInitializer(g_, where->name + "/zero", passes::FromDoubles(dt, {}, {0.0}));
    Value* masked = passes::NewTensorValue(g_, where->output(0)->name() + "/mask_bias", dt, where->input(0)->shape());
    Node* w = g_.InsertNode(at, "Where", g_.UniqueName(where->name + "/mask_bias"));
    w->AddInput(where->input(0));  // the scores' slot becomes 0
    w->AddInput(FillSlot(where) == 1 ? where->input(1) : zero);
    w->AddInput(FillSlot(where) == 2 ? where->input(2) : zero);
    w->AddOutput(masked);
    if (!bias) return masked;
    Value* sum = passes::NewTensorValue(g_, masked->name() + "_plus_bias", dt, shape);
    Node* add = g_.InsertNode(at, "Add", g_.UniqueName(where->name + "/mask_plus_bias"));
    add->AddInput(masked);
    add->AddInput(bias);
    add->AddOutput(sum);
    return sum;
  }

  // The addends of a chain of bias Adds as one value, summed by new Add nodes
  // inserted before `at`; `shape` is the sum's.
  Value* SumBiases(Node* at, const std::vector<Value*>& addends, const Shape& shape) {
    Value* sum = addends[0];
    for (size_t i = 1; i < addends.size(); ++i) {
      Value* next = passes::NewTensorValue(g_, g_.UniqueName(addends[0]->name() + "/bias_sum"), sum->dtype(), shape);
      Node* add = g_.InsertNode(at, "Add", g_.UniqueName(addends[i]->name() + "/bias_sum"));
      add->AddInput(sum);
      add->AddInput(addends[i]);
      add->AddOutput(next);
      sum = next;
    }
    return sum;
  }

  // v is the scores, possibly after more bias Adds (single uses).
  bool LeadsToScores(Value* v) {
    return passes::ReachesThroughAdds(g_, v, static_cast<int>(kMaxAddends), [this](Value* x) { return ComesFromMatMul(x); });
  }

  // v is a MatMul's output, possibly scaled or masked (the scores, not the bias).
  bool ComesFromMatMul(Value* v) {
    if (Node* w = MaskWhere(v)) v = w->input(ScoresSlot(w));
    Node* p = SoleProducer(g_, v);
    if (IsOnnxOp(p, "MatMul")) return true;
    if (!IsPlainNode(p, 2) || !(IsOnnxOp(p, "Mul") || IsOnnxOp(p, "Div"))) return false;
    for (Value* in : p->inputs())
      if (IsOnnxOp(SoleProducer(g_, in), "MatMul")) return true;
    return false;
  }

  // The node after n in schedule order (nullptr when n is last).
  Node* NextNode(const Node* n) const {
    const std::vector<Node*>& nodes = g_.nodes();
    for (size_t i = 0; i + 1 < nodes.size(); ++i)
      if (nodes[i] == n) return nodes[i + 1];
    return nullptr;
  }

  static constexpr size_t kMaxAddends = 4;  // bias Adds looked through

  Graph& g_;
  const int64_t opset_;  // default domain
  std::vector<Node*> chain_;
  double scale_ = 1.0;
};

}  // namespace

Status RunFuseAttention(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  passes::FinishKilnRewrite(model, ctx, AttentionFuser(*model.graph, model.OpsetOf("")).Run());
  return Status::Ok();
}

}  // namespace kiln
