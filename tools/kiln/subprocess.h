// Runs another program (the project's Python for onnxruntime) and captures
// what it prints.
#pragma once

#include <string>
#include <vector>

#include "kiln/status.h"

namespace kiln::cli {

struct ProcessResult {
  int exit_code = -1;  // -1: killed by a signal
  std::string output;  // stdout and stderr, interleaved
};

// Runs argv[0] (looked up in PATH) with the arguments argv[1..] and waits for
// it. An error only when it could not be started (then the message names it).
Expected<ProcessResult> RunProcess(const std::vector<std::string>& argv);

}  // namespace kiln::cli
