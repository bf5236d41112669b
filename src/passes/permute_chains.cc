// Build pass: Transpose/reshape chains → one permutation (see permute_chains.h).
#include "passes/permute_chains.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "passes/fold_shapes.h"
#include "passes/layout_chains.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

constexpr size_t kMaxTransposeRank = 8;  // the CUDA Transpose's (kernel_util.cuh kMaxRank)

// The source's elements seen through the chain so far: the source's axes and
// the current axes, each a run of atoms (sub-axes of the source; atoms of size
// 1 are left out, so a size-1 axis has none).
class Atoms {
 public:
  explicit Atoms(const Shape& x) {
    ok_ = x.rank_known();
    for (int i = 0; ok_ && i < x.rank(); ++i) {
      const Dim& d = x[static_cast<size_t>(i)];
      if (d.unknown() || (d.known() && d.value() == 0)) ok_ = false;  // (an empty tensor: nothing to move)
      std::vector<int> axis;
      if (!passes::IsKnownOne(d)) {
        axis.push_back(static_cast<int>(size_.size()));
        size_.push_back(d);
      }
      source_.push_back(axis);
      axes_.push_back(axis);
    }
  }
  bool ok() const { return ok_; }

  bool Apply(const Node& n) {
    if (!passes::IsLayoutTranspose(&n)) return Reshape(n.output(0)->shape());
    const std::vector<int64_t> perm = passes::TransposePermOf(n, axes_.size());
    if (perm.size() != axes_.size()) return false;
    std::vector<std::vector<int>> next;
    for (int64_t a : perm) {
      if (a < 0 || a >= static_cast<int64_t>(axes_.size())) return false;
      next.push_back(axes_[static_cast<size_t>(a)]);
    }
    axes_ = std::move(next);
    return true;
  }

  std::vector<Dim> SourceAtomDims() const {
    std::vector<Dim> dims;
    for (int a : Flat(source_)) dims.push_back(size_[static_cast<size_t>(a)]);
    return dims;
  }
  // The permutation of SourceAtomDims that gives the current atom order.
  std::vector<int64_t> Permutation() const {
    const std::vector<int> src = Flat(source_);
    std::vector<int64_t> perm;
    for (int a : Flat(axes_))
      perm.push_back(static_cast<int64_t>(std::find(src.begin(), src.end(), a) - src.begin()));
    return perm;
  }

 private:
  static std::vector<int> Flat(const std::vector<std::vector<int>>& axes) {
    std::vector<int> out;
    for (const auto& a : axes) out.insert(out.end(), a.begin(), a.end());
    return out;
  }

  // Atom a → (outer, a's size / outer), in place in the source's axes.
  std::pair<int, int> Split(int a, int64_t outer) {
    const int o = static_cast<int>(size_.size());
    size_.push_back(Dim(outer));
    const int i = static_cast<int>(size_.size());
    size_.push_back(Dim(size_[static_cast<size_t>(a)].value() / outer));
    for (auto& axis : source_) {
      auto it = std::find(axis.begin(), axis.end(), a);
      if (it == axis.end()) continue;
      *it = i;
      axis.insert(it, o);
    }
    return {o, i};
  }

  // The current atoms regrouped into `target`'s axes, splitting atoms where a
  // boundary falls inside one.
  bool Reshape(const Shape& target) {
    std::vector<int> seq = Flat(axes_);
    std::vector<std::vector<int>> next;
    size_t pos = 0;
    for (const Dim& t : target.dims()) {
      if (t.unknown() || (t.known() && t.value() == 0)) return false;
      std::vector<int> axis;
      Dim prod(1);
      while (!passes::IsKnownOne(t) && !(prod == t)) {
        if (pos >= seq.size()) return false;
        int a = seq[pos];
        const Dim& s = size_[static_cast<size_t>(a)];
        if (t.known() && prod.known() && s.known()) {
          if (t.value() % prod.value() != 0) return false;
          const int64_t rest = t.value() / prod.value();
          if (rest % s.value() != 0) {
            if (s.value() % rest != 0) return false;
            auto [outer, inner] = Split(a, rest);
            seq[pos] = outer;
            seq.insert(seq.begin() + static_cast<std::ptrdiff_t>(pos) + 1, inner);
            for (auto& cur : axes_)
              for (size_t k = 0; k < cur.size(); ++k)
                if (cur[k] == a) {
                  cur[k] = inner;
                  cur.insert(cur.begin() + static_cast<std::ptrdiff_t>(k), outer);
                  break;
                }
            a = outer;
          }
        }
        prod = prod * size_[static_cast<size_t>(a)];
        if (prod.unknown()) return false;
        axis.push_back(a);
        ++pos;
      }
      next.push_back(axis);
    }
    if (pos != seq.size()) return false;
    axes_ = std::move(next);
    return true;
  }

