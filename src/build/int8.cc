// INT8 builds (see int8.h).
#include "build/int8.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "build/build_passes.h"
#include "build/calibrate.h"
#include "build/calibrate_int8.h"
#include "build/fp8.h"
#include "ir/clone.h"
#include "ir/verifier.h"
#include "ops/op_table.h"
#include "passes/fold_qdq.h"
#include "passes/fp16.h"
#include "passes/insert_qdq.h"
#include "passes/pipeline.h"
#include "reference/compare.h"
#include "reference/executor.h"

namespace kiln {
namespace {

// Symmetric int8 fake quantization of an activation: clamp(round(x/s), -128, 127)·s.
Tensor FakeQuantActivation(const Tensor& x, float scale) {
  Tensor y(DataType::kFloat, x.dims());
  for (int64_t i = 0; i < x.numel(); ++i)
    y.mutable_data<float>()[i] =
        std::clamp(std::nearbyint(x.data<float>()[i] / scale), -128.f, 127.f) * scale;
  return y;
}

Tensor FakeQuantWeight(const Tensor& w, int axis) {
  std::vector<float> scales = Int8WeightScales(w, axis);
  Tensor q = QuantizeWeight(w, axis, scales);
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= w.dim(d);
  for (int d = axis + 1; d < w.rank(); ++d) inner *= w.dim(d);
  const int64_t channels = w.dim(axis);
  Tensor y(DataType::kFloat, w.dims());
  for (int64_t i = 0; i < w.numel(); ++i)
    y.mutable_data<float>()[i] = q.data<int8_t>()[i] * scales[(i / inner) % channels];
  (void)outer;
  return y;
}

// The isolated INT8 error of candidate n: its float output against the same
// op on fake-quantized input and weight (what kiln.QConv/QMatMul compute, up to
// float rounding of the sum), as rel L2.
Expected<double> IsolatedError(const Model& model, const Node& n, const Tensor& x, const Tensor& y,
                               float scale) {
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
    Tensor t = i == 0   ? FakeQuantActivation(x, scale)
               : i == 1 ? FakeQuantWeight(*v->data, Int8WeightAxis(n))
                        : *v->data;
    holders.push_back(RtValue::FromTensor(std::move(t)));
    inputs.push_back(&holders.back());
  }
  RunContext rc(n, model.OpsetOf(n.domain), inputs);
  KILN_RETURN_IF_ERROR(op->run(rc));
  Comparison c = CompareTensors(y, rc.outputs()[0].tensor, Tolerance::RelL2(1.0));
  return c.rel_l2;
}

// Calibration inputs and the FP32 model's outputs on them.
struct Probe {
  std::map<std::string, RtValue> feed;
  std::vector<RtValue> want;
};

// Largest rel L2, over the probes and the float outputs, of `model` quantized
// with ins.keep_float kept float, against the FP32 outputs.
Expected<double> WholeModelError(const Model& model, const InsertQdqOptions& ins, const std::vector<Probe>& probes) {
  std::unique_ptr<Model> q = CloneModel(model);
  PassContext ctx;
  KILN_RETURN_IF_ERROR(InsertQdq(*q, ctx, ins).WithPrefix("insert_qdq pass"));
  KILN_RETURN_IF_ERROR(FoldQdq(*q, ctx, nullptr).WithPrefix("fold_qdq pass"));
  double worst = 0;
  for (const Probe& p : probes) {
    KILN_ASSIGN_OR_RETURN(std::vector<RtValue> got, ReferenceExecutor(*q).Run(p.feed));
    for (size_t i = 0; i < got.size() && i < p.want.size(); ++i) {
      if (got[i].kind != ValueKind::kTensor || p.want[i].kind != ValueKind::kTensor) continue;
      const Tensor& w = p.want[i].tensor;
      if (w.dtype() != DataType::kFloat && w.dtype() != DataType::kFloat16) continue;
      worst = std::max(worst, CompareTensors(w, got[i].tensor, Tolerance::RelL2(1.0)).rel_l2);
    }
  }
  return worst;
}

// The whole-model criterion: while the quantized model's error (the worst
// over up to four calibration inputs) exceeds options.int8_model_rel_l2, the
// INT8 layers of largest isolated error stay float, found by bisection on how
// many (error is taken to fall as more stay float). Adds them to
// ins->keep_float and their report lines to `verdict`.
Status WholeModelFallback(const Model& model, const BuildOptions& options, const std::vector<Node*>& candidates,
                          const std::map<std::string, double>& isolated, const std::vector<std::string>& samples,
                          const std::string& kept, InsertQdqOptions* ins,
                          std::map<std::string, std::string>* verdict, std::vector<std::string>* notes) {
  std::vector<Probe> probes;
  for (size_t i = 0; i < samples.size() && i < 4; ++i) {
    Probe p;
    KILN_ASSIGN_OR_RETURN(p.feed, ReadCalibSample(model, samples[i]));
    KILN_ASSIGN_OR_RETURN(p.want, ReferenceExecutor(model).Run(p.feed));
    probes.push_back(std::move(p));
  }
  const std::string on = fmt::format("{} calibration input{}", probes.size(), probes.size() == 1 ? "" : "s");
  KILN_ASSIGN_OR_RETURN(double before, WholeModelError(model, *ins, probes));
  if (before <= options.int8_model_rel_l2) return Status::Ok();
  std::vector<const Node*> order;  // INT8 layers, largest isolated error first
  for (const Node* n : candidates)
    if (!ins->keep_float.count(n->name) && isolated.count(n->name)) order.push_back(n);
  std::stable_sort(order.begin(), order.end(), [&](const Node* a, const Node* b) {
    return isolated.at(a->name) > isolated.at(b->name);
  });
  auto with_first = [&](size_t k) {
    InsertQdqOptions o = *ins;
    for (size_t i = 0; i < k; ++i) o.keep_float.insert(order[i]->name);
    return o;
  };
  size_t lo = 0, hi = order.size();  // error(lo) > target; error(hi) taken to meet it
  double after = 0;
  while (hi - lo > 1) {
    const size_t mid = (lo + hi) / 2;
    KILN_ASSIGN_OR_RETURN(double e, WholeModelError(model, with_first(mid), probes));
    if (e <= options.int8_model_rel_l2) {
      hi = mid;
      after = e;
    } else {
      lo = mid;
    }
  }
  if (hi == order.size()) {
    KILN_ASSIGN_OR_RETURN(after, WholeModelError(model, with_first(hi), probes));
  }
  for (size_t i = 0; i < hi; ++i) {
    const Node* n = order[i];
    ins->keep_float.insert(n->name);
    (*verdict)[n->name] =
        fmt::format("{}{}whole-model INT8 rel L2 {:.3g} > {:.3g} on {}; among the {} layers of largest isolated error "
                    "({:.3g})",
                    n->Label(), kept, before, options.int8_model_rel_l2, on, hi, isolated.at(n->name));
  }
  notes->push_back(fmt::format("--int8: whole-model rel L2 {:.3g} on {} > {:.3g} (--int8-model-rel-l2): {} of {} "
                               "INT8 layers stay float, rel L2 {:.3g}",
                               before, on, options.int8_model_rel_l2, hi, order.size(), after));
  return Status::Ok();
}

}  // namespace

