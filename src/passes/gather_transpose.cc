// Gathers through Transposes (see gather_transpose.h).
#include "passes/gather_transpose.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "passes/dce.h"
#include "passes/fold_shapes.h"
#include "passes/layout_chains.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::IsConstant;
using passes::IsOnnxOp;

class GatherRewriter {
 public:
  GatherRewriter(Graph& g, int64_t opset) : g_(g), opset_(opset) {}

  int Run() {
    int count = 0;
    std::vector<Node*> splits;
    for (Node* n : g_.nodes())
      if (IsOnnxOp(n, "Split")) splits.push_back(n);
    for (Node* n : splits) count += UnbindToGathers(n);
    for (Node* n : Gathers()) count += Rewrite(n) ? 1 : 0;  // removes only the Gather it rewrites
    for (Node* n : Gathers()) count += ColumnBlock(n) ? 1 : 0;
    return count;
  }

 private:
  std::vector<Node*> Gathers() {
    std::vector<Node*> gathers;
    for (Node* n : g_.nodes())
      if (IsOnnxOp(n, "Gather") && passes::IsPlainNode(n, 2)) gathers.push_back(n);
    return gathers;
  }

  static Value* ScalarIndex(Graph& g, const std::string& base, int64_t i) {
    Tensor t(DataType::kInt64, {});
    t.mutable_data<int64_t>()[0] = i;
    return passes::AddInitializer(g, base, std::move(t));
  }

