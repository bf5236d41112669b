// SE gates into the projection's weights, per sample (see gate_into_projection.h).
#include "passes/gate_into_projection.h"

#include <string>
#include <vector>

#include "ops/shape_util.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

// A channels-last 1x1 projection (group 1, stride 1, no padding) by constant weights [K,1,1,C], activation ""
// or Relu (the product's epilogues), Z optional.
bool IsProjection(const Node* p) {
  if (!passes::IsKilnOp(p, "FusedConvNhwc") || p->num_outputs() != 1 || p->num_inputs() < 2 || !p->input(1))
    return false;
  const std::string act = passes::AttrString(*p, "activation", "");
  if ((act != "" && act != "Relu") || passes::AttrInt(*p, "residual_after_activation", 0) != 0 ||
      !passes::HasUnitConvGeometry(*p))
    return false;
  const Value* w = p->input(1);
  return passes::IsConstant(w) && w->data->rank() == 4 && w->data->dim(1) == 1 && w->data->dim(2) == 1;
}

constexpr int64_t kMinSavedBytes = int64_t{8} << 20;

// The value of dim `d` at build time: known, or its opt in the profile of a graph input that has it.
int64_t BuildValue(const Graph& g, const Dim& d, const std::map<std::string, ShapeRange>& profiles) {
  if (d.known()) return d.value();
  for (const Value* in : g.inputs) {
    auto it = profiles.find(in->name());
    if (!d.symbolic() || it == profiles.end() || !in->shape().rank_known()) continue;
    for (int i = 0; i < in->shape().rank() && static_cast<size_t>(i) < it->second.opt.size(); ++i)
      if (in->shape()[i] == d) return it->second.opt[static_cast<size_t>(i)];
  }
  return 1;
}

bool Fold(Graph& g, Node* proj, const std::map<std::string, ShapeRange>& profiles) {
  if (!IsProjection(proj)) return false;
  Node* gate = passes::SoleProducer(g, proj->input(0));
  if (!passes::IsKilnOp(gate, "GateMulNhwc") || gate->num_inputs() < 3 || gate->num_outputs() != 1)
    return false;
  Value* x = gate->input(0);
  const Shape& xs = x->shape();
  const Tensor& wp = *proj->input(1)->data;
  const int64_t k = wp.dim(0), c = wp.dim(3);
  if (!passes::HasRank(x, 4) || !xs[1].known() || !xs[2].known() || !xs[3].known() || xs[3].value() != c)
    return false;
  const int64_t pixels = xs[1].value() * xs[2].value();
  const DataType dt = x->dtype();
  if (wp.dtype() != dt || proj->output(0)->dtype() != dt) return false;
  const int64_t samples = BuildValue(g, xs[0], profiles), es = static_cast<int64_t>(ElementSize(dt));
  if (2 * samples * (pixels - k) * c * es < kMinSavedBytes) return false;
  Value* z = proj->num_inputs() > 3 ? proj->input(3) : nullptr;
  Value* bias = proj->num_inputs() > 2 ? proj->input(2) : nullptr;
  const std::string base = proj->name + "/gated";
  // The gate [N,1,1,C], as GateMulNhwc computes it (its attributes are the gate convolution's).
  std::vector<Value*> gate_in = {gate->input(1), gate->input(2)};
  if (gate->num_inputs() > 3 && gate->input(3)) gate_in.push_back(gate->input(3));
  Value* gv = passes::InsertOp(g, proj, "FusedConvNhwc", base + "_gate", gate_in, dt,
                               Shape({xs[0], Dim(1), Dim(1), Dim(c)}));
  gv->producer()->domain = "kiln";
  gv->producer()->attrs = gate->attrs;
  Value* column = passes::InsertOp(g, proj, "Reshape", base + "_column",
                                   {gv, passes::AddInt64Initializer(g, base + "_column_shape", {0, c, 1})},
                                   dt, Shape({xs[0], Dim(c), Dim(1)}));
  // Wpᵀ [C, K] (Wp [K,1,1,C] viewed as [K, C]).
  Tensor wt = shape_ops::PermuteCopy(wp, {k, c}, {1, 0});
  Value* weights = passes::InsertOp(g, proj, "Mul", base + "_weights",
                                    {column, passes::AddInitializer(g, base + "_wt", std::move(wt))}, dt,
                                    Shape({xs[0], Dim(c), Dim(k)}));
  Value* rows = passes::InsertOp(g, proj, "Reshape", base + "_rows",
                                 {x, passes::AddInt64Initializer(g, base + "_rows_shape", {0, pixels, c})},
                                 dt, Shape({xs[0], Dim(pixels), Dim(c)}));
  std::vector<Value*> mm_in = {rows, weights, bias};
  if (z)
    mm_in.push_back(
        passes::InsertOp(g, proj, "Reshape", base + "_residual",
                         {z, passes::AddInt64Initializer(g, base + "_residual_shape", {0, pixels, k})}, dt,
                         Shape({xs[0], Dim(pixels), Dim(k)})));
  Value* product =
      passes::InsertOp(g, proj, "FusedMatMul", base, mm_in, dt, Shape({xs[0], Dim(pixels), Dim(k)}));
  product->producer()->domain = "kiln";
  product->producer()->attrs["activation"] =
      Attribute::FromString(passes::AttrString(*proj, "activation", ""));
  Node* back = g.InsertNode(proj, "Reshape", g.UniqueName(base + "_map"));
  back->AddInput(product);
  back->AddInput(passes::AddInt64Initializer(g, base + "_map_shape", {0, xs[1].value(), xs[2].value(), k}));
  Value* out = proj->output(0);
  g.RemoveNode(proj);
  g.RemoveNode(gate);
  back->AddOutput(out);
  return true;
}

}  // namespace

Status RunGateIntoProjection(Model& model, PassContext& ctx,
                             const std::map<std::string, ShapeRange>& profiles) {
  return passes::RewriteEachNode(model, ctx, [&](Graph& g, Node* n) { return Fold(g, n, profiles); });
}

}  // namespace kiln
