// Build pass: sequence-first multi-head attention between two Transposes →
// batch-first, without them (see batch_first_attention.h).
#include "passes/batch_first_attention.h"

#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "passes/dce.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::HasRank;
using passes::IsConstant;
using passes::IsOnnxOp;
using passes::SameDim;

const std::vector<int64_t> kSwapFirstTwo = {1, 0, 2};

bool ConstOfRank(const Value* v, int max_rank) {
  return IsConstant(v) && v->shape().rank_known() && v->shape().rank() <= max_rank;
}

// The input of row-wise node n that carries the rows (nullptr when n is not
// row-wise): MatMul by a constant 2-D weight, Gemm with constant B (and C of
// rank <= 1) without transA, Add/Sub/Mul/Div by a constant of rank <= 1.
Value* RowInput(const Node* n) {
  if (IsOnnxOp(n, "MatMul") && passes::IsPlainNode(n, 2))
    return ConstOfRank(n->input(1), 2) && HasRank(n->input(1), 2) && !IsConstant(n->input(0)) ? n->input(0) : nullptr;
  if (IsOnnxOp(n, "Gemm") && n->num_outputs() == 1 && n->num_inputs() >= 2 && n->input(0) && n->input(1)) {
    if (passes::AttrInt(*n, "transA", 0) != 0 || !ConstOfRank(n->input(1), 2) || IsConstant(n->input(0)))
      return nullptr;
    if (n->num_inputs() > 2 && n->input(2) && !ConstOfRank(n->input(2), 1)) return nullptr;
    return n->input(0);
  }
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) {
    if (!IsOnnxOp(n, op) || !passes::IsPlainNode(n, 2)) continue;
    const bool c0 = ConstOfRank(n->input(0), 1), c1 = ConstOfRank(n->input(1), 1);
    if (c0 == c1) return nullptr;
    return c0 ? n->input(1) : n->input(0);
  }
  return nullptr;
}

size_t RowInputIndex(const Node* n) { return n->input(0) == RowInput(n) ? 0 : 1; }

// A 2-D tensor transposed (any element type but strings).
Tensor Transposed(const Tensor& w) {
  const int64_t r = w.dim(0), c = w.dim(1);
  const size_t es = ElementSize(w.dtype());
  Tensor t(w.dtype(), {c, r});
  const auto* src = static_cast<const uint8_t*>(w.raw());
  auto* dst = static_cast<uint8_t*>(t.mutable_raw());
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) std::memcpy(dst + (j * r + i) * es, src + (i * c + j) * es, es);
  return t;
}

// A row node that also takes a 3-D input: all but Gemm, and Gemm with alpha
// and beta 1 (it becomes MatMul [+ Add]).
bool Liftable(const Node* n) {
  if (!IsOnnxOp(n, "Gemm")) return true;
  return passes::AttrFloat(*n, "alpha", 1.f) == 1.f && passes::AttrFloat(*n, "beta", 1.f) == 1.f &&
         n->input(1)->dtype() != DataType::kString;
}

class BatchFirstAttention {
 public:
  explicit BatchFirstAttention(Graph& g) : g_(g) {}

  int Run() {
    int rewritten = 0;
    for (Node* a : passes::KilnNodes(g_, "Attention")) rewritten += Rewrite(a) ? 1 : 0;
    return rewritten;
  }

 private:
  // One of Q, K, V: the attention input back to the shared Transpose.
  struct Branch {
    std::vector<Node*> reshapes;  // attention input first
    Value* projected = nullptr;   // P_i: [S, B, E_i]
    std::vector<Node*> rows;      // P_i's producer first, the node reading T last
    int64_t heads = 0;
  };

  // A plain Shape node of this graph (no start/end).
  bool IsWholeShape(const Node* n) const {
    return IsOnnxOp(n, "Shape") && n->graph() == &g_ && !n->attr("start") && !n->attr("end");
  }

  // v's producer when v's uses are exactly one node besides whole-shape readers
  // (collected into shape_readers_), and v is no graph output; else nullptr.
  Node* ProducerReadOnce(Value* v) {
    Node* p = v->producer();
    if (!p || p->graph() != &g_ || passes::IsAnyGraphOutput(g_, v)) return nullptr;
    std::vector<Node*> shapes;
    size_t others = 0;
    for (Node* u : v->uses()) {
      if (IsWholeShape(u)) {
        shapes.push_back(u);
      } else {
        ++others;
      }
    }
    if (others != 1) return nullptr;
    shape_readers_.insert(shape_readers_.end(), shapes.begin(), shapes.end());
    return p;
  }

