// Helpers shared by the kiln CLI's subcommands: error reporting, the
// --shapes flag, file-name sanitizing, tensor statistics, number formatting.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"
#include "kiln/status.h"
#include "report/inspect.h"

namespace kiln::cli {

// Prints "kiln <cmd>: error: <message>" to stderr; returns 1 (the exit code).
int Fail(const std::string& cmd, const std::string& message);
// Prints "kiln <cmd>: warning: <message>" to stderr.
void Warn(const std::string& cmd, const std::string& message);

// Parses --shapes values: "NAME:1x3x224x224,NAME2:4" (several flags allowed).
// The name ends at the last ':' so names such as "input:0" work; "NAME:" is a
// scalar. Errors explain the expected syntax.
Expected<std::map<std::string, std::vector<int64_t>>> ParseShapes(const std::vector<std::string>& specs);

// RuntimeInputs, ConcreteDims, HumanCount, HumanBytes: the library's (report/inspect.h).
using kiln::ConcreteDims;
using kiln::HumanBytes;
using kiln::HumanCount;
using kiln::RuntimeInputs;

// "a/b:0" → "a_b_0": safe as a file name.
std::string SanitizeFileName(const std::string& name);

// Summary of a tensor's values (numeric types; NaNs counted, not folded in).
struct TensorStats {
  bool numeric = false;
  int64_t count = 0;  // finite-or-inf values folded into min/max/mean
  int64_t nan = 0;
  double min = 0, max = 0, mean = 0;
};
TensorStats ComputeStats(const Tensor& t);
// "min -0.98 max 1.2 mean 0.013" (+ " nan 3"), or "" for non-numeric/empty tensors.
std::string FormatStats(const TensorStats& s);

}  // namespace kiln::cli
