// Build pass: Gemms on flattened tokens as MatMuls on the tokens (see flat_gemm.h).
#include "passes/flat_gemm.h"

#include <optional>
#include <string>
#include <vector>

#include "ops/shape_util.h"
#include "passes/dce.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::IsConstant;
using passes::IsOnnxOp;

// The view's input when v = Reshape(x) [M, K] is read only by `reader` and x has rank >= 3; else nullptr.
Value* Unflattened(Graph& g, Value* v, const Node* reader) {
  Node* r = v->producer();
  if (!IsOnnxOp(r, "Reshape") || r->num_outputs() != 1 || !r->input(0) || v->uses().size() != 1 ||
      v->uses()[0] != reader || passes::IsAnyGraphOutput(g, v))
    return nullptr;
  Value* x = r->input(0);
  const Shape& xs = x->shape();
  const Shape& vs = v->shape();
  if (!xs.rank_known() || xs.rank() < 3 || !vs.rank_known() || vs.rank() != 2 || !vs[1].known() ||
      x->dtype() != v->dtype())
    return nullptr;
  return x;
}

// x [lead..., K] for the product whose output z is [lead..., N]: x itself when its dims are that, else a view
// Reshape(x, [0, ..., 0, K]) when x starts with z's leading dims (the attention's [B, S, H, D] output before
// a projection of H·D); nullptr otherwise.
Value* TokensOf(Graph& g, Node* at, Value* x, const Shape& zs, int64_t k) {
  const Shape& xs = x->shape();
  const int lead = zs.rank() - 1;
  if (xs.rank() < zs.rank()) return nullptr;
  for (int i = 0; i < lead; ++i)
    if (!passes::SameDim(xs[static_cast<size_t>(i)], zs[static_cast<size_t>(i)])) return nullptr;
  if (xs.rank() == zs.rank()) return xs.dims().back() == Dim(k) ? x : nullptr;
  std::vector<int64_t> target(static_cast<size_t>(lead), 0);
  target.push_back(k);
  std::vector<Dim> dims(zs.dims().begin(), zs.dims().end() - 1);
  dims.push_back(Dim(k));
  Value* view = passes::NewTensorValue(g, x->name() + "/tokens", x->dtype(), Shape(dims));
  Node* r = g.InsertNode(at, "Reshape", g.UniqueName(x->name() + "/tokens"));
  r->AddInput(x);
  r->AddInput(passes::AddInt64Initializer(g, x->name() + "/tokens_shape", target));
  r->AddOutput(view);
  return view;
}

// C as a vector of N values or a scalar (one value broadcast): [N], [1, N], [1], [1, 1] or []; nullopt else.
std::optional<Tensor> BiasVector(const Value* c, int64_t n) {
  if (!IsConstant(c)) return std::nullopt;
  const Tensor& t = *c->data;
  if (t.rank() > 2 || (t.rank() == 2 && t.dims()[0] != 1)) return std::nullopt;
  if (t.numel() != n && t.numel() != 1) return std::nullopt;
  return t.Reshaped(t.numel() == 1 ? std::vector<int64_t>{} : std::vector<int64_t>{n});
}

bool Rewrite(Graph& g, Node* gemm) {
  if (gemm->num_outputs() != 1 || gemm->num_inputs() < 2 || gemm->num_inputs() > 3 || !gemm->input(0) ||
      !gemm->input(1) || passes::AttrInt(*gemm, "transA", 0) != 0)
    return false;
  Value* b = gemm->input(1);
  Value* c = gemm->num_inputs() == 3 ? gemm->input(2) : nullptr;
  Value* y = gemm->output(0);
  if (!IsConstant(b) || b->data->rank() != 2 || !passes::IsArithmeticFloat(y->dtype()) ||
      b->dtype() != y->dtype())
    return false;
  const bool trans_b = passes::AttrInt(*gemm, "transB", 0) != 0;
  const int64_t n = b->data->dims()[trans_b ? 0 : 1];
  Value* x = Unflattened(g, gemm->input(0), gemm);
  if (!x || y->uses().size() != 1 || passes::IsAnyGraphOutput(g, y)) return false;
  Node* back = y->uses()[0];
  if (!IsOnnxOp(back, "Reshape") || back->input(0) != y || back->num_outputs() != 1) return false;
  Value* z = back->output(0);
  const Shape& zs = z->shape();
  const int64_t k = b->data->dims()[trans_b ? 1 : 0];
  if (!zs.rank_known() || zs.rank() < 3 || !(zs.dims().back() == Dim(n)) ||
      !(gemm->input(0)->shape()[1] == Dim(k)))
    return false;
  std::optional<Tensor> bias;
  if (c) {
    bias = BiasVector(c, n);
    if (!bias || c->dtype() != y->dtype() || passes::AttrFloat(*gemm, "beta", 1.f) != 1.f) return false;
  }
  Value* tokens = TokensOf(g, back, x, zs, k);  // the last check: it makes the view when one is needed
  if (!tokens) return false;
  // B' = alpha · (transB ? Bᵀ : B), [K, N].
  Tensor w = trans_b ? shape_ops::PermuteCopy(*b->data, b->data->dims(), {1, 0}) : *b->data;
  const float alpha = passes::AttrFloat(*gemm, "alpha", 1.f);
  if (alpha != 1.f) {
    std::vector<double> scaled = passes::ToDoubles(w);
    for (double& s : scaled) s *= alpha;
    w = passes::FromDoubles(w.dtype(), w.dims(), scaled);
  }
  Value* weight = trans_b || alpha != 1.f ? passes::AddInitializer(g, b->name() + "_kn", std::move(w)) : b;
  const std::string name = gemm->name;
  Node* mm = g.InsertNode(back, "MatMul", name);
  mm->AddInput(tokens);
  mm->AddInput(weight);
  Node* add = nullptr;
  if (bias) {
    Value* product = passes::NewTensorValue(g, z->name() + "/product", z->dtype(), zs);
    mm->AddOutput(product);
    add = g.InsertNode(back, "Add", g.UniqueName(name + "/bias"));
    add->AddInput(product);
    add->AddInput(passes::AddInitializer(g, c->name() + "_n", std::move(*bias)));
  }
  g.RemoveNode(back);
  g.RemoveNode(gemm);
  (add ? add : mm)->AddOutput(z);
  return true;
}

}  // namespace

Status RunFlatGemm(Model& model, PassContext& ctx) {
  if (!model.graph) return Status::Ok();
  Graph& g = *model.graph;
  std::vector<Node*> gemms;  // first: a rewrite removes nodes after its Gemm (the Reshape back)
  for (Node* n : g.nodes())
    if (IsOnnxOp(n, "Gemm")) gemms.push_back(n);
  int count = 0;
  for (Node* n : gemms) count += Rewrite(g, n) ? 1 : 0;
  if (count == 0) return Status::Ok();
  ctx.changed = true;
  g.RemoveUnusedValues();
  PassContext dce;  // the flattening Reshapes and their shape arithmetic
  return RunDeadCodeElimination(model, dce);
}

}  // namespace kiln
