// Build-time pointwise fusion (see fuse_pointwise.h).
#include "passes/fuse_pointwise.h"

#include <algorithm>
#include <iterator>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "backend/gpu_caps.h"
#include "build/codegen/pointwise_ops.h"
#include "build/codegen/pointwise_source.h"
#include "build/codegen/pointwise_view.h"
#include "build/codegen/row_source.h"
#include "ops/pointwise_abi.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

// Groups each value depends on (a bit per group id, as made; merged groups
// answer through their root).
using GroupSet = std::vector<bool>;

void Union(GroupSet& into, const GroupSet& from) {
  if (from.size() > into.size()) into.resize(from.size(), false);
  for (size_t i = 0; i < from.size(); ++i)
    if (from[i]) into[i] = true;
}

bool DimsNamed(const Shape& s) {
  if (!s.rank_known() || s.rank() > KILN_PW_MAX_RANK) return false;
  for (const Dim& d : s.dims())
    if (d.unknown()) return false;
  return true;
}

struct Group {
  Shape domain;
  std::vector<Node*> members;
  int parent = -1;          // merged into; -1 for a root
  bool has_rows = false;    // holds a row reduction (a row kernel)
  bool has_concat = false;  // holds a Concat (elementwise kernels only)
};

// Same rank, and the dims are provably equal except along `axis`.
bool SameDimsBut(const Shape& a, const Shape& b, int axis) {
  if (!a.rank_known() || !b.rank_known() || a.rank() != b.rank()) return false;
  for (int d = 0; d < a.rank(); ++d)
    if (d != axis && (!(a[d] == b[d]) || a[d].unknown())) return false;
  return true;
}

class FusePointwise {
 public:
  explicit FusePointwise(Model& model) : g_(*model.graph), opset_(model.OpsetOf("")) {}

  int Run() {
    // Arithmetic on shape-tensor inputs (values given on the host, that a
    // Host slot reads: a window length into Range) stays host arithmetic too.
    host_ = HostShapeValues(g_, ShapeTensorInputs(g_));
    std::vector<Node*> nodes = g_.nodes();
    for (size_t i = 0; i < nodes.size(); ++i) order_[nodes[i]] = i;
    Partition(nodes);
    int fused = 0;
    for (size_t k = 0; k < groups_.size(); ++k)
      if (groups_[k].parent < 0 && !groups_[k].members.empty() && Materialize(static_cast<int>(k))) ++fused;
    return fused;
  }

 private:
  bool IsReduce(const Node& n) const { return codegen::RowReduceOf(n, opset_) != codegen::RowReduce::kNone; }
  static bool IsConcat(const Node& n, int* axis = nullptr) {
    int a = 0;
    const bool concat = !codegen::ConcatBranches(n, &a).empty();
    if (axis) *axis = a;
    return concat;
  }
  // Row kernels take no Concat: a group holds reductions or Concats, not both.
  bool Mixes(int a, int b) const {
    return (groups_[a].has_rows && groups_[b].has_concat) || (groups_[a].has_concat && groups_[b].has_rows);
  }

  bool Eligible(const Node& n) const {
    if (passes::HasSubgraphs(n)) return false;
    const bool reduce = IsReduce(n);
    if (!reduce && !codegen::CanGeneratePointwise(n, opset_) && !IsConcat(n)) return false;
    const Value* out = n.output(0);
    if (!DimsNamed(out->shape()) || out->data || out->sym_data || host_.count(out)) return false;
    if (!reduce) return true;
    // A row reduction: over a last axis longer than one element.
    const Shape& in = n.input(0)->shape();
    const Dim& last = in[in.rank() - 1];
    return DimsNamed(in) && !(last.known() && last.value() == 1);
  }

  // The shape a node's work spans: a reduction's input, else its output.
  Shape ElementShape(const Node& n) const { return IsReduce(n) ? n.input(0)->shape() : n.output(0)->shape(); }

