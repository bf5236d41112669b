// The conformance baseline: the expected result of every node-test case
// (tests/conformance/expected.txt), so a regression in one case fails the run
// even while the pass rate stays high. One line per case:
//   test_name  passed|failed|unsupported  [reason]
// ('#' starts a comment). `kiln conformance --baseline FILE` compares a run
// with it; `--write-baseline FILE` writes the run as the new baseline.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "conformance_case.h"
#include "kiln/status.h"

namespace kiln::cli {

struct BaselineCase {
  std::string name;
  CaseResult result = CaseResult::kFailed;
  std::string reason;
};

Expected<std::map<std::string, BaselineCase>> ReadBaseline(const std::string& path);

// The text of a baseline file for these cases (sorted by name).
std::string FormatBaseline(const std::vector<BaselineCase>& cases);

struct BaselineDiff {
  std::vector<std::string> worse;    // passed → failed/unsupported, unsupported → failed, new and not passing
  std::vector<std::string> better;   // the other way round, and new cases that pass
  std::vector<std::string> missing;  // in the baseline, not in the run
  bool ok() const { return worse.empty() && missing.empty(); }
};

// `run` against `baseline`. With `filtered`, cases of the baseline that the
// run did not select are not reported missing.
BaselineDiff CompareWithBaseline(const std::vector<BaselineCase>& run,
                                 const std::map<std::string, BaselineCase>& baseline, bool filtered);

}  // namespace kiln::cli
