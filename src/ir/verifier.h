// Structural validation of the IR: every name defined once and in scope, no
// dangling references or cycles, nodes in topological order, supported IR and
// opset versions, attribute types of well-known ops, initializer data matching
// its type. Passes must leave a model VerifyModel-clean; `kiln check` prints
// CheckModel's list (plus CheckShapes and unsupported ops).
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln {

struct Issue {
  enum class Severity {
    kError,        // the model is invalid
    kUnsupported,  // valid ONNX that kiln cannot run (an op missing from the op table)
    kWarning,      // suspicious but runnable (e.g. a declared shape inference disagrees with)
  };
  Severity severity = Severity::kError;
  std::string node;     // name of the node concerned, "" when none
  std::string message;  // one line, names the node/value/graph: "node 'c1' (Conv): attribute ..."

  // "error: <message>", "unsupported: <message>", "warning: <message>".
  std::string ToString() const;
};
const char* SeverityName(Issue::Severity s);

struct VerifyOptions {
  // List nodes whose op kiln's op table lacks (Severity kUnsupported).
  bool check_op_support = true;
};

// Every problem found, in graph order (subgraphs after their node's own
// issues). Does not modify the model.
std::vector<Issue> CheckModel(const Model& model, const VerifyOptions& options = {});

// Ok when CheckModel finds no kError issue; else InvalidArgument with the first
// error's message (and how many more there are). Unsupported ops are not errors.
Status VerifyModel(const Model& model);

// Runs shape inference (tolerating op errors; it updates the model's types)
// and reports declared types (value_info, graph outputs) that contradict the
// inferred ones: element type, rank or a known dim (Severity kError).
std::vector<Issue> CheckShapes(Model& model);

}  // namespace kiln
