// Conformance baseline file (see conformance_baseline.h).
#include "conformance_baseline.h"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace kiln::cli {
namespace {

// Higher is better: a wrong answer is worse than a clean "not supported".
int Rank(CaseResult r) {
  switch (r) {
    case CaseResult::kPassed:
      return 2;
    case CaseResult::kUnsupported:
      return 1;
    default:
      return 0;
  }
}

bool ParseResult(const std::string& s, CaseResult* r) {
  if (s == "passed") *r = CaseResult::kPassed;
  else if (s == "failed") *r = CaseResult::kFailed;
  else if (s == "unsupported") *r = CaseResult::kUnsupported;
  else return false;
  return true;
}

std::string OneLine(std::string s, size_t max) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

}  // namespace

Expected<std::map<std::string, BaselineCase>> ReadBaseline(const std::string& path) {
  std::ifstream f(path);
  if (!f) return IoError(path + ": cannot open the conformance baseline");
  std::map<std::string, BaselineCase> cases;
  std::string line;
  for (int n = 1; std::getline(f, line); ++n) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream in(line);
    BaselineCase c;
    std::string result;
    in >> c.name >> result;
    if (c.name.empty()) continue;
    if (!ParseResult(result, &c.result))
      return InvalidArgument(path + ":" + std::to_string(n) + ": '" + result +
                             "' is not passed, failed or unsupported");
    std::getline(in >> std::ws, c.reason);
    if (!cases.emplace(c.name, c).second)
      return InvalidArgument(path + ":" + std::to_string(n) + ": case '" + c.name + "' is listed twice");
  }
  return cases;
}

std::string FormatBaseline(const std::vector<BaselineCase>& cases) {
  std::vector<BaselineCase> sorted = cases;
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  std::string out =
      "# kiln conformance baseline: the expected result of each ONNX backend node test on the CPU\n"
      "# reference. `kiln conformance DIR --baseline FILE` fails when a case gets worse; rewrite this\n"
      "# file with `kiln conformance DIR --write-baseline FILE` when cases get better.\n"
      "# case  result  [reason for a case that does not pass]\n";
  for (const BaselineCase& c : sorted) {
    out += c.name + " " + CaseResultName(c.result);
    if (c.result != CaseResult::kPassed && !c.reason.empty()) out += " " + OneLine(c.reason, 160);
    out += "\n";
  }
  return out;
}

BaselineDiff CompareWithBaseline(const std::vector<BaselineCase>& run,
                                 const std::map<std::string, BaselineCase>& baseline, bool filtered) {
  BaselineDiff d;
  std::map<std::string, const BaselineCase*> seen;
  for (const BaselineCase& c : run) {
    seen[c.name] = &c;
    std::string now = std::string(CaseResultName(c.result));
    auto it = baseline.find(c.name);
    if (it == baseline.end()) {
      std::string what = c.name + ": new case, " + now + (c.reason.empty() ? "" : " (" + OneLine(c.reason, 200) + ")");
      (c.result == CaseResult::kPassed ? d.better : d.worse).push_back(what);
      continue;
    }
    int was = Rank(it->second.result), is = Rank(c.result);
    if (is == was) continue;
    std::string what = c.name + ": " + CaseResultName(it->second.result) + " -> " + now +
                       (c.reason.empty() ? "" : " (" + OneLine(c.reason, 200) + ")");
    (is < was ? d.worse : d.better).push_back(what);
  }
  if (!filtered)
    for (const auto& [name, c] : baseline)
      if (!seen.count(name)) d.missing.push_back(name + " (" + CaseResultName(c.result) + " in the baseline)");
  return d;
}

}  // namespace kiln::cli
