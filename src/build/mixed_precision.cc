// Mixed precision for quantized builds (see mixed_precision.h).
#include "build/mixed_precision.h"

#include <fmt/format.h>

#include <algorithm>

#include "ir/clone.h"
#include "ops/op_table.h"
#include "reference/compare.h"
#include "reference/executor.h"

namespace kiln {

Expected<std::map<std::string, Tensor>> LayerValues(const Model& model, const std::vector<Node*>& layers,
                                                    const std::map<std::string, RtValue>& feed) {
  std::unique_ptr<Model> probe = CloneModel(model);
  Graph& g = *probe->graph;
  g.outputs.clear();
  std::set<std::string> added;
  for (const Node* n : layers)
    for (const Value* v : {n->input(0), n->output(0)})
      if (added.insert(v->name()).second) g.outputs.push_back(g.FindValue(v->name()));
  KILN_ASSIGN_OR_RETURN(std::vector<RtValue> out, ReferenceExecutor(*probe).Run(feed));
  std::map<std::string, Tensor> values;
  for (size_t i = 0; i < g.outputs.size() && i < out.size(); ++i) values[g.outputs[i]->name()] = out[i].tensor;
  return values;
}

Expected<double> IsolatedError(const Model& model, const Node& n, const Tensor& x, const Tensor& y,
                               const FakeQuant& act, const FakeQuant& weight) {
  const OpInfo* op = FindOp(n.domain, n.op_type);
  if (!op) return Internal(n.Label() + ": no CPU reference");
  std::vector<RtValue> holders;
  holders.reserve(n.num_inputs());
  std::vector<const RtValue*> inputs;
  for (size_t i = 0; i < n.num_inputs(); ++i) {
    const Value* v = n.input(i);
    if (!v) {
      inputs.push_back(nullptr);
      continue;
    }
    Tensor t = i == 0 ? act(x) : i == 1 ? weight(*v->data) : *v->data;
    holders.push_back(RtValue::FromTensor(std::move(t)));
    inputs.push_back(&holders.back());
  }
  RunContext rc(n, model.OpsetOf(n.domain), inputs);
  KILN_RETURN_IF_ERROR(op->Run(rc));
  return CompareTensors(y, rc.outputs()[0].tensor, Tolerance::RelL2(1.0)).rel_l2;
}

Expected<Probe> MakeProbe(const Model& model, std::map<std::string, RtValue> feed) {
  Probe p;
  p.feed = std::move(feed);
  KILN_ASSIGN_OR_RETURN(p.want, ReferenceExecutor(model).Run(p.feed));
  return p;
}

namespace {

// The whole-model check ranks at most this many layers by their effect on the
// output (one quantized model run each); the rest follow by isolated error.
constexpr size_t kMaxRanked = 64;

// Largest rel L2 over the probes and the float outputs of `quantized` against the FP32 outputs.
Expected<double> WorstOutputError(const Model& quantized, const std::vector<Probe>& probes) {
  double worst = 0;
  for (const Probe& p : probes) {
    KILN_ASSIGN_OR_RETURN(std::vector<RtValue> got, ReferenceExecutor(quantized).Run(p.feed));
    for (size_t i = 0; i < got.size() && i < p.want.size(); ++i) {
      if (got[i].kind != ValueKind::kTensor || p.want[i].kind != ValueKind::kTensor) continue;
      const Tensor& w = p.want[i].tensor;
      if (w.dtype() != DataType::kFloat && w.dtype() != DataType::kFloat16) continue;
      worst = std::max(worst, CompareTensors(w, got[i].tensor, Tolerance::RelL2(1.0)).rel_l2);
    }
  }
  return worst;
}

}  // namespace

Status WholeModelFallback(const std::vector<Node*>& candidates, const std::map<std::string, double>& isolated,
                          const std::vector<Probe>& probes, const QuantizeExcept& quantize,
                          const WholeModelCheck& check, std::set<std::string>* keep_float,
                          std::map<std::string, std::string>* verdict, std::vector<std::string>* notes) {
  if (!(check.target > 0) || probes.empty()) return Status::Ok();
  auto error_keeping = [&](const std::set<std::string>& keep) -> Expected<double> {
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<Model> q, quantize(keep));
    return WorstOutputError(*q, probes);
  };
  const std::string on = fmt::format("{} calibration input{}", probes.size(), probes.size() == 1 ? "" : "s");
  KILN_ASSIGN_OR_RETURN(double before, error_keeping(*keep_float));
  if (before <= check.target) return Status::Ok();
  std::vector<const Node*> order;  // quantized layers, largest isolated error first
  for (const Node* n : candidates)
    if (!keep_float->count(n->name) && isolated.count(n->name)) order.push_back(n);
  std::stable_sort(order.begin(), order.end(),
                   [&](const Node* a, const Node* b) { return isolated.at(a->name) > isolated.at(b->name); });
  // Then by effect on the output: each of the first kMaxRanked quantized alone,
  // the rest float, on the first probe. A layer whose error the rest of the
  // network damps ranks below one whose error it amplifies.
  std::map<std::string, double> effect;
  const std::vector<Probe> first(probes.begin(), probes.begin() + 1);
  const size_t ranked = std::min(order.size(), kMaxRanked);
  for (size_t i = 0; i < ranked; ++i) {
    std::set<std::string> keep = *keep_float;
    for (const Node* n : order)
      if (n != order[i]) keep.insert(n->name);
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<Model> q, quantize(keep));
    KILN_ASSIGN_OR_RETURN(effect[order[i]->name], WorstOutputError(*q, first));
  }
  std::stable_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(ranked),
                   [&](const Node* a, const Node* b) { return effect.at(a->name) > effect.at(b->name); });
  auto with_first = [&](size_t k) {
    std::set<std::string> keep = *keep_float;
    for (size_t i = 0; i < k; ++i) keep.insert(order[i]->name);
    return keep;
  };
  size_t lo = 0, hi = order.size();  // error(lo) > target; error(hi) taken to meet it
  double after = 0;
  while (hi - lo > 1) {
    const size_t mid = (lo + hi) / 2;
    KILN_ASSIGN_OR_RETURN(double e, error_keeping(with_first(mid)));
    if (e <= check.target) {
      hi = mid;
      after = e;
    } else {
      lo = mid;
    }
  }
  if (hi == order.size()) {
    KILN_ASSIGN_OR_RETURN(after, error_keeping(with_first(hi)));
  }
  for (size_t i = 0; i < hi; ++i) {
    const Node* n = order[i];
    keep_float->insert(n->name);
    const auto e = effect.find(n->name);
    (*verdict)[n->name] = fmt::format(
        "{}{}whole-model {} rel L2 {:.3g} > {:.3g} on {}; among the {} layers of largest effect on the output "
        "({}isolated {:.3g})",
        n->Label(), check.kept, check.format, before, check.target, on, hi,
        e == effect.end() ? std::string() : fmt::format("alone {:.3g}, ", e->second), isolated.at(n->name));
  }
  notes->push_back(fmt::format("whole-model {} rel L2 {:.3g} on {} > {:.3g} ({}): {} of {} {} layers stay float, "
                               "rel L2 {:.3g}",
                               check.format, before, on, check.target, check.flag, hi, order.size(), check.format,
                               after));
  return Status::Ok();
}

}  // namespace kiln
