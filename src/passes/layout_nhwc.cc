// Channels-last layout for the CUDA engine (see layout_nhwc.h).
#include "passes/layout_nhwc.h"

#include <string>
#include <unordered_map>
#include <vector>

#include "ops/shape_util.h"
#include "passes/dce.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

const std::vector<int64_t> kToNhwc = {0, 2, 3, 1};
const std::vector<int64_t> kToNchw = {0, 3, 1, 2};

bool IsDefaultDomain(const Node& n) { return n.domain.empty() || n.domain == "ai.onnx"; }

bool IsRank4(const Value* v) { return v && v->shape().rank_known() && v->shape().rank() == 4; }

Shape Permuted(const Shape& s, const std::vector<int64_t>& perm) {
  std::vector<Dim> d;
  for (int64_t p : perm) d.push_back(s[static_cast<size_t>(p)]);
  return Shape(d);
}

bool IsUnaryElementwise(const Node& n) {
  static const char* kOps[] = {"Relu",  "Sigmoid", "Tanh",     "Clip",     "HardSwish", "HardSigmoid", "LeakyRelu",
                               "Elu",   "Exp",     "Neg",      "Abs",      "Erf",       "Sqrt",        "Gelu",
                               "Softplus", "Mish", "Selu",     "Softsign", "Reciprocal", "Cast"};
  if (!IsDefaultDomain(n)) return false;
  for (const char* op : kOps)
    if (n.op_type == op) return true;
  return false;
}

bool IsBinaryElementwise(const Node& n) {
  static const char* kOps[] = {"Add", "Sub", "Mul", "Div", "Max", "Min", "PRelu", "Pow"};
  if (!IsDefaultDomain(n) || n.num_inputs() != 2) return false;
  for (const char* op : kOps)
    if (n.op_type == op) return true;
  return false;
}

bool IsPool(const Node& n) {
  if (!IsDefaultDomain(n)) return false;
  if (n.op_type == "MaxPool") return n.num_outputs() == 1 || !n.output(1);
  return n.op_type == "AveragePool" || n.op_type == "GlobalAveragePool" || n.op_type == "GlobalMaxPool";
}

bool IsConvType(DataType dt) {
  return dt == DataType::kFloat || dt == DataType::kFloat16 || dt == DataType::kBFloat16;
}

// Conv or kiln.FusedConv with 2 spatial dims and constant 4-D weights.
bool IsConvertibleConv(const Node& n) {
  bool conv = IsDefaultDomain(n) && n.op_type == "Conv";
  bool fused = n.domain == "kiln" && n.op_type == "FusedConv";
  if (!conv && !fused) return false;
  if (n.num_outputs() != 1 || !IsRank4(n.output(0)) || !IsRank4(n.input(0))) return false;
  const Value* w = n.input(1);
  return w && passes::IsConstant(w) && w->data->rank() == 4 && IsConvType(n.output(0)->dtype());
}

class ChannelsLast {
 public:
  explicit ChannelsLast(Graph& g) : g_(g) {}

  int Run() {
    int rewritten = 0;
    for (Node* n : g_.nodes()) {
      if (IsConvertibleConv(*n)) {
        RewriteConv(n);
      } else if (IsPool(*n) && IsRank4(n->input(0)) && nhwc_.count(n->input(0))) {
        RewritePool(n);
      } else if (!RewriteElementwise(n)) {
        continue;
      }
      ++rewritten;
    }
    return rewritten;
  }

 private:
  Value* NewValue(const std::string& base, DataType dt, Shape shape) {
    return passes::NewTensorValue(g_, base, dt, std::move(shape));
  }

  Node* AddTranspose(Node* before, Value* in, Value* out, const std::vector<int64_t>& perm) {
    Node* t = g_.InsertNode(before, "Transpose", g_.UniqueName(out->name() + "/transpose"));
    t->attrs["perm"] = Attribute::FromInts(perm);
    t->AddInput(in);
    t->AddOutput(out);
    return t;
  }

  // The NHWC form of a 4-D NCHW value: its twin, or a new Transpose before `user`.
  Value* Nhwc(Value* v, Node* user) {
    auto it = nhwc_.find(v);
    if (it != nhwc_.end()) return it->second;
    Value* t = NewValue(v->name() + "_nhwc", v->dtype(), Permuted(v->shape(), kToNhwc));
    AddTranspose(user, v, t, kToNhwc);
    nhwc_[v] = t;
    return t;
  }

