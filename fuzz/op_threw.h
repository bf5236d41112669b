// An op that throws is an Internal error, not a crash (OpInfo::Infer/Run), so
// libFuzzer no longer stops on it. The fuzz targets print each such error
// (the first 20) to stderr instead, where tools/fuzz.sh finds it and lists it
// in its summary: the bug is still seen, and the node it names says where.
#pragma once

#include <cstdio>
#include <string>

#include "ops/op_table.h"

namespace kiln_fuzz {

inline void NoteIfOpThrew(const std::string& message) {
  static int printed = 0;
  if (message.find(kiln::kOpThrew) == std::string::npos || printed >= 20) return;
  ++printed;
  std::fprintf(stderr, "kiln-fuzz: op threw: %s\n", message.c_str());
}

}  // namespace kiln_fuzz
