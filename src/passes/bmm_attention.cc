// BART-style 3-D attention to 4-D (see bmm_attention.h).
#include "passes/bmm_attention.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::IsOnnxOp;
using passes::IsPlainNode;
using passes::SameDims;
using passes::SoleProducer;

constexpr int kMaxMaskAdds = 4;

// A reader of the 3-D view v3 [B·H, N, M] of v4 [B, H, N, M] that reads only
// its dims 1 and 2: Gather(Shape(v3), 1 | 2) (BART's src_len =
// key_states.size(1)). It can read v4's dims 2 and 3 instead.
bool ReadsOnlyInnerDims(Graph& g, const Node* shape) {
  if (!IsOnnxOp(shape, "Shape") || !IsPlainNode(shape, 1) || !shape->attrs.empty() ||
      passes::IsAnyGraphOutput(g, shape->output(0)))
    return false;
  for (const Node* u : shape->output(0)->uses()) {
    if (!IsOnnxOp(u, "Gather") || !IsPlainNode(u, 2) || u->input(0) != shape->output(0) ||
        passes::AttrInt(*u, "axis", 0) != 0)
      return false;
    auto k = passes::ConstInts(u->input(1));
    if (!k || k->size() != 1 || u->input(1)->shape().rank() > 1 || (*k)[0] == 0 || (*k)[0] < -2 ||
        (*k)[0] > 2)
      return false;
  }
  return true;
}

// The 4-D value a Reshape of it made into `v`, when its shape is `dims` and
// every reader of v but `user` reads only v's inner dims; nullptr otherwise.
Value* FourDSource(Graph& g, Value* v, const std::vector<Dim>& dims, const Node* user) {
  Node* r = v->producer();
  if (!r || r->graph() != &g || !IsOnnxOp(r, "Reshape") || !IsPlainNode(r, 2) ||
      passes::IsAnyGraphOutput(g, v))
    return nullptr;
  for (const Node* u : v->uses())
    if (u != user && !ReadsOnlyInnerDims(g, u)) return nullptr;
  Value* src = r->input(0);
  return SameDims(src->shape(), Shape(dims)) && src->dtype() == v->dtype() ? src : nullptr;
}

// Points the Shape readers of v3 (ReadsOnlyInnerDims) at v4, its Gathers one dim further.
void RereadShapes(Graph& g, Value* v3, Value* v4) {
  std::vector<Node*> shapes;
  for (Node* u : v3->uses())
    if (IsOnnxOp(u, "Shape")) shapes.push_back(u);
  for (Node* shape : shapes) {
    shape->SetInput(0, v4);
    shape->output(0)->type.shape = Shape({Dim(4)});
    shape->output(0)->sym_data.reset();
    shape->output(0)->data.reset();
    for (Node* gather : shape->output(0)->uses()) {
      const int64_t k = (*passes::ConstInts(gather->input(1)))[0];
      const int64_t dim4 = (k < 0 ? k + 3 : k) + 1;
      const Tensor& index = *gather->input(1)->data;  // a scalar or [1], kept so
      Tensor dim = Tensor::ScalarInt64(dim4).Reshaped(index.dims());
      gather->SetInput(1, passes::AddInitializer(g, gather->name + "/dim4", std::move(dim)));
    }
  }
}

class BmmAttention {
 public:
  BmmAttention(Graph& g, int64_t opset) : g_(g), opset_(opset) {}