  // n's output is one value per row of group gv's domain (after its reductions).
  bool RowLevelIn(const Node& n, int gv) const {
    return groups_[gv].has_rows && !IsReduce(n) && codegen::RowShaped(n.output(0)->shape(), groups_[gv].domain);
  }

  int Find(int gid) const {
    while (groups_[gid].parent >= 0) gid = groups_[gid].parent;
    return gid;
  }
  // The root group of v's producer, or -1.
  int GroupOf(const Value* v) const {
    if (!v || !v->producer()) return -1;
    auto it = group_of_.find(v->producer());
    return it == group_of_.end() ? -1 : Find(it->second);
  }
  // v depends on group `root` (through any of its merged parts).
  bool DependsOn(const Value* v, int root) const {
    auto it = anc_.find(v);
    if (it == anc_.end()) return false;
    for (size_t i = 0; i < it->second.size(); ++i)
      if (it->second[i] && Find(static_cast<int>(i)) == root) return true;
    return false;
  }
  // No operand of `members` from outside groups a and b depends on `root`.
  bool NoPathBack(const std::vector<Node*>& members, int a, int b, int root) const {
    for (const Node* m : members)
      for (const Value* v : m->inputs()) {
        const int gv = GroupOf(v);
        if (v && gv != a && gv != b && DependsOn(v, root)) return false;
      }
    return true;
  }

  // Every dim of `small` (right-aligned) is 1 or provably `large`'s.
  static bool BroadcastsTo(const Shape& small, const Shape& large) {
    if (small.rank() > large.rank()) return false;
    const int off = large.rank() - small.rank();
    for (int d = 0; d < small.rank(); ++d) {
      const Dim& a = small[d];
      if (!(a.known() && a.value() == 1) && !(a == large[d + off] && !a.unknown())) return false;
    }
    return true;
  }
  // Every value group gv computes is read only by gv itself and group
  // `target` (the node joining it included), and is no graph output.
  bool OnlyFeeds(int gv, int target) const {
    for (const Node* m : groups_[gv].members) {
      const Value* out = m->output(0);
      if (passes::IsAnyGraphOutput(g_, out)) return false;
      for (const Node* u : out->uses()) {
        auto it = group_of_.find(u);
        const int gu = it == group_of_.end() ? -1 : Find(it->second);
        if (gu != gv && gu != target) return false;
      }
    }
    return true;
  }

  // Assigns each eligible node a group, in schedule order. A node joins the
  // group of one of its producers when no path leaves that group and comes
  // back to it; the groups of its other producers (same domain) merge in when
  // no path runs between the two through other nodes.
  // A Concat's operands are computed in the Concat's branches: the group of
  // one (its domain the Concat's but along the axis) joins when it feeds only
  // the Concat's group.
  void Partition(const std::vector<Node*>& nodes) {
    for (Node* n : nodes) {
      GroupSet anc;
      for (const Value* v : n->inputs())
        if (v && anc_.count(v)) Union(anc, anc_[v]);
      if (Eligible(*n)) {
        int target = -1;
        for (const Value* v : n->inputs()) {
          const int gv = GroupOf(v);
          if (gv >= 0 && (passes::SameDims(groups_[gv].domain, ElementShape(*n)) || RowLevelIn(*n, gv)) &&
              !(IsConcat(*n) && groups_[gv].has_rows) && !(IsReduce(*n) && groups_[gv].has_concat) &&
              NoPathBack({n}, gv, gv, gv)) {
            target = gv;
            break;
          }
        }
        if (target < 0) {
          target = static_cast<int>(groups_.size());
          groups_.push_back(Group{ElementShape(*n), {}, -1, false, false});
        }
        int axis = 0;
        const bool concat = IsConcat(*n, &axis);
        if (IsReduce(*n)) groups_[target].has_rows = true;
        if (concat) groups_[target].has_concat = true;
        groups_[target].members.push_back(n);
        group_of_[n] = target;
        for (const Value* v : n->inputs()) {
          const int gv = GroupOf(v);
          if (gv < 0 || gv == target) continue;
          const bool same = passes::SameDims(groups_[gv].domain, groups_[target].domain);
          // A smaller group that only feeds this one is recomputed per element
          // of the larger domain (an SE gate's Sigmoid, a norm's statistics).
          const bool recomputed =
              !groups_[gv].has_rows && (BroadcastsTo(groups_[gv].domain, groups_[target].domain) ||
                                        (concat && SameDimsBut(groups_[gv].domain, ElementShape(*n), axis)));
          if ((!same && !(recomputed && OnlyFeeds(gv, target))) || Mixes(gv, target)) continue;
          if (NoPathBack(groups_[gv].members, target, gv, target) &&
              NoPathBack(groups_[target].members, target, gv, gv)) {
            groups_[gv].parent = target;
            groups_[target].has_rows = groups_[target].has_rows || groups_[gv].has_rows;
            groups_[target].has_concat = groups_[target].has_concat || groups_[gv].has_concat;
            for (Node* m : groups_[gv].members) groups_[target].members.push_back(m);
            groups_[gv].members.clear();
          }
        }
        if (anc.size() <= static_cast<size_t>(target)) anc.resize(target + 1, false);
        anc[target] = true;
      }
      for (const Value* out : n->outputs())
        if (out) anc_[out] = anc;
    }
  }

