// The engine inspector behind `kiln inspect PLAN [--json]` (docs/PLAN.md,
// "Inspecting a plan"): each kernel step of a plan in schedule order, with
// the node, its op and kernel, the ONNX ops (and, for generated kernels, the
// original nodes) fused into it, the tactic the build chose when the plan's
// tactic cache recorded one, its element types, and the bytes it reads and
// writes at the profile's opt shapes (shape inference on the plan's graph with
// the opt dims; each input and output tensor counted once, weights included,
// values the op reads on the host excluded).
//
// Works on the decoded graph alone (no GPU, no CUDA): a model that went
// through the build passes and CompilePointwiseKernels on the CPU inspects
// like a built plan, less the tactics. Part of kiln_runtime (no protobuf,
// importer or passes).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "plan/plan_config.h"
#include "plan/plan_file.h"
#include "plan/plan_tactics.h"

namespace kiln {

struct InspectedTensor {
  std::string name;
  std::string dtype;             // "float16"; "" when unknown
  std::string shape;             // at the opt shapes: "[1,64,56,56]" (symbols or "?" when unknown)
  std::optional<int64_t> bytes;  // nullopt when the shape is not concrete
};

struct InspectedStep {
  size_t index = 0;    // position among the graph's nodes (schedule order)
  std::string node;    // the plan node's name
  std::string op;      // "Conv", "kiln.Pointwise"
  std::string kernel;  // what runs it: the CUDA op table row, "generated: <entry>" for kiln.Pointwise,
                       // "branch inlined at each shape", or "no CUDA kernel: <reason>"
  std::vector<std::string> fused_ops;  // the ONNX ops this step computes, in order
  std::vector<std::string>
      fused_nodes;         // their original node names, when the plan keeps them (kiln.Pointwise)
  std::string detail;      // op specifics: activation, layout, row kernel, cubin size
  std::string tactic;      // the timed choice, readable ("" when none was recorded)
  std::string tactic_key;  // the tactic cache key it used
  std::string precision;   // element types: "float16", "int8 -> float32"
  std::vector<InspectedTensor> inputs, outputs;
  std::optional<int64_t> bytes_read, bytes_written;  // nullopt when a shape is unknown
};

struct PlanInspection {
  PlanHeader header;
  EngineConfig config;
  std::map<std::string, std::vector<int64_t>> opt_shapes;  // per runtime input
  std::vector<std::string> notes;                          // e.g. dynamic inputs without a profile
  std::string shape_error;           // shape inference at the opt shapes, when it failed
  std::vector<InspectedStep> steps;  // kernel steps only
  size_t num_nodes = 0, host_nodes = 0, alias_nodes = 0;
  int64_t bytes_read = 0, bytes_written = 0;  // over the steps whose shapes are known
  size_t tactics = 0;                         // entries in the plan's tactic cache
  // The plan's shape program (GPU plans): whether the lean runtime runs it alone ("complete: ...")
  // or needs kiln::BuilderLoadOptions() ("incomplete: <why>"); empty without a 'shapes' section.
  std::string shape_program;
};

// Inspects a model decoded from a plan (or any graph with inferred shapes):
// `config` gives the profiles (opt shapes) and precision, `tactics` the
// tactic cache. The model is not modified (shapes are inferred on a copy).
Expected<PlanInspection> InspectPlanModel(const Model& model, const EngineConfig& config,
                                          const PlanTactics& tactics);
// The plan's graph, config and tactic sections, inspected.
Expected<PlanInspection> InspectPlan(const PlanFile& plan);

// A readable cuDNN convolution choice from the tactic cache's text form
// ("algo:time_ms:workspace:math;..." → "cuDNN IMPLICIT_PRECOMP_GEMM, 0.0123 ms,
// ... (first of 5 timed)"); other entries are returned as they are.
std::string DescribeTactic(const std::string& key, const std::string& choice);

std::string PlanInspectionText(const PlanInspection& r);
std::string PlanInspectionJson(const PlanInspection& r);

}  // namespace kiln