  bool TraceBranch(Value* in, Branch* b, Node** transpose) {
    Value* v = in;
    for (Node* r = passes::SoleProducer(g_, v); IsOnnxOp(r, "Reshape"); r = passes::SoleProducer(g_, v)) {
      b->reshapes.push_back(r);
      v = r->input(0);
    }
    if (b->reshapes.empty() || !HasRank(v, 3)) return false;
    b->projected = v;
    for (Node* n = ProducerReadOnce(v); n; n = ProducerReadOnce(v)) {
      Value* row = RowInput(n);
      if (!row || !HasRank(n->output(0), 3)) return false;
      b->rows.push_back(n);
      v = row;
      Node* t = v->producer();
      if (IsOnnxOp(t, "Transpose") && t->graph() == &g_ && passes::IsPlainNode(t, 1) &&
          passes::AttrInts(*t, "perm") == kSwapFirstTwo && HasRank(t->input(0), 3)) {
        if (*transpose && *transpose != t) return false;
        *transpose = t;
        return true;
      }
    }
    return false;
  }

  // The nodes after the attention, up to the Transpose back to batch-first.
  struct Tail {
    std::vector<Node*> reshapes;  // Y onwards
    std::vector<Node*> rows;      // out_proj chain, in order
    Node* reshape_back = nullptr;  // [S·B, E] → [S, B, E], when the chain is 2-D
    Node* transpose = nullptr;     // F
  };

  Node* SoleUser(Value* v) { return passes::SoleUser(g_, v); }

  bool TraceTail(Value* y, Tail* t) {
    Value* v = y;
    for (Node* u = SoleUser(v); IsOnnxOp(u, "Reshape") && u->input(0) == v; u = SoleUser(v)) {
      t->reshapes.push_back(u);
      v = u->output(0);
    }
    if (t->reshapes.empty() || !(HasRank(v, 2) || HasRank(v, 3))) return false;
    const int rank = v->shape().rank();
    for (Node* u = SoleUser(v); u && RowInput(u) == v && HasRank(u->output(0), rank); u = SoleUser(v)) {
      t->rows.push_back(u);
      v = u->output(0);
    }
    Node* u = SoleUser(v);
    if (rank == 2) {
      if (!IsOnnxOp(u, "Reshape") || u->input(0) != v || !HasRank(u->output(0), 3)) return false;
      t->reshape_back = u;
      u = SoleUser(u->output(0));
    }
    if (!IsOnnxOp(u, "Transpose") || !passes::IsPlainNode(u, 1) || passes::AttrInts(*u, "perm") != kSwapFirstTwo)
      return false;
    t->transpose = u;
    return true;
  }

  static void SwapFirstTwo(Value* v) {
    std::vector<Dim> d = v->shape().dims();
    std::swap(d[0], d[1]);
    v->type.shape = Shape(d);
  }

  // Gemm(A, B, C) with alpha = beta = 1 → MatMul(A, B or Bᵀ) [+ Add(C)], which
  // takes a 3-D A. Returns the node that now makes the Gemm's output value.
  Node* GemmToMatMul(Node* gemm, const Shape& out_shape) {
    const bool trans_b = passes::AttrInt(*gemm, "transB", 0) != 0;
    Value* w = gemm->input(1);
    Value* c = gemm->num_inputs() > 2 ? gemm->input(2) : nullptr;
    Value* y = gemm->output(0);
    Node* mm = g_.InsertNode(gemm, "MatMul", gemm->name);
    mm->AddInput(gemm->input(0));
    mm->AddInput(trans_b ? passes::AddInitializer(g_, w->name() + "_t", Transposed(*w->data)) : w);
    Node* add = nullptr;
    if (c) {
      add = g_.InsertNode(gemm, "Add", g_.UniqueName(gemm->name + "_bias"));
      Value* prod = passes::NewTensorValue(g_, y->name() + "/product", y->dtype(), out_shape);
      mm->AddOutput(prod);
      add->AddInput(prod);
      add->AddInput(c);
    }
    g_.RemoveNode(gemm);
    Node* last = add ? add : mm;
    last->AddOutput(y);
    y->type.shape = out_shape;
    return last;
  }

