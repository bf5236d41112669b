// Build pass: HF's repeat_kv copies in front of kiln.Attention → grouped-query
// attention on the K/V heads themselves (see attention_gqa.h).
#include "passes/attention_gqa.h"

#include <optional>
#include <vector>

#include "ops/attention_layout.h"
#include "passes/dce.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::IsOnnxOp;
using passes::SameDim;

class AttentionGqa {
 public:
  AttentionGqa(Model& model) : g_(*model.graph), opset_(model.OpsetOf("")) {}

  int Run() {
    int rewritten = 0;
    for (Node* a : passes::KilnNodes(g_, "Attention")) rewritten += Rewrite(a) ? 1 : 0;
    return rewritten;
  }

 private:
  struct Repeat {
    Value* source = nullptr;  // K0 / V0: [.., Hkv, ..]
    int64_t kv_heads = 0;
  };

  // x = Reshape(Expand(Unsqueeze(K0, head + 1)), ..) that repeats each of K0's
  // heads `group` times along axis `head`.
  std::optional<Repeat> RepeatOf(Value* x, int head) {
    Node* reshape = passes::SoleProducer(g_, x);
    if (!IsOnnxOp(reshape, "Reshape")) return std::nullopt;
    Node* expand = passes::SoleProducer(g_, reshape->input(0));
    if (!IsOnnxOp(expand, "Expand")) return std::nullopt;
    Node* unsqueeze = passes::SoleProducer(g_, expand->input(0));
    if (!IsOnnxOp(unsqueeze, "Unsqueeze")) return std::nullopt;
    Value* source = unsqueeze->input(0);
    const Shape& src = source->shape();
    const Shape& wide = expand->output(0)->shape();
    const Shape& out = x->shape();
    if (!src.rank_known() || !wide.rank_known() || !out.rank_known() || wide.rank() != src.rank() + 1 ||
        out.rank() != src.rank())
      return std::nullopt;
    auto axes = passes::NodeAxes(*unsqueeze, opset_, 13, 1);
    if (!axes || axes->size() != 1 || ((*axes)[0] != head + 1 && (*axes)[0] != head + 1 - wide.rank()))
      return std::nullopt;
    const size_t h = static_cast<size_t>(head);
    const Dim kv = src[h], group = wide[h + 1];
    if (!kv.known() || !group.known() || !out[h].known() || out[h].value() != kv.value() * group.value())
      return std::nullopt;
    // Every other axis of K0, the expanded value and x is provably the same.
    for (size_t i = 0, w = 0; i < static_cast<size_t>(src.rank()); ++i, ++w) {
      if (w == h + 1) ++w;
      if (!SameDim(src[i], wide[w]) || (i != h && !SameDim(src[i], out[i]))) return std::nullopt;
    }
    if (!SameDim(src[h], wide[h])) return std::nullopt;
    return Repeat{source, kv.value()};
  }

  bool Rewrite(Node* a) {
    const Attribute* layout_attr = a->attr("layout");
    AttentionLayout layout = AttentionLayout::kBhsd;
    if (layout_attr && !ParseAttentionLayout(layout_attr->s, &layout)) return false;
    const Value* q = a->input(0);
    if (!q || !q->shape().rank_known()) return false;
    AttentionAxes ax;
    if (!AttentionAxesOf(layout, q->shape().rank(), &ax)) return false;
    std::optional<Repeat> k = RepeatOf(a->input(1), ax.h), v = RepeatOf(a->input(2), ax.h);
    if (!k || !v || k->kv_heads != v->kv_heads || a->input(1) == a->input(2)) return false;
    a->SetInput(1, k->source);
    a->SetInput(2, v->source);
    return true;
  }

  Graph& g_;
  int64_t opset_;
};

}  // namespace

Status RunAttentionGqa(Model& model, PassContext& ctx) {
  if (!model.graph) return Status::Ok();
  if (AttentionGqa(model).Run() > 0) {
    // The copies and the shape arithmetic that sized them are dead now.
    KILN_RETURN_IF_ERROR(RunDeadCodeElimination(model, ctx));
    model.graph->RemoveUnusedValues();
    ctx.changed = true;
  }
  return Status::Ok();
}

}  // namespace kiln
