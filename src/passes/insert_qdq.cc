// Implicit quantization: QDQ insertion (see insert_qdq.h).
#include "passes/insert_qdq.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "passes/pass_util.h"

namespace kiln {

bool IsInt8Candidate(const Node& n) {
  const bool conv = passes::IsOnnxOp(&n, "Conv"), matmul = passes::IsOnnxOp(&n, "MatMul"),
             gemm = passes::IsOnnxOp(&n, "Gemm");
  if (!conv && !matmul && !gemm) return false;
  if (n.num_inputs() < 2 || !n.input(0) || !n.input(1) || n.num_outputs() != 1) return false;
  const Value* w = n.input(1);
  if (!passes::IsConstant(w) || w->data->dtype() != DataType::kFloat) return false;
  if (n.input(0)->dtype() != DataType::kFloat) return false;
  if (conv) return w->data->rank() >= 3;
  if (w->data->rank() != 2) return false;
  if (gemm) {
    if (passes::AttrInt(n, "transA", 0) != 0 || passes::AttrFloat(n, "alpha", 1.f) != 1.f) return false;
    if (n.num_inputs() > 2 && n.input(2)) {
      if (passes::AttrFloat(n, "beta", 1.f) != 1.f || !passes::IsConstant(n.input(2))) return false;
      const int64_t channels = w->data->dim(Int8WeightAxis(n));
      const int64_t nb = n.input(2)->data->numel();
      if (nb != 1 && nb != channels) return false;
    }
  }
  if (conv && n.num_inputs() > 2 && n.input(2) && !passes::IsConstant(n.input(2))) return false;
  return true;
}

int Int8WeightAxis(const Node& n) {
  if (n.op_type == "Conv") return 0;
  if (n.op_type == "Gemm" && passes::AttrInt(n, "transB", 0) != 0) return 0;
  return 1;
}

namespace {

// [outer, channels, inner] view of w around `axis`.
void View(const Tensor& w, int axis, int64_t* outer, int64_t* channels, int64_t* inner) {
  *outer = 1;
  *inner = 1;
  for (int d = 0; d < axis; ++d) *outer *= w.dim(d);
  *channels = w.dim(axis);
  for (int d = axis + 1; d < w.rank(); ++d) *inner *= w.dim(d);
}

}  // namespace

std::vector<float> Int8WeightScales(const Tensor& w, int axis) {
  int64_t outer, channels, inner;
  View(w, axis, &outer, &channels, &inner);
  std::vector<float> amax(static_cast<size_t>(channels), 0.f);
  const float* p = w.data<float>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t i = 0; i < inner; ++i)
        amax[c] = std::max(amax[c], std::fabs(p[(o * channels + c) * inner + i]));
  for (float& a : amax) a = a > 0.f && std::isfinite(a) ? a / 127.f : 1.f;
  return amax;
}

Tensor QuantizeWeight(const Tensor& w, int axis, const std::vector<float>& scales) {
  int64_t outer, channels, inner;
  View(w, axis, &outer, &channels, &inner);
  Tensor q(DataType::kInt8, w.dims());
  const float* p = w.data<float>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t idx = (o * channels + c) * inner + i;
        q.mutable_data<int8_t>()[idx] =
            static_cast<int8_t>(std::clamp(std::nearbyint(p[idx] / scales[c]), -127.f, 127.f));
      }
  return q;
}

Status InsertQdq(Model& model, PassContext& ctx, const InsertQdqOptions& options) {
  if (!model.graph) return InvalidArgument("model has no graph");
  Graph& g = *model.graph;
  std::map<Value*, Value*> dequantized;  // activation → its DQ(Q(x))
  int count = 0;
  for (Node* n : g.nodes()) {
    if (!IsInt8Candidate(*n) || options.keep_float.count(n->name)) continue;
    Value* x = n->input(0);
    auto s = options.act_scales.find(x->name());
    if (s == options.act_scales.end() || !(s->second > 0.f) || !std::isfinite(s->second)) continue;
    Value*& xdq = dequantized[x];
    if (!xdq) {
      Value* scale = passes::AddInitializer(g, x->name() + "_int8_scale", Tensor::Scalar(s->second));
      Value* zp = passes::AddInitializer(g, x->name() + "_int8_zero_point",
                                         Tensor::FromVector<int8_t>(DataType::kInt8, {}, {0}));
      Node* q = g.InsertNode(n, "QuantizeLinear", g.UniqueName(x->name() + "_QuantizeLinear"));
      q->AddInput(x);
      q->AddInput(scale);
      q->AddInput(zp);
      Value* xq = passes::NewTensorValue(g, x->name() + "_int8", DataType::kInt8, x->shape());
      q->AddOutput(xq);
      Node* dq = g.InsertNode(n, "DequantizeLinear", g.UniqueName(x->name() + "_DequantizeLinear"));
      dq->AddInput(xq);
      dq->AddInput(scale);
      dq->AddInput(zp);
      xdq = passes::NewTensorValue(g, x->name() + "_dq", DataType::kFloat, x->shape());
      dq->AddOutput(xdq);
    }
    n->SetInput(0, xdq);
    const Tensor& w = *n->input(1)->data;
    const int axis = Int8WeightAxis(*n);
    std::vector<float> ws = Int8WeightScales(w, axis);
    const int64_t channels = static_cast<int64_t>(ws.size());
    Value* wq = passes::AddInitializer(g, n->input(1)->name() + "_int8", QuantizeWeight(w, axis, ws));
    Value* wscale = passes::AddInitializer(g, n->input(1)->name() + "_int8_scale",
                                           Tensor::FromVector<float>(DataType::kFloat, {channels}, ws));
    Value* wzp = passes::AddInitializer(g, n->input(1)->name() + "_int8_zero_point",
                                        Tensor(DataType::kInt8, {channels}));
    Node* wdq = g.InsertNode(n, "DequantizeLinear", g.UniqueName(n->input(1)->name() + "_DequantizeLinear"));
    wdq->attrs["axis"] = Attribute::FromInt(axis);
    wdq->AddInput(wq);
    wdq->AddInput(wscale);
    wdq->AddInput(wzp);
    Value* wdq_out = passes::NewTensorValue(g, n->input(1)->name() + "_dq", DataType::kFloat, w.shape());
    wdq->AddOutput(wdq_out);
    n->SetInput(1, wdq_out);
    ++count;
  }
  if (count) {
    g.RemoveUnusedValues();
    KILN_RETURN_IF_ERROR(g.TopologicalSort());
    ctx.changed = true;
  }
  return Status::Ok();
}

}  // namespace kiln
