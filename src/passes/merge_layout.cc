// Merging consecutive layout ops (see merge_layout.h).
#include "passes/merge_layout.h"

#include <algorithm>
#include <numeric>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "passes/fold_shapes.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::ConstInts;
using passes::SameDims;

bool IsDefaultDomain(const Node& n) { return n.domain.empty() || n.domain == "ai.onnx"; }

bool IsPureReshape(const Node& n) {
  return IsDefaultDomain(n) && (n.op_type == "Reshape" || n.op_type == "Flatten" || n.op_type == "Squeeze" ||
                                n.op_type == "Unsqueeze");
}

class Merger {
 public:
  Merger(Model& model, PassContext& ctx) : model_(model), ctx_(ctx), opset_(model.OpsetOf("")) {}

  void MergeGraph(Graph& g) {
    for (Node* b : g.nodes()) {
      if (!IsDefaultDomain(*b) || b->num_outputs() != 1 || !b->output(0) || !b->input(0)) continue;
      Value* y = b->input(0);
      Node* a = y->producer();
      if (!a || a->graph() != &g || !IsDefaultDomain(*a) || a->num_outputs() != 1 || !a->input(0)) continue;
      if (y->type.known() && y->type.kind != ValueKind::kTensor) continue;
      if (MergePair(g, *a, *b)) ctx_.changed = true;
    }
  }

 private:
  bool MergePair(Graph& g, Node& a, Node& b) {
    Value* x = a.input(0);
    Value* out = b.output(0);
    if (a.op_type == "Transpose" && b.op_type == "Transpose") return MergeTransposes(g, a, b);
    if (!IsPureReshape(a) || !IsPureReshape(b)) return false;
    // The chain gives back A's input.
    if (x->type.known() && x->type.dtype == out->type.dtype && SameDims(x->shape(), out->shape())) {
      if (passes::BypassNode(&b, out, x)) return true;
    }
    bool sq_a = a.op_type == "Squeeze" || a.op_type == "Unsqueeze";
    bool sq_b = b.op_type == "Squeeze" || b.op_type == "Unsqueeze";
    if (sq_a && sq_b) return MergeSqueezes(g, a, b);
    if (b.op_type == "Reshape" && MergeIntoReshape(g, a, b)) return true;
    return RewriteAsReshape(g, a, b);
  }

  // ---- Transpose∘Transpose ----

