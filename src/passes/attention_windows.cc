// Build pass: rank-5 windowed attention → rank 4 with the window axis folded
// into the batch (see attention_windows.h).
#include "passes/attention_windows.h"

#include <optional>
#include <string>
#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::HasRank;
using passes::HasSingleUse;
using passes::IsOnnxOp;
using passes::IsPlainNode;
using passes::SameDim;

constexpr int kRank = 5;

// A permutation of rank 5 that keeps axes 0 and 1.
bool KeepsBatchAxes(const std::vector<int64_t>& p) { return p.size() == kRank && p[0] == 0 && p[1] == 1; }

// The rank-4 permutation of [B·G, ·, ·, ·] that a rank-5 one keeping axes 0 and 1 stands for.
std::vector<int64_t> Folded(const std::vector<int64_t>& p) { return {0, p[2] - 1, p[3] - 1, p[4] - 1}; }

bool IsIdentity(const std::vector<int64_t>& p) {
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] != static_cast<int64_t>(i)) return false;
  return true;
}

bool KnownFrom(const Shape& s, size_t first) {
  for (size_t i = first; i < static_cast<size_t>(s.rank()); ++i)
    if (!s[i].known()) return false;
  return true;
}

// An operand seen through axes-0/1-keeping Transposes and scalar Mul/Div:
// operand = scale · Transpose(source, perm).
struct Peeled {
  Value* source = nullptr;
  std::vector<int64_t> perm = {0, 1, 2, 3, 4};
  double scale = 1.0;
  std::vector<Node*> nodes;  // what was looked through, operand side first
};

class AttentionWindows {
 public:
  AttentionWindows(Graph& g, int64_t opset) : g_(g), opset_(opset) {}

  int Run() {
    std::vector<Node*> softmaxes;
    for (Node* n : g_.nodes())
      if (IsOnnxOp(n, "Softmax")) softmaxes.push_back(n);
    int count = 0;
    for (Node* s : softmaxes) count += Rewrite(s) ? 1 : 0;
    return count;
  }

 private:
  Node* SoleProducer(Value* v) { return passes::SoleProducer(g_, v); }

  // The scalar of Mul(x, c) / Mul(c, x) / Div(x, c) with c a one-element
  // constant of x's type, and x; nullopt otherwise.
  std::optional<std::pair<double, Value*>> ScalarOf(Node* n) {
    if (!IsPlainNode(n, 2) || !(IsOnnxOp(n, "Mul") || IsOnnxOp(n, "Div"))) return std::nullopt;
    const bool div = IsOnnxOp(n, "Div");
    for (size_t i = 0; i < (div ? 1u : 2u); ++i) {
      Value* x = n->input(i);
      Value* c = n->input(1 - i);
      if (x == c || !passes::IsConstant(c) || c->dtype() != x->dtype() || c->data->numel() != 1 ||
          c->data->rank() > kRank)
        continue;
      std::optional<double> f = passes::ConstScalar(c);
      if (f && *f != 0) return std::make_pair(div ? 1.0 / *f : *f, x);
    }
    return std::nullopt;
  }

  Peeled Peel(Value* operand) {
    Peeled p;
    Value* v = operand;
    while (HasSingleUse(g_, v)) {
      Node* n = SoleProducer(v);
      if (!n) break;
      if (IsOnnxOp(n, "Transpose") && IsPlainNode(n, 1)) {
        std::optional<std::vector<int64_t>> t = passes::AttrInts(*n, "perm");
        if (!t || !KeepsBatchAxes(*t)) break;
        std::vector<int64_t> composed(kRank);
        for (size_t i = 0; i < kRank; ++i) composed[i] = (*t)[static_cast<size_t>(p.perm[i])];
        p.perm = composed;
        v = n->input(0);
      } else if (auto s = ScalarOf(n)) {
        p.scale *= s->first;
        v = s->second;
      } else {
        break;
      }
      p.nodes.push_back(n);
    }
    p.source = v;
    return p;
  }

