// Explicit quantization (see fold_qdq.h).
#include "passes/fold_qdq.h"

#include <cmath>
#include <string>
#include <vector>

#include "passes/constant_fold.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::IsConstant;
using passes::IsOnnxOp;

// A DequantizeLinear read: q (its input), scale and zero point values.
struct Dq {
  Node* node = nullptr;
  Value* q = nullptr;
  Value* scale = nullptr;
  Value* zp = nullptr;  // nullptr: omitted
  DataType qtype = DataType::kUndefined;
  int64_t axis = 1;
};

// `v` made by a DequantizeLinear with constant float32 scale (and zero point),
// no blocked scales; the quantized type known (from the zero point or the type).
bool MatchDq(Value* v, Dq* d) {
  Node* n = v ? v->producer() : nullptr;
  if (!IsOnnxOp(n, "DequantizeLinear") || n->num_inputs() < 2 || !n->input(0) || !n->input(1)) return false;
  if (passes::AttrInt(*n, "block_size", 0) != 0 || passes::AttrInt(*n, "output_dtype", 0) != 0) return false;
  d->node = n;
  d->q = n->input(0);
  d->scale = n->input(1);
  d->zp = n->num_inputs() > 2 ? n->input(2) : nullptr;
  if (!IsConstant(d->scale) || d->scale->data->dtype() != DataType::kFloat) return false;
  if (d->zp && (!IsConstant(d->zp) || d->zp->data->numel() != d->scale->data->numel())) return false;
  d->qtype = d->zp ? d->zp->data->dtype() : d->q->data ? d->q->data->dtype() : d->q->dtype();
  d->axis = passes::AttrInt(*n, "axis", 1);
  return IsInt8Type(d->qtype);
}

bool AllZero(const Value* v) {
  if (!IsConstant(v)) return false;
  for (double d : passes::ToDoubles(*v->data))
    if (d != 0) return false;
  return true;
}

// The bias as int32 at scale x_scale·w_scale[m], or false when it cannot be.
bool QuantizedBias(Value* b, int64_t channels, const std::vector<float>& acc_scale,
                   std::vector<int32_t>* out) {
  std::vector<double> values;
  Node* p = b->producer();
  if (IsOnnxOp(p, "DequantizeLinear") && p->num_inputs() >= 2 && IsConstant(p->input(0)) &&
      IsConstant(p->input(1)) && p->input(0)->data->dtype() == DataType::kInt32 &&
      (p->num_inputs() < 3 || !p->input(2) || AllZero(p->input(2)))) {
    const Tensor& q = *p->input(0)->data;
    const Tensor& s = *p->input(1)->data;
    if (s.dtype() != DataType::kFloat || q.numel() != channels || (s.numel() != 1 && s.numel() != channels))
      return false;
    out->resize(static_cast<size_t>(channels));
    bool same_scale = true;
    for (int64_t m = 0; m < channels; ++m) {
      const float sm = s.data<float>()[s.numel() == 1 ? 0 : m];
      same_scale = same_scale && std::fabs(sm - acc_scale[m]) <= 1e-6f * acc_scale[m];
      values.push_back(static_cast<double>(q.data<int32_t>()[m]) * sm);
    }
    if (same_scale) {
      for (int64_t m = 0; m < channels; ++m) (*out)[m] = q.data<int32_t>()[m];
      return true;
    }
  } else if (IsConstant(b) && passes::IsArithmeticFloat(b->data->dtype()) &&
             (b->data->numel() == channels || b->data->numel() == 1)) {
    std::vector<double> v = passes::ToDoubles(*b->data);
    for (int64_t m = 0; m < channels; ++m) values.push_back(v[v.size() == 1 ? 0 : m]);
  } else {
    return false;
  }
  out->resize(static_cast<size_t>(channels));
  for (int64_t m = 0; m < channels; ++m) {
    const double q = std::nearbyint(values[m] / acc_scale[m]);
    if (!(std::fabs(q) < 2147483647.0)) return false;
    (*out)[m] = static_cast<int32_t>(q);
  }
  return true;
}

class Folder {
 public:
  Folder(Model& model, PassContext& ctx, std::vector<std::string>* report)
      : model_(model), ctx_(ctx), g_(*model.graph), report_(report) {}