  // A constant operand of a binary op, broadcast-compatible in NHWC: padded to
  // rank 4 with leading 1s, then permuted. nullptr when it cannot be.
  Value* PermutedConstant(Value* c) {
    const Tensor& t = *c->data;
    if (t.rank() > 4) return nullptr;
    std::vector<int64_t> dims(static_cast<size_t>(4 - t.rank()), 1);
    for (int64_t d : t.dims()) dims.push_back(d);
    return passes::AddInitializer(g_, c->name() + "_nhwc", shape_ops::PermuteCopy(t, dims, kToNhwc));
  }

  // Replaces `n` (output 0: the NCHW value y) by `m`, which produces y's NHWC
  // twin; a Transpose back to NCHW keeps y for its other users.
  void Replace(Node* n, Node* m) {
    Value* y = n->output(0);
    Value* twin = NewValue(y->name() + "_nhwc", y->dtype(), Permuted(y->shape(), kToNhwc));
    m->AddOutput(twin);
    Node* back = g_.InsertNode(n, "Transpose", g_.UniqueName(y->name() + "/to_nchw"));
    back->attrs["perm"] = Attribute::FromInts(kToNchw);
    back->AddInput(twin);
    g_.RemoveNode(n);
    back->AddOutput(y);
    nhwc_[y] = twin;
  }

  void RewriteConv(Node* n) {
    Value* x = Nhwc(n->input(0), n);
    Value* z = n->num_inputs() > 3 && n->input(3) ? Nhwc(n->input(3), n) : nullptr;
    const Tensor& w = *n->input(1)->data;
    Value* w_khwc = passes::AddInitializer(g_, n->input(1)->name() + "_khwc", shape_ops::PermuteCopy(w, w.dims(), kToNhwc));
    Node* m = g_.InsertNode(n, "FusedConvNhwc", n->name, "kiln");
    m->attrs = n->attrs;
    if (!m->attr("activation")) m->attrs["activation"] = Attribute::FromString("");
    m->AddInput(x);
    m->AddInput(w_khwc);
    Value* b = n->num_inputs() > 2 ? n->input(2) : nullptr;
    if (b || z) m->AddInput(b);
    if (z) m->AddInput(z);
    Replace(n, m);
  }

  void RewritePool(Node* n) {
    Value* x = nhwc_.at(n->input(0));
    Node* m = g_.InsertNode(n, "PoolNhwc", n->name, "kiln");
    m->attrs = n->attrs;
    m->attrs["pool"] = Attribute::FromString(n->op_type);
    m->AddInput(x);
    Replace(n, m);
  }

  bool RewriteElementwise(Node* n) {
    bool unary = IsUnaryElementwise(*n);
    if (!unary && !IsBinaryElementwise(*n)) return false;
    if (n->num_outputs() != 1 || !IsRank4(n->output(0))) return false;
    size_t data_inputs = unary ? 1 : 2;
    bool any_nhwc = false;
    for (size_t i = 0; i < data_inputs; ++i) {
      Value* v = n->input(i);
      if (!v) return false;
      if (nhwc_.count(v)) {
        any_nhwc = true;
      } else if (passes::IsConstant(v)) {
        if (unary || v->data->rank() > 4) return false;
      } else if (!IsRank4(v)) {
        return false;  // a lower-rank broadcast operand would broadcast along other dims in NHWC
      }
    }
    if (!any_nhwc) return false;
    std::vector<Value*> inputs(n->inputs().begin(), n->inputs().end());
    for (size_t i = 0; i < data_inputs; ++i) {
      Value* v = inputs[i];
      inputs[i] = nhwc_.count(v) || !passes::IsConstant(v) ? Nhwc(v, n) : PermutedConstant(v);
      if (!inputs[i]) return false;
    }
    Node* m = g_.InsertNode(n, n->op_type, n->name, n->domain);
    m->attrs = n->attrs;
    for (Value* v : inputs) m->AddInput(v);
    Replace(n, m);
    return true;
  }

  Graph& g_;
  std::unordered_map<Value*, Value*> nhwc_;  // NCHW value → its NHWC twin
};

}  // namespace

Status RunChannelsLast(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  int rewritten = ChannelsLast(*model.graph).Run();
  if (rewritten == 0) return Status::Ok();
  if (!model.opsets.count("kiln")) model.opsets["kiln"] = 1;
  ctx.changed = true;
  PassContext dce;
  return RunDeadCodeElimination(model, dce);
}

}  // namespace kiln