  // Reads `p` at rank 4 by new nodes before `at`: Reshape(source, [-1, ·, ·, ·]),
  // then the folded Transpose and the scale, where they are not trivial.
  Value* Fold(Node* at, const Peeled& p, const std::string& name) {
    const Shape& s = p.source->shape();
    const DataType dt = p.source->dtype();
    Value* v = passes::InsertOp(
        g_, at, "Reshape", name + "/fold_windows",
        {p.source, passes::AddInt64Initializer(g_, name + "/fold_windows_shape",
                                               {-1, s[2].value(), s[3].value(), s[4].value()})},
        dt, Shape({s[0] * s[1], s[2], s[3], s[4]}));
    if (!IsIdentity(p.perm)) {
      std::vector<int64_t> perm = Folded(p.perm);
      std::vector<Dim> dims;
      for (int64_t a : perm) dims.push_back(v->shape()[static_cast<size_t>(a)]);
      v = passes::InsertOp(g_, at, "Transpose", name + "/folded_perm", {v}, dt, Shape(dims));
      v->producer()->attrs["perm"] = Attribute::FromInts(perm);
    }
    if (p.scale != 1.0) {
      Value* c = passes::AddInitializer(g_, name + "/scale", passes::FromDoubles(dt, {}, {p.scale}));
      v = passes::InsertOp(g_, at, "Mul", name + "/scaled", {v, c}, dt, v->shape());
    }
    return v;
  }

  // The rank-5 operand peels to a source of rank 5 whose axes 0/1 are
  // `batch` and whose axes 2..4 are known.
  bool Usable(const Peeled& p, const Shape& batch) {
    if (!HasRank(p.source, kRank) || !KnownFrom(p.source->shape(), 2)) return false;
    const Shape& s = p.source->shape();
    return SameDim(s[0], batch[0]) && SameDim(s[1], batch[1]);
  }

  // A bias of the scores that does not depend on B or G, read at rank ≤ 3.
  std::optional<Value*> FoldBias(Node* at, Value* bias) {
    const Shape& s = bias->shape();
    if (!s.rank_known() || s.rank() > kRank) return std::nullopt;
    if (s.rank() <= 3) return bias;
    for (int i = 0; i < s.rank() - 3; ++i)
      if (!(s[static_cast<size_t>(i)].known() && s[static_cast<size_t>(i)].value() == 1)) return std::nullopt;
    if (!KnownFrom(s, static_cast<size_t>(s.rank() - 3))) return std::nullopt;
    const size_t r = static_cast<size_t>(s.rank());
    return passes::InsertOp(
        g_, at, "Reshape", bias->name() + "/per_window",
        {bias, passes::AddInt64Initializer(g_, bias->name() + "/per_window_shape",
                                           {s[r - 3].value(), s[r - 2].value(), s[r - 1].value()})},
        bias->dtype(), Shape({s[r - 3], s[r - 2], s[r - 1]}));
  }