  int Run() {
    // Exporters write scales and zero points as Constant nodes, and torch's shares equal ones through
    // Identity nodes; they become initializers first (in graph order: an Identity after its Constant).
    std::vector<Node*> constants;
    for (Node* n : g_.nodes())
      if (IsOnnxOp(n, "Constant") || IsOnnxOp(n, "Identity")) constants.push_back(n);
    // Neither this nor the weights' QuantizeLinear below counts as a change: callers read ctx.changed as
    // "QDQ was folded" (a float model then gets implicit quantization).
    const bool changed = ctx_.changed;
    for (Node* n : constants) FoldConstantNode(model_, g_, *n, ctx_);  // Foldable: all inputs constant
    std::vector<Node*> products;
    for (Node* n : g_.nodes())
      if (IsOnnxOp(n, "Conv") || IsOnnxOp(n, "MatMul") || IsOnnxOp(n, "Gemm")) products.push_back(n);
    for (Node* n : products) QuantizeConstantWeight(n);
    ctx_.changed = changed;
    for (Node* n : products) count_ += Fold(n);  // removes only n and its QuantizeLinear
    // DequantizeLinear nodes the fused nodes no longer read.
    if (count_ > 0) {
      for (Node* n : g_.nodes()) {
        if (!IsOnnxOp(n, "DequantizeLinear") || !n->output(0)) continue;
        if (n->output(0)->uses().empty() && !passes::IsGraphOutput(g_, n->output(0))) g_.RemoveNode(n);
      }
    }
    return count_;
  }

 private:
  // Fake-quant exports (torch's FakeQuantize modules, the TorchScript exporter) quantize the float weight
  // in the graph: DequantizeLinear(QuantizeLinear(W, s, zp), s, zp). That QuantizeLinear runs here, once,
  // on the CPU reference, so the weight is the int8 constant a QDQ model stores.
  void QuantizeConstantWeight(Node* product) {
    Node* dq = product->num_inputs() > 1 && product->input(1) ? product->input(1)->producer() : nullptr;
    if (!IsOnnxOp(dq, "DequantizeLinear") || dq->num_inputs() < 2 || !dq->input(0)) return;
    Node* q = dq->input(0)->producer();
    if (!IsOnnxOp(q, "QuantizeLinear") || q->num_inputs() < 2) return;
    for (size_t i = 1; i < q->num_inputs(); ++i)  // the same scale and zero point as the DequantizeLinear's
      if (i >= dq->num_inputs() || !passes::SameConstant(q->input(i), dq->input(i))) return;
    if (passes::AttrInt(*q, "axis", 1) != passes::AttrInt(*dq, "axis", 1)) return;
    FoldConstantNode(model_, g_, *q, ctx_);
  }

