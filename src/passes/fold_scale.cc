// Per-channel scales into the weights before them (see fold_scale.h).
#include "passes/fold_scale.h"

#include <optional>
#include <vector>

#include "passes/batchnorm_params.h"
#include "passes/layout_chains.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

using passes::IsConstant;
using passes::ToDoubles;

// The axis (of a rank-`rank` result) along which constant `g` varies, when it varies along exactly one and
// broadcasts along the rest; -1 otherwise.
int VaryingAxis(const Value* g, int64_t rank) {
  if (!IsConstant(g) || !passes::IsArithmeticFloat(g->data->dtype()) || g->data->rank() > rank) return -1;
  const Tensor& t = *g->data;
  int axis = -1;
  for (int d = 0; d < t.rank(); ++d) {
    if (t.dim(d) == 1) continue;
    if (axis >= 0) return -1;
    axis = d + static_cast<int>(rank - t.rank());
  }
  return axis;
}

// A constant bias read along `axis` of a rank-`rank` value with `c` channels there: all its values, or
// nothing when it is not one value per channel along that axis.
std::optional<std::vector<double>> PerChannel(const Value* b, int64_t rank, int axis, int64_t c) {
  if (VaryingAxis(b, rank) != axis || b->data->numel() != c) return std::nullopt;
  return ToDoubles(*b->data);
}

class ScaleFolder {
 public:
  explicit ScaleFolder(Graph& g) : g_(g) {}

  bool Fold(Node* mul) {
    if (!passes::IsOnnxOp(mul, "Mul") || !passes::IsPlainNode(mul, 2)) return false;
    for (size_t k = 0; k < 2; ++k) {
      Value* g = mul->input(k);
      Value* v = mul->input(1 - k);
      const Shape& out = mul->output(0)->shape();
      if (IsConstant(v) || !out.rank_known() || !passes::SameDims(v->shape(), out)) continue;
      const int axis = VaryingAxis(g, out.rank());
      if (axis < 0 || !out[axis].known() || g->data->numel() != out[axis].value()) continue;
      if (Into(v, axis, ToDoubles(*g->data)) && passes::BypassNode(mul, mul->output(0), v)) return true;
    }
    return false;
  }

 private:
  // Scales the channels along `axis` of v's producer chain by s; false (nothing changed) when it cannot.
  bool Into(Value* v, int axis, const std::vector<double>& s) {
    const int64_t c = static_cast<int64_t>(s.size());
    Node* p = passes::SoleProducer(g_, v);
    if (passes::IsOnnxOp(p, "Transpose") && passes::IsPlainNode(p, 1)) {
      const std::vector<int64_t> perm = passes::TransposePermOf(*p, v->shape().rank());
      v = p->input(0);
      axis = static_cast<int>(perm[static_cast<size_t>(axis)]);
      p = passes::SoleProducer(g_, v);
    }
    if (!v->shape().rank_known()) return false;
    const int64_t rank = v->shape().rank();
    Node* add = nullptr;
    size_t bias_slot = 0;
    std::optional<std::vector<double>> bias;
    if (passes::IsOnnxOp(p, "Add") && passes::IsPlainNode(p, 2)) {
      for (size_t i = 0; i < 2 && !add; ++i) {
        Node* q = passes::SoleProducer(g_, p->input(1 - i));
        if (IsConstant(p->input(i)) && q && (passes::IsOnnxOp(q, "MatMul") || passes::IsOnnxOp(q, "Conv"))) {
          bias = PerChannel(p->input(i), rank, axis, c);
          if (!bias) return false;
          add = p;
          bias_slot = i;
          p = q;
        }
      }
    }
    Value* w = p ? p->input(1) : nullptr;
    if (!w || !IsConstant(w)) return false;
    std::optional<Tensor> scaled;
    std::optional<std::vector<double>> conv_bias;
    if (passes::IsOnnxOp(p, "MatMul") && passes::IsPlainNode(p, 2) && w->data->rank() == 2 &&
        axis == rank - 1) {
      scaled = passes::ScaleAlong(*w->data, 1, s);
    } else if (passes::IsOnnxOp(p, "Conv") && axis == 1 && w->data->rank() >= 3) {
      scaled = passes::ScaleAlong(*w->data, 0, s);
      if (p->num_inputs() > 2 && p->input(2)) {
        if (!IsConstant(p->input(2)) || p->input(2)->data->numel() != c) return false;
        conv_bias = ToDoubles(*p->input(2)->data);
      }
    }
    if (!scaled) return false;
    p->SetInput(1, passes::AddInitializer(g_, w->name() + "_scaled", *scaled));
    auto scale_bias = [&](const Value* b, std::vector<double> values) {
      for (size_t i = 0; i < values.size(); ++i) values[i] *= s[i];
      return passes::AddInitializer(g_, b->name() + "_scaled",
                                    passes::FromDoubles(b->dtype(), b->data->dims(), values));
    };
    if (conv_bias) p->SetInput(2, scale_bias(p->input(2), *conv_bias));
    if (add) add->SetInput(bias_slot, scale_bias(add->input(bias_slot), *bias));
    return true;
  }

  Graph& g_;
};

}  // namespace

Status RunFoldScale(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  passes::ForEachGraph(*model.graph, [&](Graph& g) {
    ScaleFolder folder(g);
    for (Node* n : g.nodes())
      if (folder.Fold(n)) ctx.changed = true;
  });
  return Status::Ok();
}

}  // namespace kiln