  bool Rewrite(Node* softmax) {
    if (!IsPlainNode(softmax, 1) || !HasRank(softmax->output(0), kRank)) return false;
    int64_t axis = passes::AttrInt(*softmax, "axis", -1);
    if (!softmax->attrs.count("axis") && opset_ < 13) axis = 1;  // the old default
    if (axis != -1 && axis != kRank - 1) return false;
    Value* probs = softmax->output(0);
    if (!HasSingleUse(g_, probs)) return false;
    Node* mm2 = probs->uses()[0];
    if (mm2->graph() != &g_ || !IsOnnxOp(mm2, "MatMul") || !IsPlainNode(mm2, 2) || mm2->input(0) != probs ||
        mm2->input(1) == probs)
      return false;
    // Between the scores product and the Softmax: scalars and at most one bias
    // Add, each with the index of its input on the scores' path.
    std::vector<std::pair<Node*, size_t>> between;
    Value* bias = nullptr;
    Value* x = softmax->input(0);
    Node* mm1 = nullptr;
    while (HasSingleUse(g_, x)) {
      Node* n = SoleProducer(x);
      if (IsOnnxOp(n, "MatMul") && IsPlainNode(n, 2)) {
        mm1 = n;
        break;
      }
      if (auto s = ScalarOf(n)) {
        x = s->second;
      } else if (IsOnnxOp(n, "Add") && IsPlainNode(n, 2) && !bias && n->input(0) != n->input(1)) {
        Node* first = SoleProducer(n->input(0));
        const bool left = IsOnnxOp(first, "MatMul") || ScalarOf(first);
        bias = n->input(left ? 1 : 0);
        x = n->input(left ? 0 : 1);
      } else {
        return false;
      }
      between.emplace_back(n, n->input(0) == x ? 0 : 1);
    }
    if (!mm1) return false;
    const DataType dt = probs->dtype();
    Value* y = mm2->output(0);
    for (const Value* v : {mm1->input(0), mm1->input(1), mm1->output(0), mm2->input(1), y})
      if (!HasRank(v, kRank) || v->dtype() != dt) return false;
    if (!passes::IsArithmeticFloat(dt) || (bias && bias->dtype() != dt)) return false;
    const Shape& ys = y->shape();
    Peeled q = Peel(mm1->input(0)), kt = Peel(mm1->input(1)), v = Peel(mm2->input(1));
    for (const Peeled* p : {&q, &kt, &v})
      if (!Usable(*p, ys)) return false;
    if (q.source == kt.source || q.source == v.source || kt.source == v.source) return false;
    // Y's way back to rank 5: through its own axes-0/1-keeping Transpose, if it has one.
    Node* yt = nullptr;
    if (HasSingleUse(g_, y) && y->uses()[0]->graph() == &g_ && IsOnnxOp(y->uses()[0], "Transpose") &&
        IsPlainNode(y->uses()[0], 1)) {
      std::optional<std::vector<int64_t>> p = passes::AttrInts(*y->uses()[0], "perm");
      if (p && KeepsBatchAxes(*p)) yt = y->uses()[0];
    }
    Value* out = yt ? yt->output(0) : y;
    const Shape& os = out->shape();
    if (!HasRank(out, kRank) || !KnownFrom(os, 1) || passes::IsAnyGraphOutput(g_, y)) return false;

    Node* at = yt ? yt : mm2;
    const std::string name = mm1->name;
    std::optional<Value*> bias4;
    if (bias && !(bias4 = FoldBias(at, bias))) return false;
    Value* q4 = Fold(at, q, name + "/q");
    Value* kt4 = Fold(at, kt, name + "/kt");
    Value* v4 = Fold(at, v, name + "/v");
    const Shape& k4s = kt4->shape();
    const Shape& q4s = q4->shape();
    Value* s4 =
        passes::InsertOp(g_, at, "MatMul", name, {q4, kt4}, dt, Shape({q4s[0], q4s[1], q4s[2], k4s[3]}));
    // The chain between, in graph order (from the product to the Softmax), at rank 4.
    for (auto it = between.rbegin(); it != between.rend(); ++it) {
      Node* n = it->first;
      std::vector<Value*> ins = n->inputs();
      ins[it->second] = s4;
      if (bias && ins[1 - it->second] == bias) ins[1 - it->second] = *bias4;
      Node* copy = g_.InsertNode(at, n->op_type, g_.UniqueName(n->name + "/windows"), n->domain);
      copy->attrs = n->attrs;
      for (Value* in : ins) copy->AddInput(in);
      Value* o = passes::NewTensorValue(g_, n->output(0)->name() + "/windows", dt, s4->shape());
      copy->AddOutput(o);
      s4 = o;
    }
    Value* p4 = passes::InsertOp(g_, at, "Softmax", softmax->name, {s4}, dt, s4->shape());
    p4->producer()->attrs["axis"] = Attribute::FromInt(-1);
    const Shape& v4s = v4->shape();
    Value* y4 = passes::InsertOp(g_, at, "MatMul", mm2->name, {p4, v4}, dt,
                                 Shape({s4->shape()[0], s4->shape()[1], s4->shape()[2], v4s[3]}));
    if (yt) {
      std::vector<int64_t> perm = Folded(*passes::AttrInts(*yt, "perm"));
      std::vector<Dim> dims;
      for (int64_t a : perm) dims.push_back(y4->shape()[static_cast<size_t>(a)]);
      y4 = passes::InsertOp(g_, at, "Transpose", yt->name, {y4}, dt, Shape(dims));
      y4->producer()->attrs["perm"] = Attribute::FromInts(perm);
    }
    // Back to rank 5, B written as -1 (G and the rest are known).
    Node* back = g_.InsertNode(at, "Reshape", g_.UniqueName(name + "/unfold_windows"));
    back->AddInput(y4);
    back->AddInput(
        passes::AddInt64Initializer(g_, name + "/unfold_windows_shape",
                                    {-1, os[1].value(), os[2].value(), os[3].value(), os[4].value()}));
    // Consumers first: Y's Transpose, the product with V, the Softmax, the chain, the scores product, the
    // peeled views.
    std::vector<Node*> dead = {mm2, softmax};
    if (yt) dead.insert(dead.begin(), yt);
    for (const auto& b : between) dead.push_back(b.first);
    dead.push_back(mm1);
    for (const Peeled* p : {&q, &kt, &v}) dead.insert(dead.end(), p->nodes.begin(), p->nodes.end());
    for (Node* n : dead) g_.RemoveNode(n);
    back->AddOutput(out);
    return true;
  }

  Graph& g_;
  const int64_t opset_;  // default domain
};

}  // namespace

Status RunAttentionWindows(Model& model, PassContext& ctx) {
  if (!model.graph) return Status::Ok();
  if (AttentionWindows(*model.graph, model.OpsetOf("")).Run() > 0) {
    model.graph->RemoveUnusedValues();
    ctx.changed = true;
  }
  return Status::Ok();
}

}  // namespace kiln
