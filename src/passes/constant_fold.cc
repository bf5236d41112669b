// Constant folding (see constant_fold.h).
#include "passes/constant_fold.h"

#include <string>
#include <vector>

#include "ops/op_table.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::IsConstant;
using passes::Warn;

std::string Bytes(int64_t n) { return std::to_string(n) + " bytes"; }

// Bytes of a tensor of this type, or -1 when the shape is not fully known.
int64_t KnownBytes(const TypeInfo& t) {
  if (t.kind != ValueKind::kTensor || !t.known() || t.dtype == DataType::kString) return -1;
  auto dims = t.shape.concrete();
  if (!dims) return -1;
  int64_t n = 1;
  for (int64_t d : *dims) n *= d;
  return n * static_cast<int64_t>(ElementSize(t.dtype));
}

class Folder {
 public:
  Folder(Model& model, PassContext& ctx) : model_(model), ctx_(ctx) {}

  void FoldGraph(Graph& g) {
    for (Node* n : g.nodes()) {
      if (Foldable(*n)) Fold(g, *n);
    }
  }

  // True when `n` was folded: removed, its outputs initializers.
  bool FoldOne(Graph& g, Node& n) {
    if (!Foldable(n) || !n.output(0)) return false;
    Value* out = n.output(0);
    Fold(g, n);
    return out->producer() == nullptr;
  }

 private:
  bool Foldable(const Node& n) {
    if (passes::IsRandomOp(n) || passes::HasSubgraphs(n)) return false;
    if (n.op_type == "Dropout") return false;  // eliminate_identity's job (training_mode)
    if (n.num_outputs() == 0) return false;
    for (const Value* v : n.inputs())
      if (v && !IsConstant(v)) return false;
    for (const Value* v : n.outputs())
      if (v && v->type.known() && v->type.kind != ValueKind::kTensor) return false;
    return FindOp(n.domain, n.op_type) != nullptr;
  }

  void Fold(Graph& g, Node& n) {
    // Results shape inference already computed need no run.
    bool all_known = true;
    for (const Value* v : n.outputs())
      if (v && !v->data) all_known = false;
    std::vector<Tensor> results(n.num_outputs());
    if (all_known) {
      for (size_t i = 0; i < n.num_outputs(); ++i)
        if (n.output(i)) results[i] = *n.output(i)->data;
    } else {
      for (const Value* v : n.outputs()) {
        int64_t b = v ? KnownBytes(v->type) : -1;
        if (b > ctx_.max_fold_bytes) {
          Warn(ctx_, n.Label() + ": not folded: its output '" + v->name() + "' would take " + Bytes(b) +
                         ", over --max-fold-bytes " + std::to_string(ctx_.max_fold_bytes));
          return;
        }
      }
      if (!Run(n, &results)) return;
    }
    for (size_t i = 0; i < results.size(); ++i) {
      if (!n.output(i)) continue;
      const Tensor& t = results[i];
      if (!t.defined()) return;
      if (static_cast<int64_t>(t.nbytes()) > ctx_.max_fold_bytes) {
        Warn(ctx_, n.Label() + ": not folded: its output '" + n.output(i)->name() + "' takes " +
                       Bytes(static_cast<int64_t>(t.nbytes())) + ", over --max-fold-bytes " +
                       std::to_string(ctx_.max_fold_bytes));
        return;
      }
    }
    std::vector<Value*> outs = n.outputs();
    g.RemoveNode(&n);
    for (size_t i = 0; i < outs.size(); ++i) {
      Value* v = outs[i];
      if (!v) continue;
      v->type = TypeInfo::Tensor(results[i].dtype(), results[i].shape());
      v->data = results[i];
      v->sym_data.reset();
      g.initializers.push_back(v);
    }
    ctx_.changed = true;
  }

  // Runs the node's CPU reference. False (with a warning) when it fails.
  bool Run(const Node& n, std::vector<Tensor>* results) {
    const OpInfo* op = FindOp(n.domain, n.op_type);
    std::vector<RtValue> holders;
    holders.reserve(n.num_inputs());
    std::vector<const RtValue*> inputs;
    for (const Value* v : n.inputs()) {
      if (!v) {
        inputs.push_back(nullptr);
        continue;
      }
      holders.push_back(RtValue::FromTensor(*v->data));
      inputs.push_back(&holders.back());
    }
    RunContext rc(n, model_.OpsetOf(n.domain), inputs);
    Status st = op->Run(rc);
    if (!st.ok()) {
      Warn(ctx_, n.Label() + ": not folded: the CPU reference failed: " + st.message());
      return false;
    }
    for (size_t i = 0; i < n.num_outputs(); ++i) {
      if (!n.output(i)) continue;
      const RtValue& r = rc.outputs()[i];
      if (r.kind != ValueKind::kTensor || !r.tensor.defined()) return false;
      (*results)[i] = r.tensor;
    }
    return true;
  }

  Model& model_;
  PassContext& ctx_;
};

}  // namespace

bool FoldConstantNode(Model& model, Graph& g, Node& n, PassContext& ctx) {
  return Folder(model, ctx).FoldOne(g, n);
}

Status RunConstantFold(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  Folder folder(model, ctx);
  passes::ForEachGraph(*model.graph, [&](Graph& g) { folder.FoldGraph(g); });
  return Status::Ok();
}

}  // namespace kiln
