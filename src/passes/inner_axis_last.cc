// Build pass: layout chains keep their last axis last (see inner_axis_last.h).
#include "passes/inner_axis_last.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "passes/fold_shapes.h"
#include "passes/layout_chains.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

constexpr int64_t kMinRow = 8;  // elements: a 16-byte word in FP16

// The product of the axes after `axis`, when known.
std::optional<int64_t> After(const Shape& s, size_t axis) {
  int64_t p = 1;
  for (size_t k = axis + 1; k < static_cast<size_t>(s.rank()); ++k) {
    if (!s[k].known()) return std::nullopt;
    p *= s[k].value();
  }
  return p;
}

// The axes of `s` in the order that puts `axis` last.
std::vector<size_t> LastOrder(size_t rank, size_t axis) {
  std::vector<size_t> order;
  for (size_t k = 0; k < rank; ++k)
    if (k != axis) order.push_back(k);
  order.push_back(axis);
  return order;
}

Shape Reordered(const Shape& s, const std::vector<size_t>& order) {
  std::vector<Dim> d;
  for (size_t k : order) d.push_back(s[k]);
  return Shape(d);
}

class InnerAxisLast {
 public:
  explicit InnerAxisLast(Graph& g) : g_(g) {}

  int Run() {
    int count = 0;
    for (const auto& chain : passes::LayoutChains(g_)) count += Rewrite(chain) ? 1 : 0;
    return count;
  }

 private:
  // Where the source's last axis is in each value of the chain (the source first), or nothing when a reshape
  // splits or merges it.
  std::optional<std::vector<size_t>> Track(const std::vector<Node*>& chain) {
    const Shape& x = chain[0]->input(0)->shape();
    if (!x.rank_known() || x.rank() == 0) return std::nullopt;
    const Dim& row = x[static_cast<size_t>(x.rank() - 1)];
    if (!row.known() || row.value() < kMinRow || row.value() % kMinRow != 0) return std::nullopt;
    std::vector<size_t> at = {static_cast<size_t>(x.rank() - 1)};
    for (Node* n : chain) {
      const Shape& in = n->input(0)->shape();
      const Shape& out = n->output(0)->shape();
      if (!in.rank_known() || !out.rank_known()) return std::nullopt;
      size_t prev = at.back();
      std::optional<size_t> next;
      if (passes::IsLayoutTranspose(n)) {
        std::vector<int64_t> perm = passes::TransposePermOf(*n, static_cast<size_t>(in.rank()));
        auto it = std::find(perm.begin(), perm.end(), static_cast<int64_t>(prev));
        if (perm.size() != static_cast<size_t>(out.rank()) || it == perm.end()) return std::nullopt;
        next = static_cast<size_t>(it - perm.begin());
      } else {
        std::optional<int64_t> after = After(in, prev);
        for (size_t k = 0; after && k < static_cast<size_t>(out.rank()); ++k)
          if (out[k] == row && After(out, k) == after) next = k;
      }
      if (!next) return std::nullopt;
      at.push_back(*next);
    }
    return at;
  }

  bool Rewrite(const std::vector<Node*>& chain) {
    std::optional<std::vector<size_t>> at = Track(chain);
    if (!at) return false;
    const size_t m = chain.size();
    auto last = [&](size_t i, const Shape& s) { return (*at)[i] + 1 == static_cast<size_t>(s.rank()); };
    if (!last(m, chain[m - 1]->output(0)->shape())) return false;
    bool moves = false;
    for (size_t i = 1; i < m; ++i) moves |= !last(i, chain[i - 1]->output(0)->shape());
    if (!moves) return false;

    // Each value's axes in their new order (the source's and the result's stay as they are).
    std::vector<std::vector<size_t>> order(m + 1);
    std::vector<Shape> shape(m + 1);
    for (size_t i = 0; i <= m; ++i) {
      const Shape& s = i == 0 ? chain[0]->input(0)->shape() : chain[i - 1]->output(0)->shape();
      order[i] = LastOrder(static_cast<size_t>(s.rank()), (*at)[i]);
      shape[i] = Reordered(s, order[i]);
    }
    // Every new reshape target first: a chain that cannot be written is left as it is.
    std::vector<std::vector<int64_t>> targets(m);
    for (size_t i = 0; i < m; ++i) {
      if (passes::IsLayoutTranspose(chain[i])) continue;
      auto t = passes::ReshapeTarget(shape[i], shape[i + 1], /*allow_zero_copy=*/true);
      if (!t) return false;
      targets[i] = *t;
    }
    for (size_t i = 1; i < m; ++i) chain[i - 1]->output(0)->type.shape = shape[i];
    for (size_t i = 0; i < m; ++i) {
      Node* n = chain[i];
      if (passes::IsLayoutTranspose(n)) {
        // New output axis k is old output axis order[i+1][k], read from old input axis perm[that], which is
        // at position `position[...]` in the input's new order.
        std::vector<int64_t> perm = passes::TransposePermOf(*n, order[i].size());
        std::vector<int64_t> position(order[i].size());
        for (size_t k = 0; k < order[i].size(); ++k) position[order[i][k]] = static_cast<int64_t>(k);
        std::vector<int64_t> next;
        for (size_t k : order[i + 1]) next.push_back(position[static_cast<size_t>(perm[k])]);
        n->attrs["perm"] = Attribute::FromInts(next);
        continue;
      }
      Value* in = n->input(0);
      Value* out = n->output(0);
      const std::string name = n->name;
      Node* r = g_.InsertNode(n, "Reshape", g_.UniqueName(name + "/inner_last"));
      r->AddInput(in);
      r->AddInput(passes::AddInt64Initializer(g_, name + "/inner_last_shape", targets[i]));
      g_.RemoveNode(n);
      r->AddOutput(out);
    }
    return true;
  }

  Graph& g_;
};

}  // namespace

Status RunInnerAxisLast(Model& model, PassContext& ctx) {
  if (!model.graph) return Status::Ok();
  if (InnerAxisLast(*model.graph).Run() > 0) {
    model.graph->RemoveUnusedValues();
    ctx.changed = true;
  }
  return Status::Ok();
}

}  // namespace kiln
