#include "plan/plan_config.h"

#include <nlohmann/json.hpp>

namespace kiln {

std::optional<BuildOptions::ConvTactics> ConvTacticsFromName(const std::string& name) {
  using T = BuildOptions::ConvTactics;
  for (T t : {T::kAuto, T::kGraph, T::kLegacy, T::kIm2Col})
    if (name == ConvTacticsName(t)) return t;
  return std::nullopt;
}

const char* ConvTacticsName(BuildOptions::ConvTactics t) {
  switch (t) {
    case BuildOptions::ConvTactics::kGraph:
      return "graph";
    case BuildOptions::ConvTactics::kLegacy:
      return "legacy";
    case BuildOptions::ConvTactics::kIm2Col:
      return "im2col";
    case BuildOptions::ConvTactics::kAuto:
      break;
  }
  return "auto";
}

std::string ConfigToJson(const EngineConfig& c) {
  nlohmann::json j;
  j["fp16"] = c.fp16;
  j["tf32"] = c.tf32;
  j["layout"] = c.nhwc ? "nhwc" : "nchw";
  if (c.fp16) j["fp32_islands"] = c.fp32_islands;
  if (!c.precision.empty()) j["precision"] = c.precision;
  j["workspace_bytes"] = c.workspace_bytes;
  j["conv_tactics"] = ConvTacticsName(c.conv_tactics);
  if (c.cudnn_eng4) j["cudnn_eng4"] = true;
  j["stem_gemm"] = c.stem_gemm;
  j["im2col_conv"] = c.im2col_conv;
  j["gelu_epilogue"] = c.gelu_epilogue;
  j["pack_qkv"] = c.pack_qkv;
  for (const auto& [name, r] : c.profiles)
    j["profiles"][name] = {{"min", r.min}, {"opt", r.opt}, {"max", r.max}};
  j["kernels"] = c.kernels;
  return j.dump();
}

Expected<EngineConfig> ConfigFromJson(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return InvalidArgument("corrupted plan: unreadable 'config' section");
  EngineConfig c;
  c.fp16 = j.value("fp16", false);
  c.tf32 = j.value("tf32", false);
  c.nhwc = j.value("layout", c.fp16 ? "nhwc" : "nchw") == "nhwc";
  c.workspace_bytes = j.value("workspace_bytes", size_t{1} << 30);
  c.fp32_islands = j.value("fp32_islands", false);
  const std::string tactics = j.value("conv_tactics", "auto");
  std::optional<BuildOptions::ConvTactics> t = ConvTacticsFromName(tactics);
  if (!t) return InvalidArgument("corrupted plan: unknown conv_tactics '" + tactics + "'");
  c.conv_tactics = *t;
  c.cudnn_eng4 = j.value("cudnn_eng4", false);
  c.im2col_conv = j.value("im2col_conv", false);
  c.stem_gemm = j.value("stem_gemm", false);  // plans before 2026-12-06 wrote it only when on
  c.gelu_epilogue = j.value("gelu_epilogue", false);
  c.pack_qkv = j.value("pack_qkv", false);
  if (j.contains("precision") && j["precision"].is_array())
    for (const auto& p : j["precision"])
      if (p.is_string()) c.precision.push_back(p.get<std::string>());
  if (j.contains("profiles") && j["profiles"].is_object())
    for (const auto& [name, r] : j["profiles"].items()) {
      if (!r.is_object()) return InvalidArgument("corrupted plan: bad profile for '" + name + "'");
      ShapeRange sr;
      sr.min = r.value("min", std::vector<int64_t>{});
      sr.opt = r.value("opt", std::vector<int64_t>{});
      sr.max = r.value("max", std::vector<int64_t>{});
      c.profiles[name] = sr;
    }
  if (j.contains("kernels") && j["kernels"].is_object())
    c.kernels = j["kernels"].get<std::map<std::string, std::string>>();
  return c;
}

BuildOptions BuildOptionsOf(const EngineConfig& c) {
  BuildOptions o;
  o.fp16 = c.fp16;
  o.tf32 = c.tf32;
  o.fp32_islands = c.fp32_islands;
  o.layout = c.nhwc ? BuildOptions::Layout::kNhwc : BuildOptions::Layout::kNchw;
  o.workspace_bytes = c.workspace_bytes;
  o.conv_tactics = c.conv_tactics;
  o.cudnn_eng4 = c.cudnn_eng4;
  o.stem_gemm = c.stem_gemm;
  o.im2col_conv = c.im2col_conv;
  o.gelu_epilogue = c.gelu_epilogue;
  o.pack_qkv = c.pack_qkv;
  o.profiles = c.profiles;
  return o;
}

}  // namespace kiln
