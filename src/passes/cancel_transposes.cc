// Build pass: a Transpose and its inverse around an elementwise chain cancel (see cancel_transposes.h).
#include "passes/cancel_transposes.h"

#include <optional>
#include <vector>

#include "ops/shape_util.h"
#include "passes/dce.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::IsConstant;

constexpr int kMaxChain = 8;

std::optional<std::vector<int64_t>> PermOf(const Node* n) {
  if (!passes::IsOnnxOp(n, "Transpose") || !passes::IsPlainNode(n, 1)) return std::nullopt;
  return passes::AttrInts(*n, "perm");
}

bool Inverse(const std::vector<int64_t>& p, const std::vector<int64_t>& q) {
  if (p.size() != q.size()) return false;
  for (size_t i = 0; i < p.size(); ++i) {
    if (q[i] < 0 || q[i] >= static_cast<int64_t>(p.size()) ||
        p[static_cast<size_t>(q[i])] != static_cast<int64_t>(i))
      return false;
  }
  return true;
}

// The operand of chain node n that carries the chain (the one that is no constant); -1 when n is no link:
// unary, or binary with the other operand a constant of rank at most `rank` (PRelu: the chain is X).
int ChainOperand(const Node& n, int rank) {
  if (n.num_outputs() != 1 || !n.output(0)) return -1;
  if (passes::IsUnaryElementwise(n)) return n.num_inputs() == 1 && n.input(0) ? 0 : -1;
  if (!passes::IsBinaryElementwise(n) || !n.input(0) || !n.input(1)) return -1;
  for (int i = 0; i < 2; ++i) {
    const Value* c = n.input(1 - i);
    if (IsConstant(n.input(i)) || !IsConstant(c) || c->data->rank() > rank) continue;
    if (n.op_type == "PRelu" && i != 0) return -1;
    return i;
  }
  return -1;
}

class Canceller {
 public:
  explicit Canceller(Graph& g) : g_(g) {}

  // `back` is the outer Transpose (T⁻¹).
  bool Cancel(Node* back) {
    std::optional<std::vector<int64_t>> q = PermOf(back);
    if (!q) return false;
    const int rank = static_cast<int>(q->size());
    std::vector<Node*> chain;  // last first
    Value* v = back->input(0);
    Node* front = nullptr;
    while (static_cast<int>(chain.size()) <= kMaxChain) {
      Node* p = v->producer();
      if (!p || p->graph() != &g_) return false;
      if (std::optional<std::vector<int64_t>> perm = PermOf(p)) {  // T: other readers keep it
        if (!Inverse(*perm, *q)) return false;
        front = p;
        break;
      }
      const int at = ChainOperand(*p, rank);
      if (at < 0 || v->uses().size() != 1 || passes::IsAnyGraphOutput(g_, v) || !passes::HasRank(v, rank))
        return false;
      chain.push_back(p);
      v = p->input(static_cast<size_t>(at));
    }
    if (!front || chain.empty()) return false;
    // Rebuild the chain on x, first link first, before `back`; its last output is back's.
    Value* x = front->input(0);
    Node* m = nullptr;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      Node* n = *it;
      const int at = ChainOperand(*n, rank);
      m = g_.InsertNode(back, n->op_type, g_.UniqueName(n->name + "/untransposed"), n->domain);
      m->attrs = n->attrs;
      for (int i = 0; i < static_cast<int>(n->num_inputs()); ++i)
        m->AddInput(i == at ? x : Permuted(n->input(static_cast<size_t>(i)), rank, *q));
      if (n == chain.front()) break;  // the last link: it makes back's output
      const Value* was = n->output(0);
      x = passes::NewTensorValue(g_, was->name() + "/untransposed", was->dtype(),
                                 PermutedShape(was->shape(), *q));
      m->AddOutput(x);
    }
    Value* out = back->output(0);
    g_.RemoveNode(back);
    m->AddOutput(out);
    return true;
  }

 private:
  // Constant c padded with leading 1s to `rank`, then permuted by q.
  Value* Permuted(Value* c, int rank, const std::vector<int64_t>& q) {
    const Tensor& t = *c->data;
    if (t.numel() == 1) return c;  // a scalar broadcasts the same in any layout
    std::vector<int64_t> dims(static_cast<size_t>(rank - t.rank()), 1);
    for (int64_t d : t.dims()) dims.push_back(d);
    return passes::AddInitializer(g_, c->name() + "_permuted", shape_ops::PermuteCopy(t, dims, q));
  }

  static Shape PermutedShape(const Shape& s, const std::vector<int64_t>& q) {
    if (!s.rank_known() || s.rank() != static_cast<int>(q.size())) return Shape();
    std::vector<Dim> dims;
    for (int64_t a : q) dims.push_back(s[static_cast<size_t>(a)]);
    return Shape(dims);
  }

  Graph& g_;
};

}  // namespace

Status RunCancelTransposes(Model& model, PassContext& ctx) {
  if (!model.graph) return Status::Ok();
  Graph& g = *model.graph;
  Canceller canceller(g);
  int count = 0;
  for (Node* n : std::vector<Node*>(g.nodes()))
    if (passes::IsOnnxOp(n, "Transpose")) count += canceller.Cancel(n) ? 1 : 0;
  if (count == 0) return Status::Ok();
  ctx.changed = true;
  g.RemoveUnusedValues();
  PassContext dce;  // the front Transposes and the transposed chains
  return RunDeadCodeElimination(model, dce);
}

}  // namespace kiln
