// Build pass: Transposes between attention layouts around kiln.Attention go
// into the op's per-tensor layouts (see attention_views.h).
#include "passes/attention_views.h"

#include <optional>
#include <string>
#include <vector>

#include "ops/attention_layout.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::IsOnnxOp;

constexpr AttentionLayout kLayouts[] = {AttentionLayout::kBhsd, AttentionLayout::kBshd, AttentionLayout::kSbhd};

// Memory order of the logical axes (0 B, 1 H, 2 S, 3 D) in `layout` at `rank`
// (3-D: no B); empty when the layout has no such rank.
std::vector<int> AxisOrder(AttentionLayout layout, int rank) {
  AttentionAxes ax;
  if (!AttentionAxesOf(layout, rank, &ax)) return {};
  std::vector<int> order(static_cast<size_t>(rank));
  if (ax.b >= 0) order[static_cast<size_t>(ax.b)] = 0;
  order[static_cast<size_t>(ax.h)] = 1;
  order[static_cast<size_t>(ax.s)] = 2;
  order[static_cast<size_t>(rank - 1)] = 3;
  return order;
}

// The layout whose axis order `perm` turns into `to`'s (Transpose output
// axis j = input axis perm[j]), when there is one.
std::optional<AttentionLayout> SourceLayout(const std::vector<int64_t>& perm, AttentionLayout to, int rank) {
  const std::vector<int> out = AxisOrder(to, rank);
  if (out.empty() || perm.size() != out.size()) return std::nullopt;
  std::vector<int> in(out.size(), -1);
  for (size_t j = 0; j < perm.size(); ++j) {
    if (perm[j] < 0 || perm[j] >= rank || in[static_cast<size_t>(perm[j])] != -1) return std::nullopt;
    in[static_cast<size_t>(perm[j])] = out[j];
  }
  for (AttentionLayout l : kLayouts)
    if (AxisOrder(l, rank) == in) return l;
  return std::nullopt;
}

// The layout `perm` turns `from`'s axis order into, when there is one.
std::optional<AttentionLayout> TargetLayout(const std::vector<int64_t>& perm, AttentionLayout from, int rank) {
  for (AttentionLayout l : kLayouts) {
    auto src = SourceLayout(perm, l, rank);
    if (src && *src == from) return l;
  }
  return std::nullopt;
}

class AttentionViews {
 public:
  explicit AttentionViews(Graph& g) : g_(g) {}

  int Run() {
    int rewritten = 0;
    for (Node* a : passes::KilnNodes(g_, "Attention")) rewritten += Rewrite(a) ? 1 : 0;
    return rewritten;
  }

 private:
  static std::optional<std::vector<int64_t>> PlainPerm(const Node* t) {
    if (!IsOnnxOp(t, "Transpose") || !passes::IsPlainNode(t, 1)) return std::nullopt;
    return passes::AttrInts(*t, "perm");
  }

  bool Rewrite(Node* a) {
    const Attribute* layout = a->attr("layout");
    const Attribute* layouts = a->attr("layouts");
    AttentionLayouts l;
    if (a->num_inputs() < 3 || a->num_outputs() != 1 ||
        !ParseAttentionLayouts(layout ? layout->s : "bhsd", layouts ? &layouts->strings : nullptr, &l).empty())
      return false;
    const Value* q = a->input(0);
    if (!q || !q->shape().rank_known()) return false;
    const int rank = q->shape().rank();
    bool changed = false;
    AttentionLayout* in_layouts[3] = {&l.q, &l.k, &l.v};
    for (size_t i = 0; i < 3; ++i) {
      Node* t = passes::SoleProducer(g_, a->input(i));
      auto perm = PlainPerm(t);
      if (!perm || (i > 0 && a->input(i) == a->input(i - 1))) continue;
      auto from = SourceLayout(*perm, *in_layouts[i], rank);
      if (!from) continue;
      *in_layouts[i] = *from;
      a->SetInput(i, t->input(0));
      g_.RemoveNode(t);
      changed = true;
    }
    Value* y = a->output(0);
    if (passes::HasSingleUse(g_, y)) {
      Node* t = y->uses()[0];
      auto perm = PlainPerm(t);
      auto to = perm && t->graph() == &g_ ? TargetLayout(*perm, l.y, rank) : std::nullopt;
      if (to) {
        l.y = *to;
        Value* out = t->output(0);
        g_.RemoveNode(t);
        a->SetOutput(0, out);
        changed = true;
      }
    }
    if (!changed) return false;
    Attribute names;
    names.type = Attribute::Type::kStrings;
    names.strings = {AttentionLayoutName(l.q), AttentionLayoutName(l.k), AttentionLayoutName(l.v),
                     AttentionLayoutName(l.y)};
    a->attrs["layouts"] = names;
    return true;
  }

  Graph& g_;
};

}  // namespace

Status RunAttentionViews(Model& model, PassContext& ctx) {
  if (!model.graph) return Status::Ok();
  if (AttentionViews(*model.graph).Run() > 0) {
    model.graph->RemoveUnusedValues();
    ctx.changed = true;
  }
  return Status::Ok();
}

}  // namespace kiln
