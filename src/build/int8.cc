// INT8 builds (see int8.h).
#include "build/int8.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "backend/gpu_caps.h"
#include "build/build_passes.h"
#include "build/calibrate.h"
#include "build/calibrate_int8.h"
#include "build/fp8.h"
#include "build/mixed_precision.h"
#include "ir/clone.h"
#include "ir/verifier.h"
#include "passes/fold_qdq.h"
#include "passes/fp16.h"
#include "passes/insert_qdq.h"
#include "passes/pass_util.h"
#include "passes/pipeline.h"
#include "passes/qconv_epilogue.h"

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

// Why a convolution should stay float in a CUDA build, or "": cuBLASLt's INT8
// kernels cannot take it (backend/gpu_caps.h), and the int32 kernel it would
// run instead costs more than INT8 saves (a 7×7 stem of K 147: 6.4 ms at batch
// 32 on an H100, against 0.34 ms in FP16; grouped and depthwise convolutions).
std::string Int8ShapeProblem(const Node& n) {
  // Matrix products are left alone: misaligned ones are small heads (10 classes), cheap on the int32 kernel.
  if (!passes::IsOnnxOp(&n, "Conv")) return "";
  const Tensor& w = *n.input(1)->data;
  const int64_t group = passes::AttrInt(n, "group", 1);
  const int64_t m = w.rank() > 0 ? w.dim(0) : 0, k = m > 0 ? w.numel() / m : 0;
  if (Int8ConvShapeSupported(w.rank() - 2, group, k, m)) return "";
  if (w.rank() != 4 || group != 1)
    return fmt::format("a {}-D convolution of group {} (the INT8 kernels take 2-D convolutions of group 1)",
                       w.rank() - 2, group);
  return fmt::format("K {} (C·kh·kw) and M {} are not both multiples of {} (cuBLASLt INT8 needs them)", k, m,
                     kInt8GemmAlign);
}

// The INT8 layers' float tails into their epilogues, the residual stream in int8 with
// options.int8_residuals (passes/qconv_epilogue.h): part of the INT8 graph the whole-model check measures.
// scales: the calibrated ones, residual branches' outputs among them.
Status FoldEpilogues(Model& model, const BuildOptions& options, const std::map<std::string, float>& scales) {
  if (!options.int8_epilogues) return Status::Ok();
  PassContext ctx;
  QConvEpilogueOptions epilogue;
  epilogue.quantized_residuals = options.int8_residuals;
  if (options.int8_residuals) epilogue.residual_scales = scales;
  return RunQConvEpilogue(model, ctx, epilogue).WithPrefix("qconv_epilogue pass");
}

