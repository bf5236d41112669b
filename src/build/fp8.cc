// FP8 builds (see fp8.h).
#include "build/fp8.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "backend/gpu_caps.h"
#include "build/calibrate.h"
#include "build/mixed_precision.h"
#include "core/float8.h"
#include "ir/clone.h"
#include "ir/verifier.h"
#include "passes/insert_qdq.h"
#include "passes/pass_util.h"
#include "passes/shape_inference.h"
#include "reference/equivalence.h"

namespace kiln {
namespace {

constexpr int kRandomSamples = 4;
// Symbolic dims (batch, sequence) of the random inputs: 16, halved while an
// input would hold more than kRandomElements elements. The calibration and the
// fallback checks run the model about a dozen times on the CPU reference: BERT-base
// at [16, 128] took 9 minutes on 2 cores (more than 200 s on 16), at [4, 128] a
// quarter of that.
constexpr int64_t kRandomDim = 16;
constexpr int64_t kRandomElements = 512;

int64_t RandomDim(const Model& model) {
  int64_t d = kRandomDim;
  auto largest = [&](int64_t sym) {
    int64_t most = 0;
    for (const Value* in : model.graph->inputs) {
      if (in->data || !in->shape().rank_known()) continue;
      int64_t n = 1;
      for (const Dim& dim : in->shape().dims()) n *= dim.known() ? dim.value() : sym;
      most = std::max(most, n);
    }
    return most;
  };
  while (d > 1 && largest(d) > kRandomElements) d /= 2;
  return d;
}

bool IsFp8Candidate(const Node& n) { return !passes::IsOnnxOp(&n, "Conv") && IsInt8Candidate(n); }

// The calibration inputs: the sample sets of `dir`, or random ones.
Expected<std::vector<CalibFeed>> Fp8CalibFeeds(const Model& model, const std::string& dir,
                                               std::vector<std::string>* notes) {
  std::vector<CalibFeed> feeds;
  if (!dir.empty()) {
    KILN_ASSIGN_OR_RETURN(std::vector<std::string> samples, ListCalibSamples(dir));
    for (const std::string& s : samples) {
      KILN_ASSIGN_OR_RETURN(auto feed, ReadCalibSample(model, s));
      feeds.push_back({s, std::move(feed)});
    }
    return feeds;
  }
  const int64_t dim = RandomDim(model);
  notes->push_back(fmt::format(
      "--fp8 without --calib: activation scales from {} random inputs (floats uniform in [-1, 1), integers 0 or 1, "
      "symbolic dims {}); give --calib DIR with real inputs for scales that fit the data",
      kRandomSamples, dim));
  for (int i = 0; i < kRandomSamples; ++i) {
    EquivalenceOptions o;
    o.symbolic_dim = dim;
    o.seed = static_cast<uint64_t>(i);
    KILN_ASSIGN_OR_RETURN(auto feed, RandomInputs(model, o));
    // Integers in {0, 1}: valid token ids, positions, segment ids and attention masks alike
    // (RandomInputs' [0, 10) makes masks whose (1 - mask)·min overflows to NaN).
    for (auto& [name, v] : feed) {
      Tensor& t = v.tensor;
      if (v.kind != ValueKind::kTensor) continue;
      if (t.dtype() == DataType::kInt64)
        for (int64_t j = 0; j < t.numel(); ++j) t.mutable_data<int64_t>()[j] &= 1;
      if (t.dtype() == DataType::kInt32)
        for (int64_t j = 0; j < t.numel(); ++j) t.mutable_data<int32_t>()[j] &= 1;
    }
    feeds.push_back({fmt::format("random input {}", i), std::move(feed)});
  }
  return feeds;
}

float Fp8WeightScale(const Tensor& w) {
  float amax = 0.f;
  for (int64_t i = 0; i < w.numel(); ++i) amax = std::max(amax, std::fabs(w.data<float>()[i]));
  return amax > 0.f ? amax / kE4M3Max : 1.f;
}

// w (MatMul's [K, N], or Gemm's B: [K, N], or [N, K] with transB) as E4M3 bits [N, K].
Tensor Fp8WeightNk(const Tensor& w, bool trans_b, float scale) {
  const int64_t n = trans_b ? w.dim(0) : w.dim(1), k = trans_b ? w.dim(1) : w.dim(0);
  Tensor t(DataType::kFloat8E4M3FN, {n, k});
  for (int64_t j = 0; j < n; ++j)
    for (int64_t kk = 0; kk < k; ++kk)
      t.mutable_data<uint8_t>()[j * k + kk] =
          QuantizeE4M3(w.data<float>()[trans_b ? j * k + kk : kk * n + j], scale);
  return t;
}

// A product's per-tensor scales: the activation's (amax/448 from calibration) and the weight's.
struct Fp8Scales {
  float a = 1.f, w = 1.f;
};

// Replaces candidate `n` by kiln.QuantizeE4M3 + kiln.F8MatMul (plus an Add of
// Gemm's C). `e4m3`: the weights already converted, by node name (shared
// storage: the whole-model check rewrites many clones of one model).
// `quantized`: the E4M3 copies of activations made so far, by the float
// value: products that read one value (Q, K and V) share its quantization
// (its scale is the value's, so it is the same for all of them).
void RewriteToF8MatMul(Graph& g, Node* n, Fp8Scales scales, std::map<std::string, Tensor>* e4m3,
                       std::map<Value*, Value*>* quantized) {
  const bool trans_b = passes::IsOnnxOp(n, "Gemm") && passes::AttrInt(*n, "transB", 0) != 0;
  auto cached = e4m3->find(n->name);
  if (cached == e4m3->end())
    cached = e4m3->emplace(n->name, Fp8WeightNk(*n->input(1)->data, trans_b, scales.w)).first;
  Value* x = n->input(0);
  Value* c = n->num_inputs() > 2 ? n->input(2) : nullptr;
  Value* y = n->output(0);
  const std::string name = n->name;
  Value*& xq = (*quantized)[x];
  Value* a_scale = passes::AddInitializer(g, name + "_a_scale",
                                          Tensor::FromVector<float>(DataType::kFloat, {}, {scales.a}));
  if (!xq) {
    Node* q = g.InsertNode(n, "QuantizeE4M3", g.UniqueName(x->name() + "_e4m3"), "kiln");
    q->AddInput(x);
    q->AddInput(a_scale);
    xq = g.AddValue(g.UniqueName(x->name() + "_e4m3"));
    q->AddOutput(xq);
  }
  Node* f = g.InsertNode(n, "F8MatMul", name, "kiln");
  const DataType out = y->dtype() == DataType::kUndefined ? DataType::kFloat : y->dtype();
  f->attrs["to"] = Attribute::FromInt(static_cast<int64_t>(out));
  f->AddInput(xq);
  f->AddInput(a_scale);
  f->AddInput(passes::AddInitializer(g, n->input(1)->name() + "_e4m3_nk", cached->second));
  f->AddInput(passes::AddInitializer(g, name + "_w_scale",
                                     Tensor::FromVector<float>(DataType::kFloat, {}, {scales.w})));
  Node* add = nullptr;
  if (c) {
    add = g.InsertNode(n, "Add", g.UniqueName(name + "_bias"));
    Value* mm = g.AddValue(g.UniqueName(name + "_f8"));
    f->AddOutput(mm);
    add->AddInput(mm);
    add->AddInput(c);
  }
  g.RemoveNode(n);
  (add ? add : f)->AddOutput(y);
}

// The E4M3 round trip kiln.F8MatMul applies to an operand: QuantizeE4M3, then back times the scale.
Tensor FakeQuantE4M3(const Tensor& x, float scale) {
  Tensor y(DataType::kFloat, x.dims());
  for (int64_t i = 0; i < x.numel(); ++i)
    y.mutable_data<float>()[i] = static_cast<float>(
        DecodeFloat(FloatFormat::kE4M3FN, QuantizeE4M3(x.data<float>()[i], scale)) * static_cast<double>(scale));
  return y;
}

// Rewrites the layers of `scales` (by name) not in `keep_float` to kiln.F8MatMul.
Status RewriteAll(Model& model, const std::map<std::string, Fp8Scales>& scales,
                  const std::set<std::string>& keep_float, std::map<std::string, Tensor>* e4m3) {
  Graph& g = *model.graph;
  std::vector<Node*> todo;
  for (Node* n : g.nodes())
    if (scales.count(n->name) && !keep_float.count(n->name) && IsFp8Candidate(*n)) todo.push_back(n);
  std::map<Value*, Value*> quantized;
  for (Node* n : todo) RewriteToF8MatMul(g, n, scales.at(n->name), e4m3, &quantized);
  PassContext ctx;
  passes::FinishKilnRewrite(model, ctx, static_cast<int>(todo.size()));
  KILN_RETURN_IF_ERROR(InferShapes(model).WithPrefix("fp8 rewrite"));
  return VerifyModel(model).WithPrefix("fp8 rewrite left the model invalid");
}

}  // namespace

Status QuantizeFp8(Model& model, const BuildOptions& options, std::vector<std::string>* report,
                   std::vector<std::string>* notes) {
  Graph& g = *model.graph;
  std::vector<Node*> candidates;
  for (Node* n : g.nodes())
    if (IsFp8Candidate(*n)) candidates.push_back(n);
  if (candidates.empty()) {
    notes->push_back("--fp8: no matrix product with a constant weight to quantize");
    return Status::Ok();
  }
  KILN_ASSIGN_OR_RETURN(std::vector<CalibFeed> feeds, Fp8CalibFeeds(model, options.calib, notes));
  // One pass over the calibration inputs gives the ranges, the layers' operands on the first input (the
  // isolated errors) and the model's outputs (the whole-model check's probes).
  std::set<std::string> operands;
  for (const Node* n : candidates) operands.insert({n->input(0)->name(), n->output(0)->name()});
  KILN_ASSIGN_OR_RETURN(CalibRuns runs, MeasureRangesKeeping(model, feeds, operands));
  const std::map<std::string, double>& amax = runs.max_abs;
  const std::string kept = std::string(" stays ") + (options.fp16 ? "FP16" : "FP32") + ": ";
  std::map<std::string, std::string> verdict;  // node name → report line
  std::map<std::string, Fp8Scales> scales;     // the layers that can run FP8
  std::map<std::string, Tensor> e4m3;          // their weights as E4M3 [N, K], made once
  std::vector<Node*> quantizable;
  for (Node* n : candidates) {
    const Tensor& w = *n->input(1)->data;
    const bool trans_b = passes::IsOnnxOp(n, "Gemm") && passes::AttrInt(*n, "transB", 0) != 0;
    const int64_t k = w.dim(trans_b ? 1 : 0), cols = w.dim(trans_b ? 0 : 1);
    if (!Fp8GemmShapeSupported(k, cols)) {
      verdict[n->name] = fmt::format("{}{}K {} and N {} are not multiples of {} (cuBLASLt FP8 needs them)",
                                     n->Label(), kept, k, cols, kFp8GemmAlign);
      continue;
    }
    auto a = amax.find(n->input(0)->name());
    if (a == amax.end() || !(a->second > 0) || !std::isfinite(a->second)) {
      verdict[n->name] = n->Label() + kept + "no FP8 scale for its input '" + n->input(0)->name() +
                         "' (zero or not finite on every calibration input)";
      continue;
    }
    scales[n->name] = {static_cast<float>(a->second) / kE4M3Max, Fp8WeightScale(w)};
    quantizable.push_back(n);
  }

  // The fallback: each layer's isolated FP8 error on the first calibration input, then the whole model's.
  std::set<std::string> keep_float;
  std::map<std::string, double> error;
  if (!quantizable.empty()) {
    const std::string& first = feeds.front().source;
    std::map<std::string, Tensor>& values = runs.first;
    bool missing = false;  // an operand that is not float32 (MeasureRanges keeps those only)
    for (const Node* n : quantizable)
      missing = missing || !values.count(n->input(0)->name()) || !values.count(n->output(0)->name());
    if (missing) {
      auto again = LayerValues(model, quantizable, feeds.front().values);
      if (!again.ok()) return again.status().WithPrefix("FP8 fallback check on " + first);
      values = std::move(*again);
    }
    for (const Node* n : quantizable) {
      const Fp8Scales sc = scales.at(n->name);
      KILN_ASSIGN_OR_RETURN(double e,
                            IsolatedError(
                                model, *n, values[n->input(0)->name()], values[n->output(0)->name()],
                                [&](const Tensor& x) { return FakeQuantE4M3(x, sc.a); },
                                [&](const Tensor& w) { return FakeQuantE4M3(w, sc.w); }));
      error[n->name] = e;
      if (!(e <= options.fp8_fallback_rel_l2)) {
        keep_float.insert(n->name);
        verdict[n->name] = fmt::format("{}{}FP8 rel L2 {:.3g} > {:.3g} (isolated, on {})", n->Label(), kept, e,
                                       options.fp8_fallback_rel_l2, first);
      }
    }
  }
  if (options.fp8_model_rel_l2 > 0 && quantizable.size() > keep_float.size()) {
    std::vector<Probe> probes;
    for (size_t i = 0; i < feeds.size() && i < 4; ++i) probes.push_back({feeds[i].values, runs.outputs[i]});
    const QuantizeExcept quantize = [&](const std::set<std::string>& keep) -> Expected<std::unique_ptr<Model>> {
      std::unique_ptr<Model> q = CloneModel(model);
      KILN_RETURN_IF_ERROR(RewriteAll(*q, scales, keep, &e4m3));
      return q;
    };
    KILN_RETURN_IF_ERROR(WholeModelFallback(quantizable, error, probes, quantize,
                                            {"FP8", "--fp8-model-rel-l2", options.fp8_model_rel_l2, kept},
                                            &keep_float, &verdict, notes));
  }
  for (const Node* n : quantizable) {
    if (verdict.count(n->name)) continue;
    verdict[n->name] = fmt::format(
        "{} runs FP8 E4M3 as kiln.F8MatMul: input scale {:.4g} (amax {:.4g}), weight "
        "scale {:.4g} (per tensor), tensor-core (fast) accumulation, isolated rel L2 "
        "{:.3g}",
        n->Label(), scales.at(n->name).a, amax.at(n->input(0)->name()), scales.at(n->name).w,
        error.at(n->name));
  }
  std::vector<std::string> lines;
  for (const Node* n : candidates) lines.push_back(verdict[n->name]);  // graph order (before the rewrite)
  KILN_RETURN_IF_ERROR(RewriteAll(model, scales, keep_float, &e4m3));
  if (report) report->insert(report->end(), lines.begin(), lines.end());
  return Status::Ok();
}

}  // namespace kiln