  bool UsedOutside(const Value* v, const std::unordered_set<const Node*>& members) {
    if (passes::IsAnyGraphOutput(g_, v)) return true;
    for (const Node* u : v->uses())
      if (!members.count(u)) return true;
    return false;
  }

  // The view nodes (codegen::ViewOpOf: Transposes, constant Slices, Expands) the kernel
  // reads through instead of running them: each one's output is read only by
  // members and other absorbed views, is no graph output or host value, and
  // its input is not computed by the group. Latest first, so that a view's
  // readers are decided before it (a Transpose read by two Slices).
  std::unordered_set<const Node*> AbsorbedViews(const std::unordered_set<const Node*>& members) const {
    std::unordered_set<const Node*> absorbed;
    std::set<std::pair<size_t, Node*>> queue;  // by schedule position
    auto push = [&](const Value* v) {
      Node* p = v ? v->producer() : nullptr;
      auto at = order_.find(p);  // groups fused before have no position: they are no views
      if (p && at != order_.end() && !members.count(p)) queue.insert({at->second, p});
    };
    for (const Node* m : members)
      for (const Value* v : m->inputs()) push(v);
    while (!queue.empty()) {
      Node* t = std::prev(queue.end())->second;
      queue.erase(std::prev(queue.end()));
      PwViewOp op;
      const Value* out = t->output(0);
      if (!codegen::ViewOpOf(*t, opset_, &op) || t->input(0)->shape().rank() > KILN_PW_MAX_RANK ||
          passes::IsAnyGraphOutput(g_, out) || host_.count(out) || host_.count(t->input(0)))
        continue;
      if (const Node* p = t->input(0)->producer(); p && members.count(p)) continue;
      bool inside = true;
      for (const Node* u : out->uses()) inside = inside && (members.count(u) || absorbed.count(u));
      if (!inside) continue;
      absorbed.insert(t);
      push(t->input(0));
    }
    return absorbed;
  }

  // Operand i of n is copied into the body: a one-element float/bool constant
  // (a literal in the kernel), or a reduction's constant axes.
  bool IntoBody(const Node& n, size_t i) const {
    const Value* v = n.input(i);
    return v && (Inlined(v) || (IsReduce(n) && i > 0 && passes::IsConstant(v)));
  }

  static bool Inlined(const Value* v) {
    return passes::IsConstant(v) && v->data->numel() == 1 &&
           (codegen::IsPointwiseFloat(v->dtype()) || v->dtype() == DataType::kBool);
  }

