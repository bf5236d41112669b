// One ONNX backend node test case for `kiln conformance`: load the model,
// check every op is in the op table, infer shapes, run the CPU reference on
// each test_data_set_* and compare with the expected outputs. Also the
// comparison rule and the "op under test" grouping, shared with the runner.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"
#include "ops/op_context.h"

namespace kiln::cli {

enum class CaseResult { kPassed, kFailed, kUnsupported };
const char* CaseResultName(CaseResult r);  // "passed", "failed", "unsupported"

struct CaseOutcome {
  CaseResult result = CaseResult::kFailed;
  std::string reason;  // one line; empty when passed
};

struct CaseOptions {
  double rtol = 1e-3;
  double atol = 1e-7;
  // Also require the inferred types of the graph outputs to agree with the
  // values the reference produced (dtype, rank, known dims).
  bool check_inferred = false;
  // The backend under test (e.g. the CUDA engine): graph outputs for the
  // feeds, in order. Empty: the CPU reference. Its Unsupported errors make the
  // case "unsupported".
  std::function<Expected<std::vector<RtValue>>(const Model&, const std::map<std::string, RtValue>&)> run;
};

// Runs the case in `dir` (DIR/test_x). `on_group` is called with the op under
// test as soon as the model is loaded (before anything that might crash).
CaseOutcome RunCase(const std::string& dir, const CaseOptions& options,
                    const std::function<void(const std::string&)>& on_group);

// The op under test: the single node's op type, else the longest known op
// name (from `candidates`) that prefixes the test name (case and '_'
// ignored), else the test name's first word.
std::string GuessGroup(const std::string& test_name, const std::vector<std::string>& candidates);

// "" when `got` matches `want`: same dtype and shape; floats within
// atol + rtol*|want| (NaN equals NaN); everything else exact. Else the reason.
std::string CompareTensors(const Tensor& got, const Tensor& want, double rtol, double atol);
std::string CompareValues(const RtValue& got, const RtValue& want, double rtol, double atol);

}  // namespace kiln::cli