  bool ok_ = true;
  std::vector<Dim> size_;                 // by atom id
  std::vector<std::vector<int>> source_;  // the source's axes
  std::vector<std::vector<int>> axes_;    // the current axes
};

// Atoms adjacent in both orders merge into one: (dims, perm) with the fewest axes.
std::pair<std::vector<Dim>, std::vector<int64_t>> Coalesce(const std::vector<Dim>& dims,
                                                           const std::vector<int64_t>& perm) {
  std::vector<std::vector<int64_t>> runs;  // in the permuted order, each a run of source positions
  for (int64_t a : perm) {
    if (!runs.empty() && runs.back().back() + 1 == a)
      runs.back().push_back(a);
    else
      runs.push_back({a});
  }
  std::vector<size_t> by_source(runs.size());  // run indices in source order
  for (size_t i = 0; i < runs.size(); ++i) by_source[i] = i;
  std::sort(by_source.begin(), by_source.end(), [&](size_t a, size_t b) { return runs[a][0] < runs[b][0]; });
  std::vector<Dim> merged;
  std::vector<int64_t> position(runs.size());
  for (size_t k = 0; k < by_source.size(); ++k) {
    Dim d(1);
    for (int64_t a : runs[by_source[k]]) d = d * dims[static_cast<size_t>(a)];
    merged.push_back(d);
    position[by_source[k]] = static_cast<int64_t>(k);
  }
  return {merged, position};
}

bool IsIdentity(const std::vector<int64_t>& p) {
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] != static_cast<int64_t>(i)) return false;
  return true;
}

class PermuteChains {
 public:
  explicit PermuteChains(Graph& g) : g_(g) {}

  int Run() {
    const std::vector<std::vector<Node*>> chains = passes::LayoutChains(g_);
    int count = 0;
    for (const auto& chain : chains) count += Segments(chain);
    return count;
  }

 private:
  // Greedy segments of the chain that are permutations; rewrites each that saves a copy.
  int Segments(const std::vector<Node*>& chain) {
    int count = 0;
    size_t start = 0;
    while (start < chain.size()) {
      Atoms atoms(chain[start]->input(0)->shape());
      size_t end = start;
      while (atoms.ok() && end < chain.size()) {
        Atoms before = atoms;
        if (!atoms.Apply(*chain[end])) {
          atoms = before;
          break;
        }
        ++end;
      }
      if (end > start && Rewrite(chain, start, end, atoms)) ++count;
      start = std::max(end, start + 1);
    }
    return count;
  }

  bool Rewrite(const std::vector<Node*>& chain, size_t start, size_t end, const Atoms& atoms) {
    int transposes = 0;
    for (size_t i = start; i < end; ++i) transposes += passes::IsLayoutTranspose(chain[i]) ? 1 : 0;
    const auto [atom_dims, perm] = Coalesce(atoms.SourceAtomDims(), atoms.Permutation());
    if (transposes == 0 || (transposes == 1 && !IsIdentity(perm)) || perm.size() > kMaxTransposeRank)
      return false;
    Value* x = chain[start]->input(0);
    Value* y = chain[end - 1]->output(0);
    std::vector<Dim> permuted;
    for (int64_t a : perm) permuted.push_back(atom_dims[static_cast<size_t>(a)]);
    const bool moves = !IsIdentity(perm);
    auto atom_target = passes::ReshapeTarget(x->shape(), Shape(atom_dims), /*allow_zero_copy=*/true);
    auto y_target =
        passes::ReshapeTarget(moves ? Shape(permuted) : x->shape(), y->shape(), /*allow_zero_copy=*/true);
    if (!atom_target || !y_target) return false;
    Node* at = chain[end - 1];
    const std::string name = at->name;
    Value* v = x;
    if (moves) {
      v = passes::InsertOp(g_, at, "Reshape", name + "/atoms",
                           {x, passes::AddInt64Initializer(g_, name + "/atoms_shape", *atom_target)},
                           x->dtype(), Shape(atom_dims));
      v = passes::InsertOp(g_, at, "Transpose", name + "/permute", {v}, x->dtype(), Shape(permuted));
      v->producer()->attrs["perm"] = Attribute::FromInts(perm);
    }
    Node* last = g_.InsertNode(at, "Reshape", g_.UniqueName(name + "/shaped"));
    last->AddInput(v);
    last->AddInput(passes::AddInt64Initializer(g_, name + "/shaped_shape", *y_target));
    for (size_t i = end; i-- > start;) g_.RemoveNode(chain[i]);
    last->AddOutput(y);
    return true;
  }

  Graph& g_;
};

}  // namespace

Status RunPermuteChains(Model& model, PassContext& ctx) {
  if (!model.graph) return Status::Ok();
  if (PermuteChains(*model.graph).Run() > 0) {
    model.graph->RemoveUnusedValues();
    ctx.changed = true;
  }
  return Status::Ok();
}

}  // namespace kiln
