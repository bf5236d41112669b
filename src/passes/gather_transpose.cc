// Gathers through Transposes (see gather_transpose.h).
#include "passes/gather_transpose.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "passes/dce.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::IsConstant;
using passes::IsOnnxOp;

class GatherRewriter {
 public:
  GatherRewriter(Graph& g, int64_t opset) : g_(g), opset_(opset) {}

  int Run() {
    std::vector<Node*> gathers;
    for (Node* n : g_.nodes())
      if (IsOnnxOp(n, "Gather") && n->num_inputs() == 2 && n->num_outputs() == 1 && n->input(0) &&
          n->input(1) && n->output(0))
        gathers.push_back(n);
    int count = 0;
    for (Node* n : gathers) count += Rewrite(n) ? 1 : 0;  // removes only the Gather it rewrites
    return count;
  }

 private:
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
    std::vector<int64_t> perm(static_cast<size_t>(rank));
    if (auto p = passes::AttrInts(*transpose, "perm")) {
      perm = *p;
    } else {
      for (int i = 0; i < rank; ++i) perm[static_cast<size_t>(i)] = rank - 1 - i;  // the default: reversed
    }
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
    // What is left must keep Y's order, size-1 axes aside.
    int64_t last = -1;
    for (size_t k = 0; k < kept.size(); ++k) {
      if (static_cast<int64_t>(k) == axis) continue;
      const int64_t ya = perm[static_cast<size_t>(kept[k])];
      const Dim& d = ys[static_cast<size_t>(ya)];
      if (d.known() && d.value() == 1) continue;
      if (ya < last) return false;
      last = ya;
    }
    // The Reshape's target: the old result's shape, one unknown dim at most.
    std::vector<int64_t> target;
    int unknown = 0;
    for (const Dim& d : os.dims()) {
      target.push_back(d.known() ? d.value() : -1);
      unknown += d.known() ? 0 : 1;
    }
    if (unknown > 1) return false;
    std::vector<Dim> gathered;
    for (int i = 0; i < rank; ++i)
      if (i != y_axis) gathered.push_back(ys[static_cast<size_t>(i)]);
    Value* g = passes::NewTensorValue(g_, out->name() + "/gathered", out->dtype(), Shape(gathered));
    Node* ng = g_.InsertNode(gather, "Gather", g_.UniqueName(gather->name));
    ng->attrs["axis"] = Attribute::FromInt(y_axis);
    ng->AddInput(y);
    ng->AddInput(index);
    ng->AddOutput(g);
    Node* reshape = g_.InsertNode(gather, "Reshape", g_.UniqueName(gather->name + "/reshape"));
    reshape->AddInput(g);
    reshape->AddInput(passes::AddInt64Initializer(g_, out->name() + "/shape", target));
    g_.RemoveNode(gather);
    reshape->AddOutput(out);
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