  bool Fold(Node* n) {
    const bool conv = n->op_type == "Conv";
    const bool gemm = n->op_type == "Gemm";
    if (n->num_inputs() < 2 || !n->output(0) || n->num_outputs() != 1) return false;
    Dq x, w;
    if (!MatchDq(n->input(0), &x) || !MatchDq(n->input(1), &w)) return false;
    if (x.scale->data->numel() != 1 || !IsConstant(w.q)) return false;
    if (x.q->dtype() != DataType::kUndefined && x.q->dtype() != x.qtype) return false;
    const Tensor& wq = *w.q->data;
    if (wq.dtype() != w.qtype) return false;
    // The weight as the fused op reads it: Conv [M, C/g, k...]; MatMul/Gemm [K, N].
    bool trans_b = false;
    if (gemm) {
      if (passes::AttrInt(*n, "transA", 0) != 0 || passes::AttrFloat(*n, "alpha", 1.f) != 1.f) return false;
      if (n->num_inputs() > 2 && n->input(2) && passes::AttrFloat(*n, "beta", 1.f) != 1.f) return false;
      trans_b = passes::AttrInt(*n, "transB", 0) != 0;
    }
    if (!conv && wq.rank() != 2) return false;
    if (conv && wq.rank() < 3) return false;
    const int out_axis = conv ? 0 : trans_b ? 0 : 1;
    const int64_t channels = wq.dim(out_axis);
    const int64_t nscale = w.scale->data->numel();
    if (nscale != 1) {
      int64_t axis = w.axis < 0 ? w.axis + wq.rank() : w.axis;
      if (axis != out_axis || nscale != channels) return false;
    }
    std::vector<float> acc_scale(static_cast<size_t>(channels));
    const float xs = x.scale->data->data<float>()[0];
    for (int64_t m = 0; m < channels; ++m)
      acc_scale[m] = xs * w.scale->data->data<float>()[nscale == 1 ? 0 : m];
    std::vector<int32_t> bias;
    Value* b = n->num_inputs() > 2 ? n->input(2) : nullptr;
    if (b && !QuantizedBias(b, channels, acc_scale, &bias)) return false;
    // The output requantization: the op's only user, a QuantizeLinear.
    Value* y = n->output(0);
    Node* q = nullptr;
    if (y->uses().size() == 1 && !passes::IsGraphOutput(g_, y)) {
      Node* u = y->uses()[0];
      if (IsOnnxOp(u, "QuantizeLinear") && u->num_inputs() == 3 && u->input(0) == y && u->input(1) &&
          u->input(2) && IsConstant(u->input(1)) && IsConstant(u->input(2)) &&
          u->input(1)->data->dtype() == DataType::kFloat && u->input(1)->data->numel() == 1 &&
          u->input(2)->data->numel() == 1 && IsInt8Type(u->input(2)->data->dtype()) &&
          passes::AttrInt(*u, "saturate", 1) == 1 && passes::AttrInt(*u, "block_size", 0) == 0 &&
          u->input(1)->data->data<float>()[0] > 0.f)
        q = u;
    }

    Node* f = g_.InsertNode(n, conv ? "QConv" : "QMatMul", n->name, "kiln");
    if (conv) f->attrs = n->attrs;
    f->AddInput(x.q);
    f->AddInput(x.scale);
    f->AddInput(x.zp);
    if (trans_b) {
      const int64_t nn = wq.dim(0), kk = wq.dim(1);
      Tensor t(wq.dtype(), {kk, nn});
      for (int64_t i = 0; i < nn; ++i)
        for (int64_t j = 0; j < kk; ++j)
          t.mutable_data<int8_t>()[j * nn + i] = wq.data<int8_t>()[i * kk + j];  // 1-byte elements
      f->AddInput(passes::AddInitializer(g_, w.q->name() + "_kn", std::move(t)));
    } else {
      f->AddInput(w.q);
    }
    f->AddInput(w.scale);
    f->AddInput(w.zp);
    Value* bv = nullptr;
    if (b)
      bv = passes::AddInitializer(g_, n->name + "_bias_i32",
                                  Tensor::FromVector<int32_t>(DataType::kInt32, {channels}, bias));
    if (bv || q) f->AddInput(bv);
    if (q) {
      f->AddInput(q->input(1));
      f->AddInput(q->input(2));
    }
    Value* out = q ? q->output(0) : y;
    const std::string label = n->Label();
    const std::string out_type =
        q ? std::string(DataTypeName(q->input(2)->data->dtype())) : std::string("float32");
    g_.RemoveNode(n);
    if (q) g_.RemoveNode(q);
    f->AddOutput(out);
    if (report_)
      report_->push_back(label + " runs INT8 as kiln." + f->op_type + ": " +
                         (nscale == 1 ? "per-tensor" : "per-channel") + " weight scales, " +
                         std::string(DataTypeName(x.qtype)) + " input, " + out_type + " output");
    return true;
  }

  Model& model_;
  PassContext& ctx_;
  Graph& g_;
  std::vector<std::string>* report_;
  int count_ = 0;
};

}  // namespace

Status FoldQdq(Model& model, PassContext& ctx, std::vector<std::string>* report) {
  if (!model.graph) return InvalidArgument("model has no graph");
  Folder folder(model, ctx, report);
  passes::FinishKilnRewrite(model, ctx, folder.Run());
  return Status::Ok();
}

Status RunFoldQdq(Model& model, PassContext& ctx) { return FoldQdq(model, ctx, nullptr); }

}  // namespace kiln
