// SerializeModel: the model as ModelProto bytes in memory (for the plan file).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "onnx/import.h"

namespace kiln {

Expected<std::string> SerializeModel(const Model& model) {
  // Through SaveModel so there is one exporter; a private temp file keeps it simple.
  std::string tmpl = (std::filesystem::temp_directory_path() / "kiln-model-XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  int fd = mkstemp(buf.data());
  if (fd < 0) return IoError("cannot create a temporary file for model serialization");
  close(fd);
  std::string path(buf.data());
  Status s = SaveModel(model, path, SaveOptions{});
  std::string bytes;
  if (s.ok()) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    bytes = ss.str();
  }
  std::remove(path.c_str());
  if (!s.ok()) return s;
  return bytes;
}

}  // namespace kiln