  // A name for body values of group k that no main-graph value has.
  std::string Prefix(int k) const {
    std::string p = "pw" + std::to_string(k) + "/";
    while (g_.FindValue(p + "in0")) p = "_" + p;
    return p;
  }

  bool Materialize(int k) {
    Group& grp = groups_[k];
    std::sort(grp.members.begin(), grp.members.end(),
              [&](const Node* a, const Node* b) { return order_.at(a) < order_.at(b); });
    std::unordered_set<const Node*> members(grp.members.begin(), grp.members.end());
    std::vector<Value*> inputs, outputs;
    std::vector<Value*> viewed;  // read through absorbed views: the kernel reads their sources
    const std::unordered_set<const Node*> views = AbsorbedViews(members);
    // A group of one node stays as it is (a hand-written kernel runs it), except a Concat of views: one
    // kernel instead of a copy per view and the Concat's.
    if (grp.members.size() == 1 && (views.empty() || !IsConcat(*grp.members[0]))) return false;
    std::unordered_set<Value*> seen;
    for (Node* n : grp.members) {
      for (size_t i = 0; i < n->num_inputs(); ++i) {
        Value* v = n->input(i);
        if (!v || (v->producer() && members.count(v->producer())) || IntoBody(*n, i) || !seen.insert(v).second)
          continue;
        (v->producer() && views.count(v->producer()) ? viewed : inputs).push_back(v);
      }
      if (UsedOutside(n->output(0), members)) {
        // Kernels store over the domain only: a per-row value used outside
        // (a norm's mean read elsewhere) keeps the group unfused.
        if (!passes::SameDims(n->output(0)->shape(), grp.domain)) return false;
        outputs.push_back(n->output(0));
      }
    }
    if (outputs.empty() || inputs.size() + viewed.size() > KILN_PW_MAX_INPUTS ||
        outputs.size() > KILN_PW_MAX_OUTPUTS)
      return false;

    const std::string prefix = Prefix(k);
    auto body = std::make_shared<Graph>();
    body->name = prefix + "body";
    body->parent = &g_;
    std::unordered_map<const Value*, Value*> map;
    auto copy_value = [&](const Value* v, const std::string& name) {
      Value* c = body->AddValue(name);
      c->type = v->type;
      map[v] = c;
      return c;
    };
    for (size_t i = 0; i < inputs.size(); ++i)
      body->inputs.push_back(copy_value(inputs[i], prefix + "in" + std::to_string(i)));
    int consts = 0;
    auto copy_const = [&](const Value* v) {
      if (map.count(v)) return;
      Value* cv = copy_value(v, prefix + "c" + std::to_string(consts++));
      cv->data = v->data;
      body->initializers.push_back(cv);
    };
    // A copy of n reading its operands' copies (constants copied on first
    // use), or `data` as its first input (a view chain's copy).
    auto copy_node = [&](const Node* n, Value* data, const std::string& out_name) {
      Node* c = body->AddNode(n->op_type, n->name, n->domain);
      c->attrs = n->attrs;
      for (size_t i = 0; i < n->num_inputs(); ++i) {
        const Value* v = n->input(i);
        if (v && !(i == 0 && data) && !map.count(v) && passes::IsConstant(v)) copy_const(v);
        c->AddInput(i == 0 && data ? data : v ? map.at(v) : nullptr);
      }
      Value* out = body->AddValue(out_name);
      out->type = n->output(0)->type;
      c->AddOutput(out);
      if (!data) map[n->output(0)] = out;
      return out;
    };
    // One body input per viewed value, then its own copy of the view chain.
    std::vector<Value*> sources;
    for (size_t j = 0; j < viewed.size(); ++j) {
      std::vector<const Node*> chain;
      for (const Value* v = viewed[j]; v->producer() && views.count(v->producer());
           v = v->producer()->input(0))
        chain.insert(chain.begin(), v->producer());
      sources.push_back(chain.front()->input(0));
      Value* in = body->AddValue(prefix + "in" + std::to_string(inputs.size() + j));
      in->type = sources.back()->type;
      body->inputs.push_back(in);
      for (size_t c = 0; c < chain.size(); ++c)
        in = copy_node(chain[c], in, prefix + "view" + std::to_string(j) + "/" + std::to_string(c));
      map[viewed[j]] = in;
    }
    for (Node* n : grp.members) copy_node(n, nullptr, prefix + n->output(0)->name());
    for (Value* o : outputs) body->outputs.push_back(map.at(o));

    Node* last = grp.members.back();
    Node* fused = g_.InsertNode(last, "Pointwise", grp.members.front()->name, "kiln");
    fused->attrs["body"] = Attribute::FromGraph(body);
    for (Value* v : inputs) fused->AddInput(v);
    for (Value* v : sources) fused->AddInput(v);
    for (auto it = grp.members.rbegin(); it != grp.members.rend(); ++it) g_.RemoveNode(*it);
    std::vector<Node*> dead;
    for (const Node* t : views) dead.push_back(const_cast<Node*>(t));
    std::sort(dead.begin(), dead.end(),
              [&](const Node* a, const Node* b) { return order_.at(a) > order_.at(b); });
    for (Node* t : dead) g_.RemoveNode(t);
    for (Value* o : outputs) fused->AddOutput(o);
    return true;
  }