  bool Rewrite(Node* a) {
    shape_readers_.clear();
    const Attribute* layout = a->attr("layout");
    if (!layout || a->num_inputs() < 3 || a->num_outputs() != 1) return false;
    const int rank = layout->s == "bshd" ? 3 : layout->s == "sbhd" ? 4 : 0;
    if (!rank || !HasRank(a->input(0), rank)) return false;
    if (a->num_inputs() > 3 && a->input(3) && !(a->input(3)->shape().rank_known() && a->input(3)->shape().rank() <= 2))
      return false;
    Node* transpose = nullptr;
    Branch branch[3];
    for (int i = 0; i < 3; ++i)
      if (!HasRank(a->input(i), rank) || !TraceBranch(a->input(i), &branch[i], &transpose)) return false;
    Value* x = transpose->input(0);
    Value* t = transpose->output(0);
    const Dim batch = x->shape()[0], seq = x->shape()[1];
    // T's readers: the three branches' last row nodes, and Shape nodes (the exporter's tgt_len and bsz
    // when dims are dynamic), nothing else.
    std::set<Node*> readers;
    for (const Branch& b : branch) readers.insert(b.rows.back());
    if (passes::IsAnyGraphOutput(g_, t)) return false;
    for (Node* u : t->uses()) {
      if (readers.count(u)) continue;
      if (!IsWholeShape(u)) return false;
      shape_readers_.push_back(u);
    }
    // Head geometry: every input is [S, B·H, D] (3-D) or [S, B, H, D] (4-D) of P_i = [S, B, H·D].
    const Shape& q = a->input(0)->shape();
    const Dim head_dim = q[static_cast<size_t>(rank - 1)];
    if (!head_dim.known() || head_dim.value() <= 0) return false;
    for (Branch& b : branch) {
      const Shape& p = b.projected->shape();
      const Shape& in = b.reshapes.front()->output(0)->shape();
      if (!SameDim(p[0], seq) || !SameDim(p[1], batch) || !p[2].known() || p[2].value() % head_dim.value() != 0 ||
          in[static_cast<size_t>(rank - 1)] != head_dim || !SameDim(in[0], seq))
        return false;
      b.heads = p[2].value() / head_dim.value();
      if (rank == 3 && !SameDim(in[1], batch * Dim(b.heads))) return false;
      if (rank == 4 && (!SameDim(in[1], batch) || in[2] != Dim(b.heads))) return false;
    }
    if (branch[1].heads != branch[0].heads || branch[2].heads != branch[0].heads) return false;
    const int64_t heads = branch[0].heads, width = heads * head_dim.value();
    Tail tail;
    if (!TraceTail(a->output(0), &tail)) return false;
    Value* merged = tail.reshapes.back()->output(0);  // [S·B, E] or [S, B, E]
    const Shape& ms = merged->shape();
    const bool flat = ms.rank() == 2;
    if (ms[ms.rank() - 1] != Dim(width) || (flat ? !SameDim(ms[0], seq * batch) && !SameDim(ms[0], batch * seq)
                                                : !SameDim(ms[0], seq) || !SameDim(ms[1], batch)))
      return false;
    // A 2-D out_proj needs [B, S, E] back from [B·S, E]: a Reshape to [-1, S, E] when S is known; else
    // the chain is lifted to 3-D (Gemm → MatMul [+ Add]), which needs no Reshape back.
    bool lift = false;
    if (tail.reshape_back) {
      const Shape& back = tail.reshape_back->output(0)->shape();
      if (!back[2].known() || !SameDim(back[0], seq) || !SameDim(back[1], batch)) return false;
      lift = !seq.known();
      if (lift)
        for (const Node* n : tail.rows)
          if (!Liftable(n)) return false;
    }

    // Batch-first from x: the projections read x; their values turn [B, S, .].
    for (Branch& b : branch) {
      Node* head = b.rows.back();
      head->SetInput(RowInputIndex(head), x);
      for (Node* n : b.rows) SwapFirstTwo(n->output(0));
      Value* view = passes::NewTensorValue(g_, b.projected->name() + "/bshd", b.projected->dtype(),
                                           Shape({batch, seq, Dim(heads), head_dim}));
      Node* r = g_.InsertNode(a, "Reshape", g_.UniqueName(b.projected->name() + "/heads"));
      r->AddInput(b.projected);
      r->AddInput(passes::AddInt64Initializer(g_, b.projected->name() + "/heads_shape", {0, 0, heads, head_dim.value()}));
      r->AddOutput(view);
      for (int i = 0; i < 3; ++i)
        if (a->input(static_cast<size_t>(i)) == b.reshapes.front()->output(0)) a->SetInput(static_cast<size_t>(i), view);
    }
    for (Branch& b : branch)
      for (Node* r : b.reshapes) g_.RemoveNode(r);
    a->attrs["layout"] = Attribute::FromString("bshd");
    Value* y = a->output(0);
    y->type.shape = Shape({batch, seq, Dim(heads), head_dim});

    // The merge: one Reshape from Y' [B, S, H, D] to [B·S, E] or [B, S, E].
    Node* merge = g_.InsertNode(tail.reshapes.front(), "Reshape", g_.UniqueName(merged->name() + "/batch_first"));
    merge->AddInput(y);
    const bool to_2d = flat && !lift;
    merge->AddInput(passes::AddInt64Initializer(
        g_, merged->name() + "/batch_first_shape",
        to_2d ? std::vector<int64_t>{-1, width} : std::vector<int64_t>{0, 0, width}));
    for (Node* r : tail.reshapes) g_.RemoveNode(r);
    merge->AddOutput(merged);
    if (lift) {
      merged->type.shape = Shape({batch, seq, Dim(width)});
      for (Node* n : tail.rows) {
        const Shape lifted({batch, seq, n->output(0)->shape()[1]});
        if (IsOnnxOp(n, "Gemm")) {
          GemmToMatMul(n, lifted);
        } else {
          n->output(0)->type.shape = lifted;
        }
      }
    } else if (flat) {
      merged->type.shape = Shape({batch * seq, Dim(width)});
      for (Node* n : tail.rows) n->output(0)->type.shape = Shape({batch * seq, n->output(0)->shape()[1]});
    } else {
      SwapFirstTwo(merged);
      for (Node* n : tail.rows) SwapFirstTwo(n->output(0));
    }

    // Back to [B, S, E]: F's value, now made without a copy.
    Value* out = tail.transpose->output(0);
    // (z: the chain's last value; a lifted Gemm's output value is kept, so it is still z.)
    Value* z = tail.reshape_back ? tail.reshape_back->input(0) : tail.transpose->input(0);
    if (tail.reshape_back && !lift) {
      const int64_t e = tail.reshape_back->output(0)->shape()[2].value();
      Node* back = g_.InsertNode(tail.reshape_back, "Reshape", tail.reshape_back->name);
      back->AddInput(z);
      back->AddInput(passes::AddInt64Initializer(g_, out->name() + "/batch_first_shape", {-1, seq.value(), e}));
      g_.RemoveNode(tail.transpose);
      g_.RemoveNode(tail.reshape_back);
      back->AddOutput(out);
    } else {
      Node* last = z->producer();
      g_.RemoveNode(tail.transpose);
      if (tail.reshape_back) g_.RemoveNode(tail.reshape_back);
      last->SetOutput(0, out);
    }
    // The shapes read of values that turned batch-first (T's readers now read
    // x): the same shape with its first two entries swapped back.
    for (Node* sr : shape_readers_) {
      if (sr->output(0)->uses().empty() && !passes::IsAnyGraphOutput(g_, sr->output(0))) {
        g_.RemoveNode(sr);  // it fed only a Reshape the rewrite removed
        continue;
      }
      // T's readers read x; a swapped value's readers read it: either way axes 0 and 1 trade places.
      passes::ReadShapeThroughPermutation(g_, sr, sr->input(0) == t ? x : sr->input(0), kSwapFirstTwo);
    }
    g_.RemoveNode(transpose);
    return true;
  }

  Graph& g_;
  std::vector<Node*> shape_readers_;  // Shape nodes of values that turn batch-first
};

}  // namespace

Status RunBatchFirstAttention(Model& model, PassContext& ctx) {
  if (!model.graph) return Status::Ok();
  if (BatchFirstAttention(*model.graph).Run() > 0) {
    // The exporter's shape arithmetic for the removed Reshapes is dead now.
    KILN_RETURN_IF_ERROR(RunDeadCodeElimination(model, ctx));
    model.graph->RemoveUnusedValues();
    ctx.changed = true;
  }
  return Status::Ok();
}

}  // namespace kiln
