// ScatterND over every position of its data → its updates (see scatter_nd_grid.h).
#include "passes/scatter_nd_grid.h"

#include <optional>
#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

constexpr int kZero = -1;  // a component that is 0 everywhere (the coordinate along an axis of extent 1)

bool IsConstInt(const Value* v, int64_t want) {
  std::optional<std::vector<int64_t>> c = passes::ConstInts(v);
  return c && c->size() == 1 && (*c)[0] == want;
}

// The grid axis along which `v`, broadcast (right-aligned) to a grid of `rank` axes, is arange(0, n): the
// axis index, kZero for a constant 0, nothing otherwise.
std::optional<int> ArangeAxis(const Value* v, int rank) {
  const Shape& s = v->shape();
  if (!s.rank_known() || s.rank() > rank) return std::nullopt;
  const int offset = rank - static_cast<int>(s.rank());
  std::optional<int> axis;  // the one axis not known to be 1
  for (int i = 0; i < s.rank(); ++i) {
    const Dim& d = s[static_cast<size_t>(i)];
    if (passes::IsKnownOne(d)) continue;
    if (axis) return std::nullopt;
    axis = i + offset;
  }
  if (std::optional<std::vector<int64_t>> c = passes::ConstInts(v)) {
    for (size_t i = 0; i < c->size(); ++i)
      if ((*c)[i] != static_cast<int64_t>(i)) return std::nullopt;
    return axis ? *axis : kZero;
  }
  // Range(0, n, 1), alone or reshaped onto one axis.
  const Node* p = v->producer();
  if (p && (passes::IsOnnxOp(p, "Reshape") || passes::IsOnnxOp(p, "Unsqueeze")) && p->num_inputs() >= 1)
    p = p->input(0)->producer();
  if (!axis || !passes::IsOnnxOp(p, "Range") || p->num_inputs() != 3 || !IsConstInt(p->input(0), 0) ||
      !IsConstInt(p->input(2), 1))
    return std::nullopt;
  return axis;
}

// The value `c` is Unsqueeze(x, last axis) of a grid of `rank` axes: x, else nullptr.
Value* UnsqueezedLast(const Value* c, int rank, int64_t opset) {
  const Node* u = c->producer();
  if (!passes::IsOnnxOp(u, "Unsqueeze") || u->num_inputs() < 1) return nullptr;
  std::optional<std::vector<int64_t>> axes = passes::NodeAxes(*u, opset, 13, 1);
  if (!axes || axes->size() != 1 || ((*axes)[0] != -1 && (*axes)[0] != rank)) return nullptr;
  return u->input(0);
}

// Whether ScatterND node `n` writes every position of its data from its updates.
bool CoversData(const Node& n, int64_t opset) {
  if (n.num_inputs() != 3 || passes::AttrString(n, "reduction", "none") != "none") return false;
  const Value* data = n.input(0);
  const Value* indices = n.input(1);
  const Value* updates = n.input(2);
  if (!data || !indices || !updates || !passes::SameDims(data->shape(), updates->shape())) return false;
  const Shape& is = indices->shape();
  if (!is.rank_known() || is.rank() < 2 || !is[static_cast<size_t>(is.rank() - 1)].known()) return false;
  const int grid = static_cast<int>(is.rank()) - 1;
  const int64_t r = is[static_cast<size_t>(grid)].value();
  const Shape& ds = data->shape();
  if (r != grid || r > ds.rank()) return false;  // one index tuple per position of data's first r axes
  for (int k = 0; k < grid; ++k)
    if (!passes::SameDim(is[static_cast<size_t>(k)], ds[static_cast<size_t>(k)])) return false;
  const Node* cat = indices->producer();
  if (!passes::IsOnnxOp(cat, "Concat") || cat->num_inputs() != static_cast<size_t>(r)) return false;
  const int64_t axis = passes::AttrInt(*cat, "axis", 0);
  if (axis != -1 && axis != grid) return false;
  for (int k = 0; k < r; ++k) {
    Value* e = UnsqueezedLast(cat->input(static_cast<size_t>(k)), grid, opset);
    if (!e || !passes::SameDims(e->shape(), Shape(std::vector<Dim>(is.dims().begin(), is.dims().end() - 1))))
      return false;
    const Node* expand = e->producer();
    const Value* source = passes::IsOnnxOp(expand, "Expand") ? expand->input(0) : e;
    std::optional<int> along = ArangeAxis(source, grid);
    const Dim& extent = is[static_cast<size_t>(k)];
    if (!along) return false;
    if (*along == kZero) {
      if (!passes::IsKnownOne(extent)) return false;
      continue;
    }
    // The arange itself spans the grid's axis (not a length-1 one broadcast along it).
    const Shape& ss = source->shape();
    const int at = k - (grid - static_cast<int>(ss.rank()));
    if (*along != k || at < 0 || !passes::SameDim(ss[static_cast<size_t>(at)], extent)) return false;
  }
  return true;
}

}  // namespace

Status RunScatterNdGrid(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  const int64_t opset = model.OpsetOf("");
  if (opset < 11) return Status::Ok();  // ScatterND
  passes::ForEachGraph(*model.graph, [&](Graph& g) {
    std::vector<Node*> covering;
    for (Node* n : g.nodes())
      if (passes::IsOnnxOp(n, "ScatterND") && n->num_outputs() == 1 && CoversData(*n, opset))
        covering.push_back(n);
    for (Node* n : covering)
      if (passes::BypassNode(n, n->output(0), n->input(2))) ctx.changed = true;
  });
  return Status::Ok();
}

}  // namespace kiln
