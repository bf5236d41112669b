// An op that throws is an Internal error, not a crash (OpInfo::Infer/Run), so
// libFuzzer no longer stops on it. The fuzz targets print each such error
// (the first 20) to stderr instead, where tools/fuzz.sh finds it and lists it
// in its summary: the bug is still seen, and the node it names says where.
#pragma once

#include <cstdio>
#include <string>

#include "ops/op_table.h"

namespace kiln_fuzz {

// By the status code too: libFuzzer learns the marker from this very search
// and writes it into value names, whose errors then quote it.
inline void NoteIfOpThrew(const kiln::Status& s) {
  static int printed = 0;
  if (s.code() != kiln::StatusCode::kInternal || s.message().find(kiln::kOpThrew) == std::string::npos ||
      printed >= 20)
    return;
  ++printed;
  std::fprintf(stderr, "kiln-fuzz: op threw: %s\n", s.message().c_str());
}

}  // namespace kiln_fuzz
