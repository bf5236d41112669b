// Channel shuffles of Concats as interleaving Concats (see interleave_concat.h).
#include "passes/interleave_concat.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "build/codegen/pointwise_ops.h"
#include "build/codegen/pointwise_view.h"
#include "ops/slice_bounds.h"
#include "passes/layout_chains.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

// A channel shuffle of a Concat: its output S = the Reshape `merge`, the shuffled axis a, G operands of
// extent m there.
struct Shuffle {
  Node* merge = nullptr;
  Node* transpose = nullptr;
  Node* split = nullptr;
  Node* concat = nullptr;
  int axis = 0;
  int64_t groups = 0, extent = 0;
};

// Every dim of a rank-r value after `axis` is known (the new Reshapes write them out).
bool KnownAfter(const Shape& s, int axis) {
  for (int d = axis + 1; d < s.rank(); ++d)
    if (!s[d].known()) return false;
  return true;
}

std::optional<Shuffle> MatchShuffle(Graph& g, Node* merge) {
  if (!passes::IsOnnxOp(merge, "Reshape") || merge->num_inputs() != 2 || merge->num_outputs() != 1) return {};
  Shuffle s;
  s.merge = merge;
  s.transpose = passes::SoleProducer(g, merge->input(0));
  if (!passes::IsOnnxOp(s.transpose, "Transpose")) return {};
  s.split = passes::SoleProducer(g, s.transpose->input(0));
  if (!passes::IsOnnxOp(s.split, "Reshape") || s.split->num_inputs() != 2) return {};
  s.concat = passes::SoleProducer(g, s.split->input(0));
  if (!passes::IsOnnxOp(s.concat, "Concat") || s.concat->num_inputs() < 2 || s.concat->num_outputs() != 1)
    return {};
  // Float or bool: the interleaving Concats must be kernels fuse_pointwise can generate
  // (codegen::ConcatBranches), else they would be more copies than the shuffle.
  const DataType dt = s.concat->output(0)->dtype();
  if (!codegen::IsPointwiseFloat(dt) && dt != DataType::kBool) return {};
  const Shape& cat = s.concat->output(0)->shape();
  const Shape& grouped = s.split->output(0)->shape();
  if (!cat.rank_known() || !grouped.rank_known() || grouped.rank() != cat.rank() + 1 ||
      !passes::SameDims(merge->output(0)->shape(), cat))
    return {};
  const int64_t rank = cat.rank();
  int64_t axis = passes::AttrInt(*s.concat, "axis", 0);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return {};
  s.axis = static_cast<int>(axis);
  const int a = s.axis;
  // [.., C, ..] → [.., G, m, ..], each operand one group.
  if (!grouped[a].known() || !grouped[a + 1].known() || !KnownAfter(cat, a)) return {};
  s.groups = grouped[a].value();
  s.extent = grouped[a + 1].value();
  if (static_cast<int64_t>(s.concat->num_inputs()) != s.groups || !cat[a].known() ||
      cat[a].value() != s.groups * s.extent)
    return {};
  for (int d = 0; d < rank; ++d)
    if (d != a && !passes::SameDim(grouped[d < a ? d : d + 1], cat[d])) return {};
  for (const Value* x : s.concat->inputs()) {
    if (!x || !x->shape().rank_known() || x->shape().rank() != rank || !x->shape()[a].known() ||
        x->shape()[a].value() != s.extent)
      return {};
  }
  // The Transpose swaps the two split axes and nothing else.
  const std::vector<int64_t> perm = passes::TransposePermOf(*s.transpose, rank + 1);
  for (int64_t d = 0; d <= rank; ++d)
    if (perm[d] != (d == a ? a + 1 : d == a + 1 ? a : d)) return {};
  return s;
}

// The channel range [start, end) along the shuffled axis of each output of a Slice or Split reading S
// (bounds multiples of G), or nothing when `user` reads S some other way.
std::optional<std::vector<std::pair<int64_t, int64_t>>> Ranges(const Node& user, const Shuffle& s,
                                                               int64_t opset) {
  const int64_t channels = s.groups * s.extent;
  std::vector<std::pair<int64_t, int64_t>> ranges;
  if (user.op_type == "Slice" && user.domain.empty()) {
    PwViewOp op;
    if (user.input(0) != s.merge->output(0) || !codegen::ViewOpOf(user, opset, &op) || op.axes.size() != 1 ||
        op.axes[0] != s.axis || op.steps[0] != 1)
      return {};
    int64_t first = 0, count = 0;
    ClampSlice(channels, op.starts[0], op.ends[0], 1, &first, &count);
    ranges.emplace_back(first, first + count);
  } else if (user.op_type == "Split" && user.domain.empty() && user.input(0) == s.merge->output(0)) {
    const int64_t rank = s.merge->output(0)->shape().rank();
    int64_t axis = passes::AttrInt(user, "axis", 0);
    if (axis < 0) axis += rank;
    if (axis != s.axis) return {};
    std::vector<int64_t> sizes;
    if (user.num_inputs() > 1 && user.input(1)) {
      std::optional<std::vector<int64_t>> given = passes::ConstInts(user.input(1));
      if (!given) return {};
      sizes = *given;
    } else {
      const int64_t parts = static_cast<int64_t>(user.num_outputs());
      if (parts == 0 || channels % parts != 0) return {};
      sizes.assign(static_cast<size_t>(parts), channels / parts);
    }
    if (sizes.size() != user.num_outputs()) return {};
    for (const Value* out : user.outputs())
      if (!out) return {};
    int64_t at = 0;
    for (int64_t n : sizes) {
      if (n < 0) return {};
      ranges.emplace_back(at, at + n);
      at += n;
    }
    if (at != channels) return {};
  } else {
    return {};
  }
  for (const auto& [start, end] : ranges)
    if (start % s.groups != 0 || end % s.groups != 0 || end <= start) return {};
  return ranges;
}

