// `kiln check`'s content as data (the CLI, tools/kiln/check.cc, prints it;
// the Python package returns it from kiln.check): the verifier's issues, the
// declared shapes against kiln's shape inference, and, for the CUDA backend,
// every node the GPU build would reject (found without a GPU).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ir/verifier.h"
#include "kiln/engine.h"
#include "kiln/status.h"

namespace kiln {

struct CheckOptions {
  bool shapes = true;             // compare declared shapes with shape inference (on a sound model)
  std::string backend = "cpu";    // "cuda": also the GPU gaps (CheckReport::gpu)
  // With cuda: the build to check (precision, fusion, INT8), as `kiln build`
  // with the same options would make it.
  BuildOptions build;
  // With cuda: write the model after the builder's passes here as ONNX (its
  // kiln-domain ops run on kiln's CPU reference; onnxruntime has none of them).
  std::string save_built;
};

struct CheckReport {
  std::vector<Issue> issues;  // CheckModel's, then CheckShapes'
  int64_t ir_version = 0;
  int64_t opset = 0;
  size_t num_nodes = 0;
  // With backend "cuda" on a model without errors: the model after the
  // builder's passes, node by node against the CUDA op table.
  struct Gpu {
    bool checked = false;
    std::string error;                   // the builder's passes failed (then nothing below)
    std::vector<std::string> precision;  // fp16: the nodes that stay FP32, with the reason
    struct Gap {
      std::string node;  // the node's name
      std::string reason;  // names the node, op, input and type
    };
    std::vector<Gap> gaps;                  // nodes the GPU build cannot run
    std::vector<std::string> sync_points;   // nodes after which the GPU runtime syncs (labels)
    size_t num_nodes = 0;                   // after the builder's passes
    std::map<std::string, size_t> op_counts;  // after the builder's passes: "kiln.Pointwise" → 12
    bool probed = false;  // kernel factories asked too (a CUDA build); else declared capabilities only
  } gpu;

  size_t Count(Issue::Severity s) const;
  // No errors, no unsupported nodes and (when checked) no GPU gaps or error.
  bool Valid() const;
};

// Loads the model at `path` leniently (so every problem gets listed) and
// checks it. Only a model that cannot be loaded at all is an error.
Expected<CheckReport> CheckModelFile(const std::string& path, const CheckOptions& options = {});

}  // namespace kiln
