// A BatchNormalization before an unpadded convolution → its weights (see fold_prenorm.h).
#include "passes/fold_prenorm.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "passes/batchnorm_params.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

// Whether the Conv reads no padding: pads all 0 (or absent) with auto_pad NOTSET, or auto_pad VALID.
bool Unpadded(const Node& conv) {
  const std::string auto_pad = passes::AttrString(conv, "auto_pad", "NOTSET");
  if (auto_pad == "VALID") return true;
  if (auto_pad != "NOTSET") return false;
  std::optional<std::vector<int64_t>> pads = passes::AttrInts(conv, "pads");
  return !pads || std::all_of(pads->begin(), pads->end(), [](int64_t p) { return p == 0; });
}

// Conv(x, W·s, b + Σ W·t) in place of Conv(bn's output, W, b); false (nothing changed) when it does not fit.
bool Fold(Graph& g, Node& conv, const passes::BnParams& p) {
  const Value* w = conv.input(1);
  const Value* b = conv.num_inputs() > 2 ? conv.input(2) : nullptr;
  if (!passes::IsConstant(w) || w->data->rank() < 3 || !passes::IsArithmeticFloat(w->dtype()) ||
      (b && (!passes::IsConstant(b) || b->data->rank() != 1)))
    return false;
  const Tensor& wt = *w->data;
  const int64_t k = wt.dim(0), per_group = wt.dim(1), group = passes::AttrInt(conv, "group", 1);
  const int64_t c = static_cast<int64_t>(p.scale.size());
  if (group <= 0 || k % group != 0 || per_group * group != c) return false;
  int64_t taps = 1;
  for (int d = 2; d < wt.rank(); ++d) taps *= wt.dim(d);
  std::vector<double> wv = passes::ToDoubles(wt);
  std::vector<double> bias(static_cast<size_t>(k), 0.0);
  if (b) {
    std::vector<double> bv = passes::ToDoubles(*b->data);
    if (static_cast<int64_t>(bv.size()) != k) return false;
    bias = bv;
  }
  const int64_t outs_per_group = k / group;
  for (int64_t o = 0; o < k; ++o) {
    const int64_t first = (o / outs_per_group) * per_group;  // the group's first input channel
    for (int64_t ci = 0; ci < per_group; ++ci) {
      const size_t ch = static_cast<size_t>(first + ci);
      for (int64_t t = 0; t < taps; ++t) {
        double& x = wv[static_cast<size_t>((o * per_group + ci) * taps + t)];
        bias[static_cast<size_t>(o)] += x * p.shift[ch];
        x *= p.scale[ch];
      }
    }
  }
  const std::string base = conv.output(0)->name();
  conv.SetInput(
      1, passes::AddInitializer(g, w->name() + "_prenorm", passes::FromDoubles(wt.dtype(), wt.dims(), wv)));
  Value* nb = passes::AddInitializer(g, base + "_prenorm_bias", passes::FromDoubles(wt.dtype(), {k}, bias));
  if (conv.num_inputs() < 3)
    conv.AddInput(nb);
  else
    conv.SetInput(2, nb);
  return true;
}

}  // namespace

Status RunFoldPrenorm(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  const int64_t opset = model.OpsetOf("");
  passes::ForEachGraph(*model.graph, [&](Graph& g) {
    std::vector<Node*> bns;
    for (Node* n : g.nodes())
      if (passes::IsOnnxOp(n, "BatchNormalization") && n->input(0) && n->output(0)) bns.push_back(n);
    for (Node* bn : bns) {
      Node* conv = passes::SoleUser(g, bn->output(0));
      if (!passes::IsOnnxOp(conv, "Conv") || conv->input(0) != bn->output(0) || !Unpadded(*conv) ||
          !bn->input(0)->shape().rank_known() || bn->input(0)->shape().rank() < 3)
        continue;
      std::optional<passes::BnParams> params = passes::ReadBn(*model.graph, *bn, opset);
      if (!params || !Fold(g, *conv, *params)) continue;
      conv->SetInput(0, bn->input(0));
      g.RemoveNode(bn);
      ctx.changed = true;
    }
  });
  return Status::Ok();
}

}  // namespace kiln
