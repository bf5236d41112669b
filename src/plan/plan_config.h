// The plan's 'config' section (JSON): what the builder chose that the runtime
// and a refit need — precision, the activation layout of the build passes,
// workspace limit, profiles, and the kernel chosen per node (for reports).
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kiln/engine.h"

namespace kiln {

struct EngineConfig {
  bool fp16 = false;
  bool tf32 = false;
  bool nhwc = false;  // the build ran layout_nhwc (channels-last convolutions)
  // With fp16: the build kept FP32 islands (passes/fp32_islands.h). Plans
  // without the key predate the islands: false, so refit re-runs the old passes.
  bool fp32_islands = false;
  std::vector<std::string> precision;  // the precision report: nodes that stayed FP32, and why
  size_t workspace_bytes = size_t{1} << 30;
  BuildOptions::ConvTactics conv_tactics = BuildOptions::ConvTactics::kAuto;
  bool cudnn_eng4 = false;  // BuildOptions::cudnn_eng4
  bool stem_gemm = false;  // the build ran stem_im2col (--stem-gemm)
  bool im2col_conv = false;  // the build ran im2col_conv (plans before 2026-12-07 have no key: it did not)
  // The build ran gelu_epilogue / pack_qkv (plans before 2026-12-07 have no key: they predate both, and a
  // refit re-runs the passes without them).
  bool gelu_epilogue = false;
  bool pack_qkv = false;
  std::map<std::string, ShapeRange> profiles;
  std::map<std::string, std::string> kernels;  // node name → kernel chosen (report)
};

// "auto", "graph", "legacy", "im2col" (--conv-tactics); nullopt for another name.
std::optional<BuildOptions::ConvTactics> ConvTacticsFromName(const std::string& name);
const char* ConvTacticsName(BuildOptions::ConvTactics t);

std::string ConfigToJson(const EngineConfig& config);
// Error "corrupted plan: ..." naming what is unreadable.
Expected<EngineConfig> ConfigFromJson(const std::string& text);
// The build options that give the plan's graph from its ONNX model (refit
// re-runs the build passes with them).
BuildOptions BuildOptionsOf(const EngineConfig& config);

}  // namespace kiln