// The INT8 model (implicit quantization) with ins.keep_float left float.
Expected<std::unique_ptr<Model>> QuantizedInt8(const Model& model, const InsertQdqOptions& ins,
                                               const BuildOptions& options) {
  // ins.act_scales holds every calibrated scale (residual branches' outputs too).
  std::unique_ptr<Model> q = CloneModel(model);
  PassContext ctx;
  KILN_RETURN_IF_ERROR(InsertQdq(*q, ctx, ins).WithPrefix("insert_qdq pass"));
  KILN_RETURN_IF_ERROR(FoldQdq(*q, ctx, nullptr).WithPrefix("fold_qdq pass"));
  KILN_RETURN_IF_ERROR(FoldEpilogues(*q, options, ins.act_scales));
  return q;
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
  // With int8 residuals, a layer output that a residual Add reads (ResNet's downsample) is calibrated too:
  // passes/qconv_epilogue.h writes it in int8 when only the residual reads it.
  if (options.int8_residuals && options.int8_epilogues)
    for (const Node* n : candidates) {
      const Value* y = n->output(0);
      if (y->uses().size() == 1 && passes::IsOnnxOp(y->uses()[0], "Add")) names.push_back(y->name());
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

  InsertQdqOptions ins;
  ins.act_scales = table.scales;
  // Where a layer stays float: FP16 in an --fp16 build (the fp16 pass converts it), else FP32.
  const std::string kept = std::string(" stays ") + (options.fp16 ? "FP16" : "FP32") + ": ";
  std::map<std::string, std::string> verdict;  // node name → report line
  // Convolutions the GPU's INT8 kernels cannot take stay float (the CPU reference takes every shape alike).
  for (const Node* n : candidates) {
    const std::string why =
        options.backend == BuildOptions::Backend::kCuda ? Int8ShapeProblem(*n) : std::string();
    if (why.empty()) continue;
    ins.keep_float.insert(n->name);
    verdict[n->name] = n->Label() + kept + why;
  }
  const std::set<std::string> unsupported = ins.keep_float;
  // The fallback: each candidate's isolated INT8 error on the first calibration input.
  std::map<std::string, double> error;
  if (!from_cache) {
    KILN_ASSIGN_OR_RETURN(std::vector<std::string> samples, ListCalibSamples(options.calib));
    KILN_ASSIGN_OR_RETURN(auto feed, ReadCalibSample(model, samples.front()));
    auto values = LayerValues(model, candidates, feed);
    if (!values.ok()) return values.status().WithPrefix("INT8 fallback check on " + samples.front());
    for (const Node* n : candidates) {
      auto s = table.scales.find(n->input(0)->name());
      if (s == table.scales.end() || unsupported.count(n->name)) continue;
      const float scale = s->second;
      const int axis = Int8WeightAxis(*n);
      KILN_ASSIGN_OR_RETURN(
          double e, IsolatedError(model, *n, (*values)[n->input(0)->name()], (*values)[n->output(0)->name()],
                                  [&](const Tensor& x) { return FakeQuantActivation(x, scale); },
                                  [&](const Tensor& w) { return FakeQuantWeight(w, axis); }));
      error[n->name] = e;
      if (!(e <= options.int8_fallback_rel_l2)) {
        ins.keep_float.insert(n->name);
        verdict[n->name] = fmt::format("{}{}INT8 rel L2 {:.3g} > {:.3g} (isolated, on {})",
                                       n->Label(), kept, e, options.int8_fallback_rel_l2, samples.front());
      }
    }
    if (options.int8_model_rel_l2 > 0) {
      std::vector<Probe> probes;
      for (size_t i = 0; i < samples.size() && i < 4; ++i) {
        KILN_ASSIGN_OR_RETURN(auto f, ReadCalibSample(model, samples[i]));
        KILN_ASSIGN_OR_RETURN(Probe p, MakeProbe(model, std::move(f)));
        probes.push_back(std::move(p));
      }
      const QuantizeExcept quantize = [&](const std::set<std::string>& keep) {
        InsertQdqOptions o = ins;
        o.keep_float = keep;
        return QuantizedInt8(model, o, options);
      };
      KILN_RETURN_IF_ERROR(WholeModelFallback(candidates, error, probes, quantize,
                                              {"INT8", "--int8-model-rel-l2", options.int8_model_rel_l2, kept},
                                              &ins.keep_float, &verdict, notes));
    }
    // The cache keeps the error fallbacks; the shape rule is applied again when it is read.
    for (const std::string& name : ins.keep_float)
      if (!unsupported.count(name)) table.keep_float.insert(name);
    if (!options.calib_cache.empty()) {
      KILN_RETURN_IF_ERROR(WriteCalibCache(table, options.calib_cache));
      notes->push_back("--int8: calibration cache written to " + options.calib_cache);
    }
  } else {
    notes->push_back("--int8: scales and FP32 fallbacks from the calibration cache " + options.calib);
    for (const Node* n : candidates) {
      if (!table.keep_float.count(n->name) || unsupported.count(n->name)) continue;
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
  KILN_RETURN_IF_ERROR(FoldEpilogues(model, options, ins.act_scales));
  KILN_RETURN_IF_ERROR(VerifyModel(model).WithPrefix("qconv_epilogue pass left the model invalid"));
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
