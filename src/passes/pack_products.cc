// Build pass: sibling products read by generated kernels as one product (see pack_products.h).
#include "passes/pack_products.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "build/codegen/pointwise_ops.h"
#include "build/codegen/pointwise_source.h"
#include "build/codegen/pointwise_view.h"
#include "passes/attention_ranges.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

constexpr int kReach = 8;  // steps looked through for the joining node

// One product of the pack: its columns read as they are, or (heads) through a Reshape that splits them into
// [heads, head_dim].
struct Sibling {
  Node* product = nullptr;
  Node* heads = nullptr;      // the Reshape, in the heads form
  int64_t count = 0;          // columns, or heads
  Node* attention = nullptr;  // heads form: the kiln.Attention that reads the view as input `slot`
  size_t slot = 0;
};

// What siblings must share: the input, the weights' type and rows, the form and, for heads, the Reshape's
// target but its head entry.
using PackKey = std::tuple<const Value*, DataType, int64_t, bool, std::vector<int64_t>>;

class Packer {
 public:
  Packer(Graph& g, int64_t opset) : g_(g), opset_(opset) {}

  int Run() {
    std::map<PackKey, std::vector<Sibling>> packs;
    std::vector<PackKey> order;
    for (Node* n : g_.nodes()) {
      PackKey key;
      std::optional<Sibling> s = Analyze(n, &key);
      if (!s) continue;
      auto [it, fresh] = packs.emplace(key, std::vector<Sibling>{});
      if (fresh) order.push_back(key);
      it->second.push_back(*s);
    }
    int packed = 0;
    for (const PackKey& key : order) {
      const std::vector<Sibling>& siblings = packs[key];
      if (siblings.size() < 2 || (!std::get<3>(key) && !Joined(siblings))) continue;
      Pack(siblings, std::get<4>(key));
      ++packed;
    }
    return packed;
  }

 private:
  // A plain MatMul by a constant 2-D weight whose output generated kernels read: directly (columns form;
  // the kernel that joins the pack absorbs the column Slices), or through a Reshape to [.., heads, D] whose
  // output one kernel reads (heads form; that kernel absorbs a Slice of heads).
  std::optional<Sibling> Analyze(Node* n, PackKey* key) const {
    if (!passes::IsOnnxOp(n, "MatMul") || !passes::IsPlainNode(n, 2) || n->graph() != &g_)
      return std::nullopt;
    const Value* w = n->input(1);
    const Value* y = n->output(0);
    if (!passes::IsConstant(w) || w->data->rank() != 2 || w->dtype() != y->dtype() ||
        !passes::IsArithmeticFloat(y->dtype()) || !passes::HasRank(n->input(0), y->shape().rank()) ||
        y->uses().empty() || passes::IsAnyGraphOutput(g_, y))
      return std::nullopt;
    const int64_t columns = w->data->dim(1);
    if (std::all_of(y->uses().begin(), y->uses().end(), [this](const Node* u) { return Generated(*u); })) {
      *key = {n->input(0), w->dtype(), w->data->dim(0), false, {}};
      return Sibling{n, nullptr, columns};
    }
    Node* r = y->uses().size() == 1 ? y->uses()[0] : nullptr;
    if (!passes::IsOnnxOp(r, "Reshape") || !passes::IsPlainNode(r, 2) || r->input(0) != y ||
        passes::AttrInt(*r, "allowzero", 0) != 0)
      return std::nullopt;
    std::optional<std::vector<int64_t>> target = passes::ConstInts(r->input(1));
    if (!target || target->size() < 3 || passes::IsAnyGraphOutput(g_, r->output(0))) return std::nullopt;
    size_t slot = 0;
    Node* attention = AttentionReader(r->output(0), &slot);
    if (!attention && !ReadByOneKernel(r->output(0))) return std::nullopt;
    const int64_t d = target->back(), h = (*target)[target->size() - 2];
    const Shape& ys = y->shape();
    if (d <= 0 || h <= 0 || h * d != columns || !ys.rank_known() ||
        static_cast<int64_t>(target->size()) != ys.rank() + 1)
      return std::nullopt;
    // The product's leading dims, copied (0) or written out (torch 2 writes Llama's [0, 512, 8, 64]); the key
    // holds them as 0 (what the packed view's Reshape writes), so both forms pack together.
    std::vector<int64_t> shape = *target;
    for (size_t i = 0; i + 2 < target->size(); ++i) {
      const Dim& dim = ys[i];
      if ((*target)[i] != 0 && !(dim.known() && dim.value() == (*target)[i])) return std::nullopt;
      shape[i] = 0;
    }
    shape[shape.size() - 2] = 0;  // the entry the pack sets
    *key = {n->input(0), w->dtype(), w->data->dim(0), true, shape};
    return Sibling{n, r, h, attention, slot};
  }