Status QuantizeImplicitInt8(Model& model, const BuildOptions& options, std::vector<std::string>* report,
                            std::vector<std::string>* notes) {
  Graph& g = *model.graph;
  std::vector<Node*> candidates;
  std::vector<std::string> names;
  for (Node* n : g.nodes()) {
    if (!IsInt8Candidate(*n)) continue;
    candidates.push_back(n);
    if (std::find(names.begin(), names.end(), n->input(0)->name()) == names.end())
      names.push_back(n->input(0)->name());
  }
  if (candidates.empty()) {
    notes->push_back("--int8: no convolution or matrix product with constant weights to quantize");
    return Status::Ok();
  }
  if (options.calib.empty())
    return InvalidArgument(
        "--int8 needs --calib DIR (.npy calibration inputs) or --calib FILE (a calibration cache)");
  KILN_ASSIGN_OR_RETURN(CalibMethod method, ParseCalibMethod(options.calib_method));
  std::error_code ec;
  const bool from_cache = std::filesystem::is_regular_file(options.calib, ec);
  CalibTable table;
  if (from_cache) {
    KILN_ASSIGN_OR_RETURN(table, ReadCalibCache(options.calib));
  } else {
    KILN_ASSIGN_OR_RETURN(table,
                          CalibrateInt8(model, options.calib, names, method, options.calib_percentile));
  }

  // The fallback: each candidate's isolated INT8 error on the first calibration input.
  InsertQdqOptions ins;
  ins.act_scales = table.scales;
  // Where a layer stays float: FP16 in an --fp16 build (the fp16 pass converts it), else FP32.
  const std::string kept = std::string(" stays ") + (options.fp16 ? "FP16" : "FP32") + ": ";
  std::map<std::string, std::string> verdict;  // node name → report line
  std::map<std::string, double> error;
  if (!from_cache) {
    KILN_ASSIGN_OR_RETURN(std::vector<std::string> samples, ListCalibSamples(options.calib));
    std::unique_ptr<Model> probe = CloneModel(model);
    Graph& pg = *probe->graph;
    pg.outputs.clear();
    std::set<std::string> added;
    for (const Node* n : candidates)
      for (const Value* v : {n->input(0), n->output(0)})
        if (added.insert(v->name()).second) pg.outputs.push_back(pg.FindValue(v->name()));
    KILN_ASSIGN_OR_RETURN(auto feed, ReadCalibSample(*probe, samples.front()));
    auto out = ReferenceExecutor(*probe).Run(feed);
    if (!out.ok()) return out.status().WithPrefix("INT8 fallback check on " + samples.front());
    std::map<std::string, Tensor> values;
    for (size_t i = 0; i < pg.outputs.size() && i < out->size(); ++i)
      values[pg.outputs[i]->name()] = (*out)[i].tensor;
    for (const Node* n : candidates) {
      auto s = table.scales.find(n->input(0)->name());
      if (s == table.scales.end()) continue;
      KILN_ASSIGN_OR_RETURN(double e, IsolatedError(model, *n, values[n->input(0)->name()],
                                                    values[n->output(0)->name()], s->second));
      error[n->name] = e;
      if (!(e <= options.int8_fallback_rel_l2)) {
        ins.keep_float.insert(n->name);
        verdict[n->name] = fmt::format("{}{}INT8 rel L2 {:.3g} > {:.3g} (isolated, on {})",
                                       n->Label(), kept, e, options.int8_fallback_rel_l2, samples.front());
      }
    }
    if (options.int8_model_rel_l2 > 0)
      KILN_RETURN_IF_ERROR(WholeModelFallback(model, options, candidates, error, samples, kept, &ins, &verdict, notes));
    table.keep_float = ins.keep_float;
    if (!options.calib_cache.empty()) {
      KILN_RETURN_IF_ERROR(WriteCalibCache(table, options.calib_cache));
      notes->push_back("--int8: calibration cache written to " + options.calib_cache);
    }
  } else {
    notes->push_back("--int8: scales and FP32 fallbacks from the calibration cache " + options.calib);
    for (const Node* n : candidates) {
      if (!table.keep_float.count(n->name)) continue;
      ins.keep_float.insert(n->name);
      verdict[n->name] = n->Label() +
                         kept + "INT8 rel L2 over the threshold when the calibration cache " +
                         options.calib + " was written";
    }
  }
  for (const Node* n : candidates) {
    if (verdict.count(n->name)) continue;
    auto s = table.scales.find(n->input(0)->name());
    if (s == table.scales.end()) {
      verdict[n->name] =
          n->Label() + kept + "no INT8 scale for its input '" + n->input(0)->name() + "' (" +
          (from_cache ? "not in the calibration cache" : "zero on every calibration input") + ")";
      continue;
    }
    auto e = error.find(n->name);
    verdict[n->name] =
        fmt::format("{} runs INT8: input scale {:.4g} ({}), per-channel weights{}", n->Label(), s->second,
                    CalibMethodName(table.method),
                    e == error.end() ? std::string() : fmt::format(", isolated rel L2 {:.3g}", e->second));
  }
  std::vector<std::string> lines;
  for (const Node* n : candidates) lines.push_back(verdict[n->name]);  // graph order (before the rewrite)
  PassContext ctx;
  KILN_RETURN_IF_ERROR(InsertQdq(model, ctx, ins).WithPrefix("insert_qdq pass"));
  KILN_RETURN_IF_ERROR(VerifyModel(model).WithPrefix("insert_qdq pass left the model invalid"));
  KILN_RETURN_IF_ERROR(FoldQdq(model, ctx, nullptr).WithPrefix("fold_qdq pass"));
  KILN_RETURN_IF_ERROR(VerifyModel(model).WithPrefix("fold_qdq pass left the model invalid"));
  if (report) report->insert(report->end(), lines.begin(), lines.end());
  return Status::Ok();
}

Status PrepareQuantizedGraph(Model& model, const BuildOptions& options, std::vector<std::string>* report,
                             std::vector<std::string>* notes) {
  if (!model.graph) return InvalidArgument("model has no graph");
  if (options.int8 && options.fp8) return InvalidArgument("--int8 and --fp8 exclude each other");
  PassContext ctx;
  KILN_RETURN_IF_ERROR(FoldQdq(model, ctx, report).WithPrefix("fold_qdq pass"));
  const bool folded = ctx.changed;
  KILN_RETURN_IF_ERROR(RunSimplify(model, ctx).WithPrefix("simplifier"));
  if (options.int8 && !folded) KILN_RETURN_IF_ERROR(QuantizeImplicitInt8(model, options, report, notes));
  if (options.fp8) KILN_RETURN_IF_ERROR(QuantizeFp8(model, options, report, notes));
  if (options.fp16) KILN_RETURN_IF_ERROR(ConvertToFp16WithReport(model, options, ctx, report));
  for (const std::string& w : ctx.warnings) notes->push_back(w);
  return Status::Ok();
}

}  // namespace kiln
