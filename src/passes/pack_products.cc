// Build pass: sibling products read by one generated kernel as one product (see pack_products.h).
#include "passes/pack_products.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "build/codegen/pointwise_ops.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

constexpr int kReach = 8;  // elementwise steps looked through for the joining node

class Packer {
 public:
  Packer(Graph& g, int64_t opset) : g_(g), opset_(opset) {}

  int Run() {
    int packed = 0;
    std::set<const Value*> seen;
    std::set<const Node*> removed;  // siblings packed earlier (the snapshot still lists them)
    for (Node* n : std::vector<Node*>(g_.nodes())) {
      if (removed.count(n) || !Candidate(n) || !seen.insert(n->input(0)).second) continue;
      std::vector<Node*> siblings;
      for (Node* u : n->input(0)->uses())
        if (Candidate(u) && u->input(0) == n->input(0) && SameForm(*u, *n)) siblings.push_back(u);
      if (siblings.size() < 2 || !Joined(siblings)) continue;
      removed.insert(siblings.begin(), siblings.end());
      Pack(siblings);
      ++packed;
    }
    return packed;
  }

 private:
  // A plain MatMul by a constant 2-D weight whose output is read only by elementwise ops the generator
  // writes.
  bool Candidate(const Node* n) const {
    if (!passes::IsOnnxOp(n, "MatMul") || !passes::IsPlainNode(n, 2) || n->graph() != &g_) return false;
    const Value* w = n->input(1);
    const Value* y = n->output(0);
    if (!passes::IsConstant(w) || w->data->rank() != 2 || w->dtype() != y->dtype() ||
        !passes::IsArithmeticFloat(y->dtype()) || !passes::HasRank(n->input(0), y->shape().rank()) ||
        y->uses().empty() || passes::IsAnyGraphOutput(g_, y))
      return false;
    for (const Node* u : y->uses())
      if (u->graph() != &g_ || !codegen::CanGeneratePointwise(*u, opset_)) return false;
    return true;
  }

  static bool SameForm(const Node& a, const Node& b) {
    return a.input(1)->dtype() == b.input(1)->dtype() && a.input(1)->data->dim(0) == b.input(1)->data->dim(0);
  }

  // The nodes reachable from v through generated elementwise ops (kReach steps).
  std::set<const Node*> Reach(const Value* v) const {
    std::set<const Node*> found;
    std::vector<const Value*> frontier = {v};
    for (int step = 0; step < kReach && !frontier.empty(); ++step) {
      std::vector<const Value*> next;
      for (const Value* f : frontier)
        for (const Node* u : f->uses())
          if (u->graph() == &g_ && codegen::CanGeneratePointwise(*u, opset_) && found.insert(u).second)
            for (const Value* o : u->outputs()) next.push_back(o);
      frontier = std::move(next);
    }
    return found;
  }

  // Some elementwise node reads (through elementwise ops) every sibling: one generated kernel will, and it
  // absorbs their column Slices.
  bool Joined(const std::vector<Node*>& siblings) const {
    std::set<const Node*> common = Reach(siblings[0]->output(0));
    for (size_t i = 1; i < siblings.size() && !common.empty(); ++i) {
      std::set<const Node*> r = Reach(siblings[i]->output(0)), both;
      for (const Node* n : common)
        if (r.count(n)) both.insert(n);
      common = std::move(both);
    }
    return !common.empty();
  }

  void Pack(const std::vector<Node*>& siblings) {
    std::vector<const Tensor*> weights;
    for (const Node* s : siblings) weights.push_back(&*s->input(1)->data);
    Tensor w = passes::ConcatTensors(weights, 1);
    const int64_t total = w.dim(1);
    Node* at = siblings[0];
    for (Node* n : g_.nodes())  // the first sibling in schedule order
      if (std::find(siblings.begin(), siblings.end(), n) != siblings.end()) {
        at = n;
        break;
      }
    const std::string base = at->name + "/packed";
    Value* x = at->input(0);
    std::vector<Dim> dims = siblings[0]->output(0)->shape().dims();
    dims.back() = Dim(total);
    Value* y =
        passes::InsertOp(g_, at, "MatMul", base, {x, passes::AddInitializer(g_, base + "_w", std::move(w))},
                         x->dtype(), Shape(dims));
    int64_t offset = 0;
    std::vector<std::pair<Node*, Value*>> slices;  // each Slice and the sibling output it takes over
    for (Node* s : siblings) {
      const int64_t n = s->input(1)->data->dim(1);
      Node* slice = g_.InsertNode(at, "Slice", g_.UniqueName(s->name + "/cols"));
      slice->AddInput(y);
      slice->AddInput(passes::AddInt64Initializer(g_, s->name + "/cols_start", {offset}));
      slice->AddInput(passes::AddInt64Initializer(g_, s->name + "/cols_end", {offset + n}));
      slice->AddInput(passes::AddInt64Initializer(g_, s->name + "/cols_axis", {-1}));
      slices.emplace_back(slice, s->output(0));
      offset += n;
    }
    for (Node* s : siblings) g_.RemoveNode(s);  // after the inserts: `at` is one of them
    for (auto& [slice, out] : slices) slice->AddOutput(out);
  }

  Graph& g_;
  const int64_t opset_;
};

}  // namespace

Status RunPackProducts(Model& model, PassContext& ctx) {
  if (!model.graph) return Status::Ok();
  if (Packer(*model.graph, model.OpsetOf("")).Run() > 0) {
    model.graph->RemoveUnusedValues();
    ctx.changed = true;
  }
  return Status::Ok();
}

}  // namespace kiln