  // The kiln.Attention that alone reads v, as one of Q, K, V stored with its heads on axis rank - 2 (so it
  // can read them as a head range of the packed view) and with the other inputs' head counts known; sets
  // *slot.
  static Node* AttentionReader(const Value* v, size_t* slot) {
    if (v->uses().size() != 1 || !passes::IsKilnOp(v->uses()[0], "Attention")) return nullptr;
    Node* a = v->uses()[0];
    AttentionLayout layouts[3];
    if (a->attr("head_ranges") || a->num_inputs() < 3 || !passes::AttentionSlotLayouts(*a, layouts))
      return nullptr;
    int reads = 0;
    for (size_t i = 0; i < a->num_inputs(); ++i) {
      if (a->input(i) != v) continue;
      ++reads;
      *slot = i;
    }
    AttentionAxes axes;
    const int rank = v->shape().rank();
    if (reads != 1 || *slot > 2 || !AttentionAxesOf(layouts[*slot], rank, &axes) || axes.h != rank - 2)
      return nullptr;
    for (size_t i = 0; i < 3; ++i)
      if (i != *slot && passes::WholeHeads(*a, i, layouts[i]) == 0) return nullptr;
    return a;
  }

  // A node a generated kernel computes: an elementwise op the generator writes, or a Concat of branches.
  bool Generated(const Node& n) const {
    if (n.graph() != &g_) return false;
    int axis = 0;
    return codegen::CanGeneratePointwise(n, opset_) ||
           (passes::IsOnnxOp(&n, "Concat") && !codegen::ConcatBranches(n, &axis).empty());
  }

  bool IsView(const Node& n) const {
    PwViewOp op;
    return n.graph() == &g_ && n.num_outputs() == 1 && codegen::ViewOpOf(n, opset_, &op);
  }

  // The nodes reachable from v through generated ops and views (kReach steps).
  std::set<const Node*> Reach(const Value* v) const {
    std::set<const Node*> found;
    std::vector<const Value*> frontier = {v};
    for (int step = 0; step < kReach && !frontier.empty(); ++step) {
      std::vector<const Value*> next;
      for (const Value* f : frontier)
        for (const Node* u : f->uses())
          if ((Generated(*u) || IsView(*u)) && found.insert(u).second)
            for (const Value* o : u->outputs()) next.push_back(o);
      frontier = std::move(next);
    }
    return found;
  }

  // Some node reads (through generated ops and views) every value: one generated kernel will.
  bool OneKernelReads(const std::vector<const Value*>& values) const {
    std::set<const Node*> common = Reach(values[0]);
    for (size_t i = 1; i < values.size() && !common.empty(); ++i) {
      std::set<const Node*> r = Reach(values[i]), both;
      for (const Node* n : common)
        if (r.count(n) && Generated(*n)) both.insert(n);
      common = std::move(both);
    }
    return std::any_of(common.begin(), common.end(), [this](const Node* n) { return Generated(*n); });
  }

  // Every reader of v, through views, is a generated op, and one kernel reads them all (so that it absorbs a
  // Slice of v).
  bool ReadByOneKernel(const Value* v) const {
    std::vector<const Value*> reads;  // the values generated ops read: v and the views' outputs
    std::vector<const Value*> frontier = {v};
    while (!frontier.empty()) {
      const Value* f = frontier.back();
      frontier.pop_back();
      if (f->uses().empty() || passes::IsAnyGraphOutput(g_, f)) return false;
      for (const Node* u : f->uses()) {
        if (IsView(*u)) {
          frontier.push_back(u->output(0));
        } else if (Generated(*u)) {
          reads.push_back(u->output(0));
        } else {
          return false;
        }
      }
    }
    return !reads.empty() && OneKernelReads(reads);
  }