  std::optional<std::vector<int64_t>> Perm(const Node& t, int64_t rank) {
    auto p = passes::AttrInts(t, "perm");
    if (!p) {
      std::vector<int64_t> rev(static_cast<size_t>(rank));
      for (int64_t i = 0; i < rank; ++i) rev[static_cast<size_t>(i)] = rank - 1 - i;
      return rev;
    }
    if (static_cast<int64_t>(p->size()) != rank) return std::nullopt;
    std::vector<int64_t> sorted = *p;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t i = 0; i < rank; ++i)
      if (sorted[static_cast<size_t>(i)] != i) return std::nullopt;
    return p;
  }

  bool MergeTransposes(Graph& g, Node& a, Node& b) {
    Value* x = a.input(0);
    int64_t rank = x->shape().rank_known() ? x->shape().rank() : a.output(0)->shape().rank();
    if (rank < 0) return false;
    auto p1 = Perm(a, rank);
    auto p2 = Perm(b, rank);
    if (!p1 || !p2) return false;
    std::vector<int64_t> c(static_cast<size_t>(rank));
    bool identity = true;
    for (size_t j = 0; j < c.size(); ++j) {
      c[j] = (*p1)[static_cast<size_t>((*p2)[j])];
      identity = identity && c[j] == static_cast<int64_t>(j);
    }
    if (identity && passes::BypassNode(&b, b.output(0), x)) return true;
    b.SetInput(0, x);
    b.attrs["perm"] = Attribute::FromInts(c);
    return true;
  }

  // ---- Squeeze/Unsqueeze pairs ----

  // Normalized axes of a Squeeze/Unsqueeze; Squeeze without axes uses the
  // input's known dims of size 1 (all dims must be known).
  std::optional<std::vector<int64_t>> Axes(const Node& n) {
    auto axes = passes::NodeAxes(n, opset_, 13, 1);
    if (!axes) return std::nullopt;
    const Value* in = n.input(0);
    const Shape& s = in->shape();
    if (n.op_type == "Unsqueeze") {
      if (!s.rank_known() || axes->empty()) return std::nullopt;
      return passes::NormalizeAxes(*axes, s.rank() + static_cast<int64_t>(axes->size()));
    }
    if (!s.rank_known()) return std::nullopt;
    if (!axes->empty()) return passes::NormalizeAxes(*axes, s.rank());
    if (!s.fully_known()) return std::nullopt;
    std::vector<int64_t> ones;
    for (int i = 0; i < s.rank(); ++i)
      if (s[static_cast<size_t>(i)].value() == 1) ones.push_back(i);
    return ones;
  }

  bool MergeSqueezes(Graph& g, Node& a, Node& b) {
    Value* x = a.input(0);
    auto axes_a = Axes(a);
    auto axes_b = Axes(b);
    if (!axes_a || !axes_b || !x->shape().rank_known()) return false;
    int64_t r = x->shape().rank();
    bool un_a = a.op_type == "Unsqueeze";
    bool un_b = b.op_type == "Unsqueeze";
    if (un_a != un_b) {
      // Unsqueeze then Squeeze of the same axes (or the reverse) gives x back.
      if (*axes_a != *axes_b) return false;
      return passes::BypassNode(&b, b.output(0), x);
    }
    std::vector<int64_t> merged;
    if (un_a) {
      // Output position k ∉ axes_b holds y's next position; y's inserted ones are axes_a.
      int64_t out_rank = r + static_cast<int64_t>(axes_a->size() + axes_b->size());
      std::set<int64_t> in_b(axes_b->begin(), axes_b->end());
      std::set<int64_t> in_a(axes_a->begin(), axes_a->end());
      int64_t ypos = 0;
      for (int64_t k = 0; k < out_rank; ++k) {
        if (in_b.count(k)) {
          merged.push_back(k);
        } else {
          if (in_a.count(ypos)) merged.push_back(k);
          ++ypos;
        }
      }
    } else {
      // y's positions are x's positions not in axes_a, in order.
      std::set<int64_t> in_a(axes_a->begin(), axes_a->end());
      std::vector<int64_t> kept;
      for (int64_t k = 0; k < r; ++k)
        if (!in_a.count(k)) kept.push_back(k);
      merged = *axes_a;
      for (int64_t yb : *axes_b) {
        if (yb >= static_cast<int64_t>(kept.size())) return false;
        merged.push_back(kept[static_cast<size_t>(yb)]);
      }
      std::sort(merged.begin(), merged.end());
    }
    b.SetInput(0, x);
    SetAxes(g, b, merged);
    return true;
  }

  void SetAxes(Graph& g, Node& n, const std::vector<int64_t>& axes) {
    if (opset_ < 13) {
      n.attrs["axes"] = Attribute::FromInts(axes);
      return;
    }
    n.attrs.erase("axes");
    Value* v = passes::AddInt64Initializer(g, n.output(0)->name() + "_axes", axes);
    if (n.num_inputs() < 2)
      n.AddInput(v);
    else
      n.SetInput(1, v);
  }

  // ---- Reshape after a pure reshape ----

  bool MergeIntoReshape(Graph& g, Node& a, Node& b) {
    Value* x = a.input(0);
    Value* y = b.input(0);
    auto s = b.input(1) ? ConstInts(b.input(1)) : std::nullopt;
    if (!s) return false;
    bool allowzero = passes::AttrInt(b, "allowzero", 0) != 0;
    std::vector<int64_t> target = *s;
    bool changed_target = false;
    if (!allowzero) {
      for (size_t i = 0; i < target.size(); ++i) {
        if (target[i] != 0) continue;
        // 0 copies y's dim i: resolve it, or keep it where x has the same dim.
        const Shape& ys = y->shape();
        const Shape& xs = x->shape();
        if (!ys.rank_known() || static_cast<int>(i) >= ys.rank()) return false;
        const Dim& d = ys[i];
        if (d.known() && d.value() > 0) {
          target[i] = d.value();
          changed_target = true;
        } else if (!(xs.rank_known() && static_cast<int>(i) < xs.rank() && !d.unknown() && xs[i] == d)) {
          return false;
        }
      }
    }
    b.SetInput(0, x);
    if (changed_target) b.SetInput(1, passes::AddInt64Initializer(g, b.output(0)->name() + "_shape", target));
    return true;
  }

  // B (not a Reshape with a usable target) becomes Reshape(x, target).
  bool RewriteAsReshape(Graph& g, Node& a, Node& b) {
    Value* x = a.input(0);
    Value* y = b.input(0);
    if (opset_ < 5 || !passes::HasSingleUse(*model_.graph, y)) return false;
    if (a.op_type != "Reshape" && a.op_type != "Flatten" && b.op_type != "Reshape" && b.op_type != "Flatten")
      return false;
    auto target = passes::ReshapeTarget(x->shape(), b.output(0)->shape(), true);
    if (!target) return false;
    Value* shape = passes::AddInt64Initializer(g, b.output(0)->name() + "_shape", *target);
    Node* r = g.InsertNode(&b, "Reshape", b.name);
    r->AddInput(x);
    r->AddInput(shape);
    Value* out = b.output(0);
    g.RemoveNode(&b);
    r->AddOutput(out);
    return true;
  }

  Model& model_;
  PassContext& ctx_;
  int64_t opset_;
};

}  // namespace

Status RunMergeLayout(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  Merger merger(model, ctx);
  passes::ForEachGraph(*model.graph, [&](Graph& g) { merger.MergeGraph(g); });
  return Status::Ok();
}

}  // namespace kiln
