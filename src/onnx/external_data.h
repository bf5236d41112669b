// Internal to src/onnx: reading ONNX external data (TensorProto.data_location
// = EXTERNAL). Files resolve relative to the model's folder; absolute paths and
// paths that leave the folder (.., symlinks) are refused. Files are memory-
// mapped once and the mapping stays alive while any Tensor borrows from it.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "kiln/status.h"
#include "onnx.pb.h"

namespace kiln {
namespace onnx_internal {

// A byte range of an external data file; `owner` keeps it alive.
struct ExternalBytes {
  const uint8_t* data = nullptr;
  size_t size = 0;
  std::shared_ptr<const void> owner;
};

class ExternalDataReader {
 public:
  // `base_dir`: the model's folder ("" means the current folder).
  ExternalDataReader(std::string base_dir, bool use_mmap);
  // The bytes of the tensor's external data. `what` names the tensor in errors.
  Expected<ExternalBytes> Read(const onnx::TensorProto& proto, const std::string& what) const;

 private:
  struct File;
  Expected<std::shared_ptr<File>> Open(const std::string& location, const std::string& what) const;

  std::string base_dir_;
  bool use_mmap_;
  mutable std::mutex mu_;
  mutable std::map<std::string, std::shared_ptr<File>> files_;  // by canonical path
};

// Whether the tensor's data lives in an external file.
bool UsesExternalData(const onnx::TensorProto& proto);

}  // namespace onnx_internal
}  // namespace kiln