  // Columns form: one kernel reads every sibling.
  bool Joined(const std::vector<Sibling>& siblings) const {
    std::vector<const Value*> outs;
    for (const Sibling& s : siblings) outs.push_back(s.product->output(0));
    return OneKernelReads(outs);
  }

  void Pack(const std::vector<Sibling>& siblings, std::vector<int64_t> heads_target) {
    std::vector<const Tensor*> weights;
    for (const Sibling& s : siblings) weights.push_back(&*s.product->input(1)->data);
    Tensor w = passes::ConcatTensors(weights, 1);
    const int64_t columns = w.dim(1);
    Node* at = nullptr;  // the first sibling in schedule order
    for (Node* n : g_.nodes())
      if (std::any_of(siblings.begin(), siblings.end(), [n](const Sibling& s) { return s.product == n; })) {
        at = n;
        break;
      }
    const std::string base = at->name + "/packed";
    Value* x = at->input(0);
    std::vector<Dim> dims = siblings[0].product->output(0)->shape().dims();
    dims.back() = Dim(columns);
    Value* y =
        passes::InsertOp(g_, at, "MatMul", base, {x, passes::AddInitializer(g_, base + "_w", std::move(w))},
                         x->dtype(), Shape(dims));
    const bool heads = siblings[0].heads != nullptr;
    if (heads) {  // [.., heads in all, D], sliced along the heads
      int64_t total = 0;
      for (const Sibling& s : siblings) total += s.count;
      heads_target[heads_target.size() - 2] = total;
      std::vector<Dim> hd = siblings[0].heads->output(0)->shape().dims();
      hd[hd.size() - 2] = Dim(total);
      y = passes::InsertOp(g_, at, "Reshape", base + "/heads",
                           {y, passes::AddInt64Initializer(g_, base + "/heads_shape", heads_target)},
                           x->dtype(), Shape(hd));
    }
    int64_t offset = 0;
    std::vector<std::pair<Node*, Value*>> slices;  // each Slice and the value it takes over
    std::map<Node*, std::vector<int64_t>> ranges;  // attentions reading heads of y: their head_ranges
    for (const Sibling& s : siblings) {
      if (s.attention) {
        // An attention another pack of this run gave ranges keeps them for its other inputs.
        const Attribute* had = s.attention->attr("head_ranges");
        std::vector<int64_t> start = had && had->ints.size() == 6 ? had->ints : std::vector<int64_t>(6, 0);
        std::vector<int64_t>& r = ranges.emplace(s.attention, start).first->second;
        r[2 * s.slot] = offset;
        r[2 * s.slot + 1] = s.count;
        s.attention->SetInput(s.slot, y);
        offset += s.count;
        continue;
      }
      const std::string name = s.product->name + (heads ? "/heads" : "/cols");
      Node* slice = g_.InsertNode(at, "Slice", g_.UniqueName(name));
      slice->AddInput(y);
      slice->AddInput(passes::AddInt64Initializer(g_, name + "_start", {offset}));
      slice->AddInput(passes::AddInt64Initializer(g_, name + "_end", {offset + s.count}));
      slice->AddInput(passes::AddInt64Initializer(g_, name + "_axis", {heads ? -2 : -1}));
      slices.emplace_back(slice, (heads ? s.heads : s.product)->output(0));
      offset += s.count;
    }
    for (const Sibling& s : siblings) {  // after the inserts: `at` is one of them
      if (s.heads) g_.RemoveNode(s.heads);
      g_.RemoveNode(s.product);
    }
    for (auto& [slice, out] : slices) slice->AddOutput(out);
    for (auto& [a, r] : ranges) {
      AttentionLayout layouts[3];
      passes::AttentionSlotLayouts(*a, layouts);
      passes::CompleteRanges(*a, layouts, &r);  // the other inputs' head counts are known (AttentionReader)
      a->attrs["head_ranges"] = Attribute::FromInts(r);
    }
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
