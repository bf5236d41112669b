// Patch convolutions as GEMMs (see patch_conv.h).
#include "passes/patch_conv.h"

#include <optional>
#include <string>
#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::IsConstant;

bool AllEqual(const std::optional<std::vector<int64_t>>& v, int64_t x) {
  if (!v) return true;
  for (int64_t e : *v)
    if (e != x) return false;
  return true;
}

// The patch size (p, q) when `conv` is a patch convolution we can rewrite.
bool PatchSize(const Node& conv, int64_t opset, int64_t* p, int64_t* q) {
  if (!passes::IsOnnxOp(&conv, "Conv") || conv.num_outputs() != 1 ||
      conv.num_inputs() < 2 || conv.num_inputs() > 3 || !conv.input(0) || !conv.input(1))
    return false;
  const Value* x = conv.input(0);
  const Value* w = conv.input(1);
  const Value* b = conv.input(2);
  if (!IsConstant(w) || w->data->rank() != 4 || (b && !IsConstant(b)) || (!b && opset < 11)) return false;
  if (!passes::IsArithmeticFloat(w->data->dtype()) || x->dtype() != w->data->dtype()) return false;
  const Shape& xs = x->shape();
  if (!xs.rank_known() || xs.rank() != 4) return false;
  for (size_t i = 1; i < 4; ++i)
    if (!xs[i].known()) return false;
  *p = w->data->dim(2);
  *q = w->data->dim(3);
  if (*p * *q <= 1 || xs[1].value() != w->data->dim(1) || xs[2].value() % *p != 0 || xs[3].value() % *q != 0)
    return false;
  if (passes::AttrInt(conv, "group", 1) != 1) return false;
  const Attribute* pad = conv.attr("auto_pad");
  if (pad && pad->s != "NOTSET" && pad->s != "VALID") return false;
  if (!AllEqual(passes::AttrInts(conv, "pads"), 0) || !AllEqual(passes::AttrInts(conv, "dilations"), 1)) return false;
  auto strides = passes::AttrInts(conv, "strides");
  auto kernel = passes::AttrInts(conv, "kernel_shape");
  if (!strides || *strides != std::vector<int64_t>{*p, *q}) return false;
  if (kernel && *kernel != std::vector<int64_t>{*p, *q}) return false;
  return true;
}

class PatchConvRewriter {
 public:
  PatchConvRewriter(Graph& g, int64_t opset) : g_(g), opset_(opset) {}

  int Run() {
    // Candidates first: a rewrite removes the Reshape/Transpose after its conv,
    // so the node list must not be walked while rewriting.
    struct Patch {
      Node* conv;
      int64_t p, q;
    };
    std::vector<Patch> patches;
    for (Node* n : g_.nodes()) {
      int64_t p = 0, q = 0;
      if (PatchSize(*n, opset_, &p, &q)) patches.push_back({n, p, q});
    }
    for (const Patch& c : patches) Rewrite(c.conv, c.p, c.q);
    return static_cast<int>(patches.size());
  }

 private:
  // Inserts `op`(inputs) before `before`, producing `out`.
  Node* Add(Node* before, const char* op, const std::string& name, std::vector<Value*> inputs, Value* out) {
    Node* n = g_.InsertNode(before, op, g_.UniqueName(name));
    for (Value* v : inputs) n->AddInput(v);
    n->AddOutput(out);
    return n;
  }

  Node* AddReshape(Node* before, const std::string& name, Value* in, const std::vector<int64_t>& shape, Value* out) {
    return Add(before, "Reshape", name, {in, passes::AddInt64Initializer(g_, name + "_shape", shape)}, out);
  }