  Graph& g_;
  int64_t opset_;
  std::unordered_set<const Value*> host_;
  std::vector<Group> groups_;
  std::unordered_map<const Node*, int> group_of_;  // as assigned; Find gives the root
  std::unordered_map<const Node*, size_t> order_;
  std::unordered_map<const Value*, GroupSet> anc_;
};

}  // namespace

Status UnfusePointwise(Graph& g, Node* fused) {
  const Attribute* a = fused->attr("body");
  if (!a || !a->g || a->g->inputs.size() != fused->num_inputs() || a->g->outputs.size() != fused->num_outputs())
    return Internal(fused->Label() + ": not a kiln.Pointwise with a matching body");
  std::shared_ptr<Graph> body = a->g;  // alive until the node is gone
  std::unordered_map<const Value*, Value*> map;
  for (size_t i = 0; i < body->inputs.size(); ++i) map[body->inputs[i]] = fused->input(i);
  std::vector<Value*> outs(fused->outputs().begin(), fused->outputs().end());
  for (size_t i = 0; i < outs.size(); ++i) {
    if (map.count(body->outputs[i])) return Internal(fused->Label() + ": a body output is a body input");
    map[body->outputs[i]] = outs[i];
    fused->SetOutput(i, nullptr);
  }
  for (const Value* v : body->values()) {
    if (map.count(v)) continue;
    Value* c = g.AddValue(g.UniqueName(v->name()));
    c->type = v->type;
    c->data = v->data;
    if (v->data) g.initializers.push_back(c);
    map[v] = c;
  }
  for (const Node* bn : body->nodes()) {
    Node* c = g.InsertNode(fused, bn->op_type, bn->name, bn->domain);
    c->attrs = bn->attrs;
    for (const Value* v : bn->inputs()) c->AddInput(v ? map.at(v) : nullptr);
    for (const Value* v : bn->outputs()) c->AddOutput(v ? map.at(v) : nullptr);
  }
  g.RemoveNode(fused);
  return Status::Ok();
}

Status RunFusePointwise(Model& model, PassContext& ctx) {
  if (!model.graph) return Status::Ok();
  FusePointwise pass(model);
  const int fused = pass.Run();
  if (fused == 0) return Status::Ok();
  KILN_RETURN_IF_ERROR(model.graph->TopologicalSort());
  passes::FinishKilnRewrite(model, ctx, fused);
  return Status::Ok();
}

}  // namespace kiln