  // torch's unbind: Split(T, axis a) into parts of size 1, each read only by
  // Squeeze(axes = [a]). Each Squeeze becomes Gather(T, i, axis = a), which
  // the rewrites below then follow. Returns the Squeezes replaced.
  int UnbindToGathers(Node* split) {
    if (split->num_inputs() < 1 || !split->input(0) || !split->input(0)->shape().rank_known()) return 0;
    Value* t = split->input(0);
    const int64_t rank = t->shape().rank();
    int64_t axis = passes::AttrInt(*split, "axis", 0);
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= rank) return 0;
    const Dim& n = t->shape()[static_cast<size_t>(axis)];
    if (!n.known() || n.value() != static_cast<int64_t>(split->num_outputs())) return 0;
    std::optional<std::vector<int64_t>> sizes = passes::AttrInts(*split, "split");  // before opset 13
    if (split->num_inputs() > 1 && split->input(1)) sizes = passes::ConstInts(split->input(1));
    if ((split->num_inputs() > 1 && split->input(1) && !sizes) ||
        (sizes && std::any_of(sizes->begin(), sizes->end(), [](int64_t x) { return x != 1; })))
      return 0;
    std::vector<Node*> squeezes;
    for (Value* part : split->outputs()) {
      if (!part || passes::IsAnyGraphOutput(g_, part)) return 0;
      for (Node* u : part->uses()) {
        if (!IsOnnxOp(u, "Squeeze") || u->graph() != &g_ || u->num_outputs() != 1) return 0;
        auto axes = passes::NodeAxes(*u, opset_, 13, 1);
        if (!axes || passes::NormalizeAxes(*axes, rank) != std::vector<int64_t>{axis}) return 0;
        squeezes.push_back(u);
      }
    }
    for (Node* sq : squeezes) {
      const auto& outs = split->outputs();
      const int64_t i = std::find(outs.begin(), outs.end(), sq->input(0)) - outs.begin();
      Node* gather = g_.InsertNode(sq, "Gather", g_.UniqueName(sq->name + "/unbind"));
      gather->attrs["axis"] = Attribute::FromInt(axis);
      gather->AddInput(t);
      gather->AddInput(ScalarIndex(g_, sq->name + "/index", i));
      Value* out = sq->output(0);
      g_.RemoveNode(sq);
      gather->AddOutput(out);
    }
    g_.RemoveNode(split);  // no reader is left; the Gathers below count T's readers
    return static_cast<int>(squeezes.size());
  }

  // Gather(Reshape(P, [.., n, r..]), i, axis) where the Reshape splits P's last
  // axis into n blocks of the axes after `axis` (a packed projection read per
  // block) and keeps P's other axes, up to axes of size 1 (torch 2's
  // nn.MultiheadAttention unsqueezes a leading 1: [S, B, 3E] → [1, S, B, 3, E])
  // ⇒ Reshape(Slice(P, i·R, (i + 1)·R, axes = [-1]), the old result's shape): a
  // column block, which split_projection turns into its own product.
  bool ColumnBlock(Node* gather) {
    Value* index = gather->input(1);
    Value* out = gather->output(0);
    Node* reshape = gather->input(0)->producer();  // other blocks may read it too; DCE takes it when none is left
    if (!IsOnnxOp(reshape, "Reshape") || reshape->graph() != &g_ || !IsConstant(index) || index->data->rank() != 0)
      return false;
    auto i = passes::ConstInts(index);
    Value* p = reshape->input(0);
    const Shape& ps = p->shape();
    const Shape& rs = reshape->output(0)->shape();
    if (!i || !ps.rank_known() || !rs.rank_known() || ps.rank() < 1 || !out->shape().rank_known()) return false;
    int64_t axis = passes::AttrInt(*gather, "axis", 0);
    if (axis < 0) axis += rs.rank();
    const int64_t lead = ps.rank() - 1;  // P's axes before the last one stay as they are (up to 1s)
    if (axis < 0 || rs.rank() <= axis + 1) return false;
    auto kept = [](const Shape& s, int64_t end) {
      std::vector<Dim> d;
      for (int64_t k = 0; k < end; ++k)
        if (!passes::IsKnownOne(s[static_cast<size_t>(k)])) d.push_back(s[static_cast<size_t>(k)]);
      return d;
    };
    if (!passes::SameDims(Shape(kept(ps, lead)), Shape(kept(rs, axis)))) return false;
    int64_t block = 1;
    for (int64_t k = axis + 1; k < rs.rank(); ++k) {
      if (!rs[static_cast<size_t>(k)].known()) return false;
      block *= rs[static_cast<size_t>(k)].value();
    }
    const Dim& n = rs[static_cast<size_t>(axis)];
    const Dim& cols = ps[static_cast<size_t>(lead)];
    int64_t at = (*i)[0];
    if (!n.known() || !cols.known() || n.value() * block != cols.value()) return false;
    if (at < 0) at += n.value();
    if (at < 0 || at >= n.value()) return false;
    std::vector<Dim> sliced = ps.dims();
    sliced.back() = Dim(block);
    auto target = passes::ReshapeTarget(Shape(sliced), out->shape(), /*allow_zero_copy=*/true);
    if (!target) return false;
    const std::string name = gather->name + "/columns";
    Value* slice_out = passes::NewTensorValue(g_, name, p->dtype(), Shape(sliced));
    Node* slice = g_.InsertNode(gather, "Slice", g_.UniqueName(name));
    slice->AddInput(p);
    slice->AddInput(passes::AddInt64Initializer(g_, name + "/starts", {at * block}));
    slice->AddInput(passes::AddInt64Initializer(g_, name + "/ends", {(at + 1) * block}));
    slice->AddInput(passes::AddInt64Initializer(g_, name + "/axes", {-1}));
    slice->AddOutput(slice_out);
    Node* shaped = g_.InsertNode(gather, "Reshape", g_.UniqueName(name + "/reshape"));
    shaped->AddInput(slice_out);
    shaped->AddInput(passes::AddInt64Initializer(g_, name + "/shape", *target));
    g_.RemoveNode(gather);
    shaped->AddOutput(out);
    return true;
  }

  bool Rewrite(Node* gather) {
    Value* data = gather->input(0);
    Value* index = gather->input(1);
    Value* out = gather->output(0);
    if (!IsConstant(index) || index->data->rank() != 0 || !passes::ConstInts(index)) return false;
    const Shape& os = out->shape();
    if (!os.rank_known()) return false;
    // Optional Squeeze, then the Transpose.
    Value* transposed = data;
    std::vector<int64_t> squeezed;
    Node* squeeze = data->producer();
    if (IsOnnxOp(squeeze, "Squeeze") && squeeze->graph() == &g_) {
      transposed = squeeze->input(0);
      if (!transposed || !transposed->shape().rank_known()) return false;
      auto axes = passes::NodeAxes(*squeeze, opset_, 13, 1);
      if (!axes || axes->empty()) return false;  // squeeze-all needs every dim known: not handled
      auto norm = passes::NormalizeAxes(*axes, transposed->shape().rank());
      if (!norm) return false;
      squeezed = *norm;
    }
    Node* transpose = transposed->producer();
    if (!IsOnnxOp(transpose, "Transpose") || transpose->graph() != &g_ || !transpose->input(0)) return false;
    Value* y = transpose->input(0);
    const Shape& ys = y->shape();
    if (!ys.rank_known() || y->dtype() != out->dtype()) return false;
    const int rank = ys.rank();
    const std::vector<int64_t> perm = passes::TransposePermOf(*transpose, static_cast<size_t>(rank));
    if (static_cast<int>(perm.size()) != rank) return false;
    // The Transpose output axes the Gather's data keeps, in order.
    std::vector<int64_t> kept;
    for (int64_t t = 0; t < rank; ++t)
      if (!std::binary_search(squeezed.begin(), squeezed.end(), t)) kept.push_back(t);
    int64_t axis = passes::AttrInt(*gather, "axis", 0);
    const int64_t data_rank = static_cast<int64_t>(kept.size());
    if (axis < 0) axis += data_rank;
    if (axis < 0 || axis >= data_rank) return false;
    const int64_t y_axis = perm[static_cast<size_t>(kept[static_cast<size_t>(axis)])];
    // The axes left, as axes of Gather(Y): in order, a Reshape stands for the
    // rest of the Transpose; otherwise a smaller Transpose of the gathered part
    // does (fuse_attention absorbs a head swap there). Size-1 axes go last.
    std::vector<int64_t> rest, ones;
    for (size_t k = 0; k < kept.size(); ++k) {
      if (static_cast<int64_t>(k) == axis) continue;
      const int64_t ya = perm[static_cast<size_t>(kept[k])];
      const Dim& d = ys[static_cast<size_t>(ya)];
      (passes::IsKnownOne(d) ? ones : rest).push_back(ya > y_axis ? ya - 1 : ya);
    }
    for (size_t k = 0; k < squeezed.size(); ++k) {
      const int64_t ya = perm[static_cast<size_t>(squeezed[k])];
      ones.push_back(ya > y_axis ? ya - 1 : ya);
    }
    const bool in_order = std::is_sorted(rest.begin(), rest.end());
    // Out of order, a Transpose of the part replaces the whole one: a gain
    // only once nothing but Gathers reads the transposed value.
    if (!in_order) {
      if (passes::IsAnyGraphOutput(g_, data) || passes::IsAnyGraphOutput(g_, transposed)) return false;
      for (const Node* u : data->uses())
        if (!IsOnnxOp(u, "Gather")) return false;
      if (data != transposed && transposed->uses().size() != 1) return false;
    }
    std::vector<Dim> gathered;
    for (int i = 0; i < rank; ++i)
      if (i != y_axis) gathered.push_back(ys[static_cast<size_t>(i)]);
    std::vector<int64_t> order = rest;  // the Transpose of the gathered part, if any
    order.insert(order.end(), ones.begin(), ones.end());
    std::vector<Dim> permuted;
    for (int64_t a : order) permuted.push_back(gathered[static_cast<size_t>(a)]);
    // The last node makes `out` itself where its shape already is the old result's.
    const Shape last(in_order ? gathered : permuted);
    const bool reshaped = !passes::SameDims(last, os);
    auto target = passes::ReshapeTarget(last, os, /*allow_zero_copy=*/true);
    if (!target) return false;
    std::vector<std::pair<Node*, Value*>> made;  // each new node and its output (nullptr: `out`)
    Node* ng = g_.InsertNode(gather, "Gather", g_.UniqueName(gather->name));
    ng->attrs["axis"] = Attribute::FromInt(y_axis);
    ng->AddInput(y);
    ng->AddInput(index);
    made.emplace_back(ng, in_order && !reshaped ? nullptr
                                                : passes::NewTensorValue(g_, out->name() + "/gathered", out->dtype(),
                                                                         Shape(gathered)));
    if (!in_order) {
      Node* nt = g_.InsertNode(gather, "Transpose", g_.UniqueName(gather->name + "/rest"));
      nt->attrs["perm"] = Attribute::FromInts(order);
      nt->AddInput(made.back().second);
      made.emplace_back(nt, reshaped ? passes::NewTensorValue(g_, out->name() + "/permuted", out->dtype(),
                                                              Shape(permuted))
                                     : nullptr);
    }
    if (reshaped) {
      Node* reshape = g_.InsertNode(gather, "Reshape", g_.UniqueName(gather->name + "/reshape"));
      reshape->AddInput(made.back().second);
      reshape->AddInput(passes::AddInt64Initializer(g_, out->name() + "/shape", *target));
      made.emplace_back(reshape, nullptr);
    }
    g_.RemoveNode(gather);
    for (auto& [node, value] : made) node->AddOutput(value ? value : out);
    return true;
  }

  Graph& g_;
  const int64_t opset_;
};

}  // namespace

Status RunGatherThroughTranspose(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  int n = GatherRewriter(*model.graph, model.OpsetOf("")).Run();
  if (n == 0) return Status::Ok();
  ctx.changed = true;
  PassContext dce;  // the Transposes and Squeezes whose Gathers all moved
  return RunDeadCodeElimination(model, dce);
}

}  // namespace kiln