  void Rewrite(Node* conv, int64_t p, int64_t q) {
    Value* x = conv->input(0);
    const Tensor& wt = *conv->input(1)->data;
    Value* b = conv->input(2);
    Value* y = conv->output(0);
    const DataType dt = x->dtype();
    const Dim n = x->shape()[0];
    const int64_t c = x->shape()[1].value(), oh = x->shape()[2].value() / p, ow = x->shape()[3].value() / q;
    const int64_t k = wt.dim(0), cols = c * p * q;
    const std::string base = conv->name.empty() ? y->name() : conv->name;
    // The flatten-and-transpose after patch embeddings, absorbed when present.
    Node* flat = nullptr;
    Node* trans = nullptr;
    FindFlattenTranspose(y, n, k, oh * ow, &flat, &trans);
    Node* at = trans ? trans : conv;  // new nodes go before this one, which then goes

    Value* x6 = passes::NewTensorValue(g_, base + "/patches6", dt, Shape({n, c, oh, p, ow, q}));
    AddReshape(at, base + "/split", x, {-1, c, oh, p, ow, q}, x6);
    Value* xt = passes::NewTensorValue(g_, base + "/patches_t", dt, Shape({n, oh, ow, c, p, q}));
    Node* t = Add(at, "Transpose", base + "/gather_patches", {x6}, xt);
    t->attrs["perm"] = Attribute::FromInts({0, 2, 4, 1, 3, 5});
    const Dim rows = n * Dim(oh * ow);
    Value* a = passes::NewTensorValue(g_, base + "/patch_rows", dt, Shape({rows, cols}));
    AddReshape(at, base + "/rows", xt, {-1, cols}, a);
    Value* wm = passes::AddInitializer(g_, base + "/weight_rows", wt.Reshaped({k, cols}));
    Value* prod = passes::NewTensorValue(g_, base + "/patch_gemm", dt, Shape({rows, k}));
    std::vector<Value*> gemm_in = {a, wm};
    if (b) gemm_in.push_back(b);
    Node* gemm = Add(at, "Gemm", base, gemm_in, prod);
    gemm->attrs["transB"] = Attribute::FromInt(1);
    if (trans) {
      AddReshape(at, base + "/tokens", prod, {-1, oh * ow, k}, trans->output(0));
      g_.RemoveNode(trans);
      g_.RemoveNode(flat);
      g_.RemoveNode(conv);
      return;
    }
    Value* nhwc = passes::NewTensorValue(g_, base + "/patch_nhwc", dt, Shape({n, oh, ow, k}));
    AddReshape(at, base + "/unflatten", prod, {-1, oh, ow, k}, nhwc);
    g_.RemoveNode(conv);  // frees y for the Transpose below
    Node* back = Add(NextAfter(gemm, 1), "Transpose", base + "/to_nchw", {nhwc}, y);
    back->attrs["perm"] = Attribute::FromInts({0, 3, 1, 2});
  }

  // y → Reshape([N, K, L]) → Transpose([0, 2, 1]), with single uses and no
  // graph outputs in between.
  void FindFlattenTranspose(Value* y, const Dim& n, int64_t k, int64_t l, Node** flat, Node** trans) {
    if (!passes::HasSingleUse(g_, y)) return;
    Node* r = y->uses()[0];
    if (r->graph() != &g_ || r->op_type != "Reshape" || r->num_outputs() != 1 || !r->output(0)) return;
    const Shape& rs = r->output(0)->shape();
    if (!rs.rank_known() || rs.rank() != 3 || !passes::SameDims(Shape({rs[0]}), Shape({n})) || !rs[1].known() ||
        rs[1].value() != k || !rs[2].known() || rs[2].value() != l)
      return;
    if (!passes::HasSingleUse(g_, r->output(0))) return;
    Node* t = r->output(0)->uses()[0];
    if (t->graph() != &g_ || t->op_type != "Transpose" || passes::AttrInts(*t, "perm") != std::vector<int64_t>{0, 2, 1})
      return;
    *flat = r;
    *trans = t;
  }

  // The node `steps` places after n in schedule order (nullptr: the end).
  Node* NextAfter(const Node* n, size_t steps) const {
    const std::vector<Node*> nodes = g_.nodes();
    for (size_t i = 0; i < nodes.size(); ++i)
      if (nodes[i] == n) return i + 1 + steps < nodes.size() ? nodes[i + 1 + steps] : nullptr;
    return nullptr;
  }

  Graph& g_;
  const int64_t opset_;
};

}  // namespace

Status RunPatchConvToGemm(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  int n = PatchConvRewriter(*model.graph, model.OpsetOf("")).Run();
  if (n == 0) return Status::Ok();
  model.graph->RemoveUnusedValues();
  ctx.changed = true;
  return Status::Ok();
}

}  // namespace kiln