  bool Rewrite(Node* softmax) {
    if (!IsPlainNode(softmax, 1)) return false;
    Value* probs = softmax->output(0);
    if (!passes::HasRank(probs, 3)) return false;
    // The last axis (before opset 13 the default was 1, and the axis split a 2-D view).
    const int64_t axis = passes::AttrInt(*softmax, "axis", opset_ < 13 ? 1 : -1);
    if (axis != -1 && axis != 2) return false;
    // Softmax ← Reshape ← Add* ← Reshape ← MatMul (the scores).
    Node* r_out = SoleProducer(g_, softmax->input(0));
    if (!IsOnnxOp(r_out, "Reshape") || !IsPlainNode(r_out, 2)) return false;
    Value* a = r_out->input(0);
    if (!passes::HasRank(a, 4)) return false;
    Value* s4 = a;  // walks down the Adds to the 4-D view of the scores
    for (int adds = 0;; ++adds) {
      Node* p = SoleProducer(g_, s4);
      if (!IsOnnxOp(p, "Add") || !IsPlainNode(p, 2) || adds == kMaxMaskAdds) break;
      Value* next = nullptr;
      for (size_t i = 0; i < 2 && !next && p->input(0) != p->input(1); ++i)
        if (LeadsToScoresView(p->input(i))) next = p->input(i);
      if (!next) return false;
      s4 = next;
    }
    if (s4 == a) return false;  // no mask Add: fuse_attention takes the 3-D form as it is
    Node* r_in = SoleProducer(g_, s4);
    if (!IsOnnxOp(r_in, "Reshape") || !IsPlainNode(r_in, 2)) return false;
    Value* s3 = r_in->input(0);
    Node* mm1 = SoleProducer(g_, s3);
    if (!IsOnnxOp(mm1, "MatMul") || !IsPlainNode(mm1, 2) || !passes::HasRank(s3, 3)) return false;
    if (!passes::HasSingleUse(g_, probs)) return false;
    Node* mm2 = probs->uses()[0];
    if (mm2->graph() != &g_ || !IsOnnxOp(mm2, "MatMul") || !IsPlainNode(mm2, 2) || mm2->input(0) != probs ||
        mm2->input(1) == probs)
      return false;
    Value* y3 = mm2->output(0);
    if (!passes::HasSingleUse(g_, y3)) return false;
    Node* ry = y3->uses()[0];
    if (ry->graph() != &g_ || !IsOnnxOp(ry, "Reshape") || !IsPlainNode(ry, 2) || ry->input(0) != y3)
      return false;
    // Shapes: A [B, H, Sq, L] with H known; the 3-D values are its [B·H, ..] views.
    const Shape& as = a->shape();
    const Dim b = as[0], h = as[1], sq = as[2], l = as[3];
    if (!h.known() || !SameDims(s3->shape(), Shape({b * h, sq, l})) ||
        !SameDims(probs->shape(), s3->shape()) || a->dtype() != s3->dtype())
      return false;
    Value* q3 = mm1->input(0);
    Value* kt3 = mm1->input(1);
    Value* v3 = mm2->input(1);
    if (!passes::HasRank(q3, 3) || !passes::HasRank(v3, 3)) return false;
    const Dim d = q3->shape()[2], dv = v3->shape()[2];
    if (!d.known() || !dv.known() || !SameDims(ry->output(0)->shape(), Shape({b, h, sq, dv}))) return false;
    Node* tk = SoleProducer(g_, kt3);
    if (!IsOnnxOp(tk, "Transpose") || !IsPlainNode(tk, 1) ||
        passes::AttrInts(*tk, "perm") != std::vector<int64_t>{0, 2, 1})
      return false;
    Value* k3 = tk->input(0);
    Value* q4 = FourDSource(g_, q3, {b, h, sq, d}, mm1);
    Value* k4 = FourDSource(g_, k3, {b, h, l, d}, tk);
    Value* v4 = FourDSource(g_, v3, {b, h, l, dv}, mm2);
    if (!q4 || !k4 || !v4 || q3 == k3 || q3 == v3 || k3 == v3) return false;
    RereadShapes(g_, q3, q4);
    RereadShapes(g_, k3, k4);
    RereadShapes(g_, v3, v4);

    // Kᵀ in 4-D, where the 3-D one was made.
    Value* kt4 = passes::NewTensorValue(g_, kt3->name() + "/4d", kt3->dtype(), Shape({b, h, d, l}));
    Node* t4 = g_.InsertNode(tk, "Transpose", g_.UniqueName(tk->name + "/4d"));
    t4->attrs["perm"] = Attribute::FromInts({0, 1, 3, 2});
    t4->AddInput(k4);
    t4->AddOutput(kt4);
    // The scores in 4-D: mm1 makes what the inner Reshape made.
    mm1->SetInput(0, q4);
    mm1->SetInput(1, kt4);
    s3->type.shape = s4->shape();
    passes::BypassNode(r_in, s4, s3);  // cannot fail: s4 has one use and is no graph output
    // The Softmax over A itself, then the product with V in 4-D.
    softmax->SetInput(0, a);
    g_.RemoveNode(r_out);
    softmax->attrs["axis"] = Attribute::FromInt(-1);
    probs->type.shape = a->shape();
    mm2->SetInput(1, v4);
    y3->type.shape = ry->output(0)->shape();
    passes::BypassNode(ry, ry->output(0), y3);
    // The 3-D views, now unread.
    for (Value* v : {q3, kt3, k3, v3})
      if (v->uses().empty() && !passes::IsAnyGraphOutput(g_, v) && v->producer())
        g_.RemoveNode(v->producer());
    return true;
  }

 private:
  // v is the Reshape of the 3-D scores, or an Add over it (single uses).
  bool LeadsToScoresView(Value* v) {
    return passes::ReachesThroughAdds(g_, v, kMaxMaskAdds, [this](Value* x) {
      Node* p = SoleProducer(g_, x);
      return IsOnnxOp(p, "Reshape") && IsPlainNode(p, 2) && IsOnnxOp(SoleProducer(g_, p->input(0)), "MatMul");
    });
  }

  Graph& g_;
  int64_t opset_;
};

}  // namespace

Status RunBmmAttention(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  Graph& g = *model.graph;
  std::vector<Node*> softmaxes;
  for (Node* n : g.nodes())
    if (IsOnnxOp(n, "Softmax")) softmaxes.push_back(n);
  BmmAttention rewrite(g, model.OpsetOf(""));
  for (Node* s : softmaxes)
    if (rewrite.Rewrite(s)) ctx.changed = true;
  return Status::Ok();
}

}  // namespace kiln
