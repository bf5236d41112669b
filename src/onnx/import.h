// ONNX protobuf → kiln IR, and back.
#pragma once

#include <memory>
#include <string>

#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln {

struct LoadOptions {
  // Memory-map external data files (else read them).
  bool mmap_external_data = true;
  // When true (default), structural problems fail the load: a name no node,
  // input or initializer defines, two producers of one name, duplicate graph
  // output names, a cycle; nodes are put in topological order. When false
  // (`kiln check`), such models still load (an undefined name becomes a value
  // with no producer, a second producer gets its own value of the same name,
  // node order is kept) so CheckModel (ir/verifier.h) can list every problem.
  bool strict = true;
};

// Loads an .onnx file; external data resolves relative to the file's folder.
// Errors name the file and, where it applies, the tensor/node.
Expected<std::unique_ptr<Model>> LoadModel(const std::string& path, const LoadOptions& options = {});
// Parses a serialized ModelProto held in memory. `base_dir` resolves external data.
Expected<std::unique_ptr<Model>> ParseModel(const void* data, size_t size, const std::string& base_dir,
                                            const LoadOptions& options = {});
// Reads a serialized TensorProto file (the backend tests' input_N.pb).
Expected<Tensor> LoadTensorFile(const std::string& path);

struct SaveOptions {
  // Initializers at least this large go to an external data file beside the
  // model (<model file>.data) when external_data is set; required > 2 GB.
  bool external_data = false;
  size_t external_threshold_bytes = 1024;
};
// Writes the model as ONNX (same opsets, IR version, IO names and order).
Status SaveModel(const Model& model, const std::string& path, const SaveOptions& options = {});
// Serialized ModelProto in memory, every initializer inline (errors past the
// 2 GB protobuf limit). Used by the plan writer; pairs with ParseModel.
Expected<std::string> SerializeModel(const Model& model);

}  // namespace kiln
