#include "gpu_flags.h"

#include <cctype>

#include "cli_util.h"

namespace kiln::cli {

Expected<std::map<std::string, ShapeRange>> ParseProfiles(const std::vector<std::string>& min,
                                                          const std::vector<std::string>& opt,
                                                          const std::vector<std::string>& max) {
  KILN_ASSIGN_OR_RETURN(auto mins, ParseShapes(min));
  KILN_ASSIGN_OR_RETURN(auto opts, ParseShapes(opt));
  KILN_ASSIGN_OR_RETURN(auto maxs, ParseShapes(max));
  std::map<std::string, ShapeRange> out;
  auto names = [&](const auto& m) {
    for (const auto& [k, v] : m) out[k];
  };
  names(mins);
  names(opts);
  names(maxs);
  for (auto& entry : out) {  // not a structured binding: C++17 lambdas cannot capture one (clang rejects it)
    const std::string& name = entry.first;
    ShapeRange& r = entry.second;
    auto get = [&](const auto& m) -> const std::vector<int64_t>* {
      auto it = m.find(name);
      return it == m.end() ? nullptr : &it->second;
    };
    const auto *lo = get(mins), *mid = get(opts), *hi = get(maxs);
    if (!mid && (!lo || !hi))
      return InvalidArgument("profile for '" + name + "': give --optShapes, or both --minShapes and --maxShapes");
    r.opt = mid ? *mid : *hi;
    r.min = lo ? *lo : r.opt;
    r.max = hi ? *hi : r.opt;
  }
  return out;
}

Expected<size_t> ParseMemPoolSize(const std::string& spec) {
  auto colon = spec.find(':');
  std::string pool = colon == std::string::npos ? "workspace" : spec.substr(0, colon);
  std::string num = colon == std::string::npos ? spec : spec.substr(colon + 1);
  if (pool != "workspace")
    return InvalidArgument("--memPoolSize: unknown pool '" + pool + "' (supported: workspace)");
  if (num.empty()) return InvalidArgument("--memPoolSize: missing size in '" + spec + "'");
  size_t mult = size_t{1} << 20;
  char last = static_cast<char>(std::toupper(static_cast<unsigned char>(num.back())));
  if (last == 'K' || last == 'M' || last == 'G') {
    mult = last == 'K' ? (size_t{1} << 10) : last == 'M' ? (size_t{1} << 20) : (size_t{1} << 30);
    num.pop_back();
  }
  char* end = nullptr;
  double v = std::strtod(num.c_str(), &end);
  if (num.empty() || !end || *end || v <= 0)
    return InvalidArgument("--memPoolSize: cannot read a size from '" + spec + "' (e.g. workspace:1024M)");
  return static_cast<size_t>(v * static_cast<double>(mult));
}

}  // namespace kiln::cli
