// Build-time fusion for the CUDA engine (see fuse_gpu.h).
#include "passes/fuse_gpu.h"

#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::HasSingleUse;
using passes::IsConstant;
using passes::SameDims;

bool IsOnnxOp(const Node& n, const char* op) {
  return n.op_type == op && (n.domain.empty() || n.domain == "ai.onnx");
}

bool IsFusableType(DataType dt) {
  return dt == DataType::kFloat || dt == DataType::kFloat16 || dt == DataType::kBFloat16 ||
         dt == DataType::kDouble;
}

// All inputs present, one output.
bool IsPlainNode(const Node& n, size_t inputs) {
  if (n.num_inputs() != inputs || n.num_outputs() != 1 || !n.output(0)) return false;
  for (const Value* v : n.inputs())
    if (!v) return false;
  return true;
}

// The only user of v when it is a node of g (v not a graph output).
Node* SingleUser(Graph& g, Value* v) {
  if (!HasSingleUse(g, v)) return nullptr;
  Node* u = v->uses()[0];
  return u->graph() == &g ? u : nullptr;
}

// The Relu that is the only user of v, or nullptr.
Node* SingleUserRelu(Graph& g, Value* v) {
  Node* u = SingleUser(g, v);
  return u && IsOnnxOp(*u, "Relu") && IsPlainNode(*u, 1) ? u : nullptr;
}

// A Conv whose output could be fused into its only user.
bool IsConvCandidate(Graph& g, const Node& n) {
  if (!IsOnnxOp(n, "Conv") || n.num_outputs() != 1 || !n.output(0) || n.num_inputs() < 2 ||
      n.num_inputs() > 3 || !n.input(0) || !n.input(1))
    return false;
  Value* y = n.output(0);
  return IsFusableType(y->dtype()) && y->shape().rank_known() && SingleUser(g, y);
}

// A fusion found: the nodes it replaces (first to last in schedule order), the
// fused node's inputs/attributes, and the value it produces.
struct Fusion {
  std::vector<Node*> chain;
  std::vector<Value*> inputs;  // nullptr: omitted
  AttributeMap attrs;
  Value* out = nullptr;
};

// Extends f with a Relu that is the only user of f.out.
void FollowRelu(Graph& g, Fusion* f) {
  Node* relu = SingleUserRelu(g, f->out);
  f->attrs["activation"] = Attribute::FromString(relu ? "Relu" : "");
  if (!relu) return;
  f->chain.push_back(relu);
  f->out = relu->output(0);
}

class FuseForGpu {
 public:
  explicit FuseForGpu(Graph& g) : g_(g) {
    std::vector<Node*> nodes = g.nodes();
    for (size_t i = 0; i < nodes.size(); ++i) index_[nodes[i]] = i;
  }

  // Returns the number of fusions made.
  int Run() {
    int count = 0;
    for (Node* n : g_.nodes()) {
      if (removed_.count(n)) continue;
      Fusion f;
      bool found = false;
      if (IsConvCandidate(g_, *n))
        found = MatchConv(n, &f);
      else if (IsOnnxOp(*n, "MatMul"))
        found = MatchMatMul(n, &f);
      if (!found) continue;
      Apply(n->op_type == "Conv" ? "FusedConv" : "FusedMatMul", f);
      ++count;
    }
    return count;
  }

 private:
  bool MatchConv(Node* conv, Fusion* f) {
    Value* y = conv->output(0);
    Node* user = SingleUser(g_, y);
    f->chain = {conv};
    f->attrs = conv->attrs;
    f->inputs = {conv->input(0), conv->input(1), conv->input(2)};
    f->out = y;
    if (IsOnnxOp(*user, "Add") && IsPlainNode(*user, 2)) {
      Value* z = user->input(0) == y ? user->input(1) : user->input(0);
      if (z == y || z->dtype() != y->dtype() || !SameDims(z->shape(), y->shape())) return false;
      // Both Add inputs are fusable convs: the later one takes the Add, so the
      // fused node moves the least.
      Node* zp = z->producer();
      if (zp && zp != conv && zp->graph() == &g_ && IsConvCandidate(g_, *zp) && index_.count(zp) &&
          index_.at(zp) > index_.at(conv))
        return false;
      f->chain.push_back(user);
      f->inputs.push_back(z);
      f->out = user->output(0);
      FollowRelu(g_, f);
      return true;
    }
    if (!SingleUserRelu(g_, y)) return false;
    FollowRelu(g_, f);
    return true;
  }

  bool MatchMatMul(Node* mm, Fusion* f) {
    if (!IsPlainNode(*mm, 2)) return false;
    Value* a = mm->input(0);
    Value* b = mm->input(1);
    Value* y = mm->output(0);
    if (!IsConstant(b) || b->data->rank() < 2 || !a->shape().rank_known() || a->shape().rank() < 2)
      return false;
    // Weights: B's batch dims are all 1 (the GPU folds A's batch into one GEMM
    // and adds the bias to every row).
    for (int d = 0; d + 2 < b->data->rank(); ++d)
      if (b->data->dim(d) != 1) return false;
    if (!IsFusableType(y->dtype()) || b->data->dtype() != y->dtype() || !y->shape().rank_known())
      return false;
    Node* add = SingleUser(g_, y);
    if (!add || !IsOnnxOp(*add, "Add") || !IsPlainNode(*add, 2)) return false;
    Value* c = add->input(0) == y ? add->input(1) : add->input(0);
    if (c == y || !IsConstant(c) || c->data->dtype() != y->dtype()) return false;
    // One value per column: [N] or [1,..,1,N], not of higher rank than y.
    const Tensor& t = *c->data;
    const int64_t n = b->data->dim(b->data->rank() - 1);
    if (n <= 0 || t.rank() < 1 || t.rank() > y->shape().rank() || t.dim(t.rank() - 1) != n || t.numel() != n)
      return false;
    Value* bias = t.rank() == 1 ? c : passes::AddInitializer(g_, c->name(), t.Reshaped({n}));
    f->chain = {mm, add};
    f->inputs = {a, b, bias};
    f->out = add->output(0);
    FollowRelu(g_, f);
    return true;
  }

  // The fused node takes the chain's last node's place and output value.
  void Apply(const std::string& op, const Fusion& f) {
    Node* first = f.chain.front();
    Node* last = f.chain.back();
    Node* fused = g_.InsertNode(last, op, first->name, "kiln");
    fused->attrs = f.attrs;
    size_t count = f.inputs.size();
    while (count > 0 && !f.inputs[count - 1]) --count;  // drop trailing omitted inputs
    for (size_t i = 0; i < count; ++i) fused->AddInput(f.inputs[i]);
    for (auto it = f.chain.rbegin(); it != f.chain.rend(); ++it) {
      removed_.insert(*it);
      g_.RemoveNode(*it);
    }
    fused->AddOutput(f.out);
  }

  Graph& g_;
  std::unordered_map<const Node*, size_t> index_;
  std::unordered_set<const Node*> removed_;
};

}  // namespace

Status RunFuseForGpu(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  int fused = FuseForGpu(*model.graph).Run();
  if (fused == 0) return Status::Ok();
  if (!model.opsets.count("kiln")) model.opsets["kiln"] = 1;
  model.graph->RemoveUnusedValues();
  ctx.changed = true;
  return Status::Ok();
}

}  // namespace kiln