class Interleave {
 public:
  Interleave(Graph& g, const Shuffle& s) : g_(g), s_(s), dt_(s.concat->output(0)->dtype()) {}

  // Rewrites S's Slices and Splits, then S itself where something else reads it.
  void Run(int64_t opset) {
    std::vector<Node*> users;
    for (Node* u : s_.merge->output(0)->uses())  // (a subgraph's reader reads the whole interleave)
      if (u->graph() == &g_ && std::find(users.begin(), users.end(), u) == users.end()) users.push_back(u);
    for (Node* u : users) {
      std::optional<std::vector<std::pair<int64_t, int64_t>>> ranges = Ranges(*u, s_, opset);
      if (!ranges) continue;
      std::vector<Value*> made;
      for (size_t k = 0; k < ranges->size(); ++k)
        made.push_back(Build(u, (*ranges)[k].first, (*ranges)[k].second, u->output(k)->shape()));
      Replace(u, made);
    }
    // The shuffle itself, where something else reads it; then the chain is unused.
    Value* shuffled = s_.merge->output(0);
    if (!shuffled->uses().empty() || passes::IsAnyGraphOutput(g_, shuffled))
      Replace(s_.merge, {Build(s_.merge, 0, s_.groups * s_.extent, shuffled->shape())});
    else
      g_.RemoveNode(s_.merge);
    for (Node* n : {s_.transpose, s_.split, s_.concat}) g_.RemoveNode(n);
  }

 private:
  // A Reshape shape: dims before the axis copied (0), `at` from `dims` on.
  Value* ShapeOf(const std::vector<int64_t>& at_axis) {
    std::vector<int64_t> shape(static_cast<size_t>(s_.axis), 0);
    shape.insert(shape.end(), at_axis.begin(), at_axis.end());
    const Shape& cat = s_.concat->output(0)->shape();
    for (int d = s_.axis + 1; d < cat.rank(); ++d) shape.push_back(cat[d].value());
    return passes::AddInt64Initializer(g_, s_.concat->name + "/interleave_shape", shape);
  }
  Shape DimsWith(const Shape& base, const std::vector<Dim>& at_axis) const {
    std::vector<Dim> dims(base.dims().begin(), base.dims().begin() + s_.axis);
    dims.insert(dims.end(), at_axis.begin(), at_axis.end());
    dims.insert(dims.end(), base.dims().begin() + s_.axis + 1, base.dims().end());
    return Shape(dims);
  }

  // Channels [start, end) of S, before `before`: Reshape(Concat(Slice(X_j as [.., m, 1, ..]), axis a + 1)).
  Value* Build(Node* before, int64_t start, int64_t end, const Shape& out) {
    const int64_t g = s_.groups, lo = start / g, hi = end / g;
    const std::string base = s_.concat->name + "/interleave";
    std::vector<Value*> parts;
    for (size_t j = 0; j < s_.concat->num_inputs(); ++j) {
      Value* x = s_.concat->input(j);
      // X_j as [.., m, 1, ..], made once, before the shuffle (every reader comes after it).
      if (columns_.size() <= j) {
        const Shape split = DimsWith(x->shape(), {Dim(s_.extent), Dim(1)});
        columns_.push_back(
            passes::InsertOp(g_, s_.concat, "Reshape", base, {x, ShapeOf({s_.extent, 1})}, dt_, split));
      }
      Value* column = columns_[j];
      if (lo != 0 || hi != s_.extent)
        column = passes::InsertOp(g_, before, "Slice", base,
                                  {column, passes::AddInt64Initializer(g_, base + "_starts", {lo}),
                                   passes::AddInt64Initializer(g_, base + "_ends", {hi}),
                                   passes::AddInt64Initializer(g_, base + "_axes", {s_.axis})},
                                  dt_, DimsWith(x->shape(), {Dim(hi - lo), Dim(1)}));
      parts.push_back(column);
    }
    Value* cat = passes::InsertOp(g_, before, "Concat", base, parts, dt_,
                                  DimsWith(s_.concat->output(0)->shape(), {Dim(hi - lo), Dim(g)}));
    cat->producer()->attrs["axis"] = Attribute::FromInt(s_.axis + 1);
    return passes::InsertOp(g_, before, "Reshape", base, {cat, ShapeOf({end - start})}, dt_, out);
  }

  // `old`'s outputs are now made by the producers of `made` (names and graph outputs kept).
  void Replace(Node* old, const std::vector<Value*>& made) {
    std::vector<Value*> outs(old->outputs().begin(), old->outputs().end());
    g_.RemoveNode(old);
    for (size_t k = 0; k < made.size(); ++k) made[k]->producer()->SetOutput(0, outs[k]);
  }

  Graph& g_;
  Shuffle s_;
  DataType dt_;
  std::vector<Value*> columns_;  // the operands as [.., m, 1, ..]
};

}  // namespace

Status RunInterleaveConcat(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  const int64_t opset = model.OpsetOf("");
  if (opset < 13) return Status::Ok();
  Graph& g = *model.graph;
  std::vector<Shuffle> found;
  for (Node* n : g.nodes())
    if (std::optional<Shuffle> s = MatchShuffle(g, n)) found.push_back(*s);
  for (const Shuffle& s : found) Interleave(g, s).Run(opset);
  if (found.empty()) return Status::Ok();
  KILN_RETURN_IF_ERROR(g.TopologicalSort());
  g.RemoveUnusedValues();
  ctx.changed = true;
  return Status::Ok();
}

}  // namespace kiln
