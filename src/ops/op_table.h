// The one op table. Every op kiln knows is one line in ops.def (which
// includes the family tables under src/ops/defs/): its domain, name, shape
// inference and CPU reference. Nothing registers itself anywhere else.
#pragma once

#include <string_view>
#include <vector>

#include "ops/op_context.h"

namespace kiln {

using InferFn = Status (*)(InferContext&);
using RunFn = Status (*)(RunContext&);

struct OpInfo {
  std::string_view domain;  // "" = ai.onnx
  std::string_view name;
  InferFn infer;
  RunFn run;  // CPU reference

  // infer and run for callers: an exception thrown inside (a std::length_error
  // or std::bad_alloc from sizes a hostile model or plan makes, a kernel bug)
  // comes back as an Internal error naming the node, op and inputs, not as the
  // end of the process.
  Status Infer(InferContext& ctx) const;
  Status Run(RunContext& ctx) const;
};

// Status messages of those exceptions start with the node's context and hold this.
inline constexpr std::string_view kOpThrew = "the op threw ";

// nullptr when kiln does not know the op. "ai.onnx" is the same as "".
const OpInfo* FindOp(std::string_view domain, std::string_view op_type);
const std::vector<OpInfo>& AllOps();

namespace ops {
// Every function named in ops.def is declared here.
#define KILN_OP(domain, name, infer, run) \
  Status infer(InferContext&);            \
  Status run(RunContext&);
#include "ops/ops.def"
#undef KILN_OP
}  // namespace ops

}  // namespace kiln
