// Graph passes. A pass is one file with one function
// `Status Run<Name>(Model&, PassContext&)`, listed in pipeline.cc. A pass
// reports whether it changed anything (the pipeline runs to a fixpoint), must
// leave the graph verifier-clean, and never changes what the model computes:
// when it cannot prove a rewrite is exact it leaves the node and adds a warning
// naming it.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln {

struct PassContext {
  // Constant folding never materialises an output larger than this.
  int64_t max_fold_bytes = 64ll << 20;
  // Names of passes to skip (`--skip NAME`).
  std::set<std::string> skip;
  // Set by a pass when it changed the graph.
  bool changed = false;
  // Human-readable notes ("node 'x' (Foo): not folded: ...").
  std::vector<std::string> warnings;
};

using PassFn = Status (*)(Model&, PassContext&);

struct Pass {
  const char* name;  // as used by --skip, e.g. "constant_fold"
  PassFn run;
};

}  // namespace kiln
