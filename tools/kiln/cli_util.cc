// Helpers shared by the kiln CLI's subcommands (see cli_util.h).
#include "cli_util.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>

namespace kiln::cli {

int Fail(const std::string& cmd, const std::string& message) {
  std::string m = message;
  for (char& c : m)
    if (c == '\n') c = ' ';
  std::fprintf(stderr, "kiln %s: error: %s\n", cmd.c_str(), m.c_str());
  return 1;
}

void Warn(const std::string& cmd, const std::string& message) {
  std::fprintf(stderr, "kiln %s: warning: %s\n", cmd.c_str(), message.c_str());
}

namespace {

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t p = s.find(sep, start);
    parts.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) break;
    start = p + 1;
  }
  return parts;
}

Status ShapeSyntax(const std::string& item, const std::string& why) {
  return InvalidArgument("bad --shapes entry '" + item + "': " + why +
                         " (expected NAME:DxDx..., e.g. input:1x3x224x224; NAME: for a scalar)");
}

}  // namespace

Expected<std::map<std::string, std::vector<int64_t>>> ParseShapes(const std::vector<std::string>& specs) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const std::string& spec : specs) {
    for (const std::string& item : Split(spec, ',')) {
      if (item.empty()) continue;
      size_t colon = item.rfind(':');
      if (colon == std::string::npos) return ShapeSyntax(item, "no ':'");
      std::string name = item.substr(0, colon);
      std::string dims_text = item.substr(colon + 1);
      if (name.empty()) return ShapeSyntax(item, "empty input name");
      std::vector<int64_t> dims;
      if (!dims_text.empty()) {
        for (const std::string& d : Split(dims_text, 'x')) {
          if (d.empty() || d.size() > 15 || d.find_first_not_of("0123456789") != std::string::npos)
            return ShapeSyntax(item, "'" + d + "' is not a non-negative integer dimension");
          dims.push_back(std::stoll(d));
        }
      }
      if (out.count(name)) return ShapeSyntax(item, "input '" + name + "' given twice");
      out[name] = std::move(dims);
    }
  }
  return out;
}

std::string SanitizeFileName(const std::string& name) {
  std::string out = name;
  for (char& c : out)
    if (c == '/' || c == ':' || c == '\\' || c == '\0') c = '_';
  if (out.empty() || out == "." || out == "..") out = "_" + out;
  return out;
}

TensorStats ComputeStats(const Tensor& t) {
  TensorStats s;
  switch (t.dtype()) {
    case DataType::kString:
    case DataType::kUndefined:
    case DataType::kComplex64:
    case DataType::kComplex128:
    case DataType::kFloat8E4M3FN:
    case DataType::kFloat8E4M3FNUZ:
    case DataType::kFloat8E5M2:
    case DataType::kFloat8E5M2FNUZ:
    case DataType::kFloat8E8M0:
    case DataType::kFloat4E2M1:
      return s;
    default:
      break;
  }
  s.numeric = true;
  double sum = 0;
  s.min = std::numeric_limits<double>::infinity();
  s.max = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = t.ScalarAt(i);
    if (std::isnan(v)) {
      ++s.nan;
      continue;
    }
    ++s.count;
    sum += v;
    s.min = std::min(s.min, v);
    s.max = std::max(s.max, v);
  }
  s.mean = s.count ? sum / static_cast<double>(s.count) : 0.0;
  if (!s.count) s.min = s.max = 0;
  return s;
}

std::string FormatStats(const TensorStats& s) {
  if (!s.numeric || (s.count == 0 && s.nan == 0)) return "";
  std::string out;
  if (s.count) out = fmt::format("min {:.6g} max {:.6g} mean {:.6g}", s.min, s.max, s.mean);
  if (s.nan) out += std::string(out.empty() ? "" : " ") + "nan " + std::to_string(s.nan);
  return out;
}

}  // namespace kiln::cli
