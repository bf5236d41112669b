// ONNX external data: path checks, memory mapping and range checks.
#include "onnx/external_data.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

namespace kiln {
namespace onnx_internal {
namespace fs = std::filesystem;

struct ExternalDataReader::File {
  std::string path;
  size_t size = 0;
  void* map = nullptr;         // mmap'ed contents, or
  std::vector<uint8_t> bytes;  // read contents
  const uint8_t* data() const { return map ? static_cast<const uint8_t*>(map) : bytes.data(); }
  ~File() {
    if (map) munmap(map, size);
  }
};

namespace {

bool ParseUnsigned(const std::string& s, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

// True when `path` is `dir` or lies under it (both canonical).
bool IsUnder(const fs::path& path, const fs::path& dir) {
  auto d = dir.begin();
  auto p = path.begin();
  for (; d != dir.end(); ++d, ++p) {
    if (d->empty()) continue;  // trailing separator
    if (p == path.end() || *p != *d) return false;
  }
  return true;
}

}  // namespace

bool UsesExternalData(const onnx::TensorProto& proto) {
  return proto.has_data_location() && proto.data_location() == onnx::TensorProto::EXTERNAL;
}

ExternalDataReader::ExternalDataReader(std::string base_dir, bool use_mmap)
    : base_dir_(base_dir.empty() ? "." : std::move(base_dir)), use_mmap_(use_mmap) {}

Expected<std::shared_ptr<ExternalDataReader::File>> ExternalDataReader::Open(const std::string& location,
                                                                             const std::string& what) const {
  if (location.empty()) return InvalidArgument(what + ": external data has no 'location'");
  if (location.find('\0') != std::string::npos)
    return InvalidArgument(what + ": external data location contains a NUL byte");
  fs::path rel(location);
  if (rel.is_absolute() || location[0] == '/' || location[0] == '\\')
    return InvalidArgument(what + ": external data location '" + location +
                           "' is an absolute path (must be relative to the model folder)");
  for (const auto& part : rel)
    if (part == "..")
      return InvalidArgument(what + ": external data location '" + location + "' leaves the model folder");
  std::error_code ec;
  fs::path base = fs::canonical(base_dir_, ec);
  if (ec) return IoError(what + ": model folder '" + base_dir_ + "': " + ec.message());
  fs::path full = fs::canonical(base / rel, ec);
  if (ec)
    return IoError(what + ": external data file '" + (fs::path(base_dir_) / rel).string() +
                   "' cannot be opened: " + ec.message());
  if (!IsUnder(full, base))
    return InvalidArgument(what + ": external data location '" + location + "' resolves to '" + full.string() +
                           "', outside the model folder '" + base.string() + "'");

  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(full.string());
  if (it != files_.end()) return it->second;

  int fd = ::open(full.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError(what + ": cannot open external data file '" + full.string() + "': " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return IoError(what + ": external data file '" + full.string() + "' is not a regular file");
  }
  auto file = std::make_shared<File>();
  file->path = full.string();
  file->size = static_cast<size_t>(st.st_size);
  if (file->size > 0) {
    if (use_mmap_) {
      void* p = mmap(nullptr, file->size, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        return IoError(what + ": cannot map external data file '" + full.string() + "': " + std::strerror(errno));
      }
      file->map = p;
    } else {
      file->bytes.resize(file->size);
      size_t done = 0;
      while (done < file->size) {
        ssize_t n = ::read(fd, file->bytes.data() + done, file->size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          ::close(fd);
          return IoError(what + ": cannot read external data file '" + full.string() + "'");
        }
        done += static_cast<size_t>(n);
      }
    }
  }
  ::close(fd);
  files_[file->path] = file;
  return file;
}

Expected<ExternalBytes> ExternalDataReader::Read(const onnx::TensorProto& proto, const std::string& what) const {
  std::string location;
  uint64_t offset = 0, length = 0;
  bool has_length = false;
  for (const auto& kv : proto.external_data()) {
    if (kv.key() == "location") {
      location = kv.value();
    } else if (kv.key() == "offset") {
      if (!ParseUnsigned(kv.value(), &offset))
        return InvalidArgument(what + ": external data offset '" + kv.value() + "' is not a valid byte offset");
    } else if (kv.key() == "length") {
      if (!ParseUnsigned(kv.value(), &length))
        return InvalidArgument(what + ": external data length '" + kv.value() + "' is not a valid byte count");
      has_length = true;
    }
  }
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<File> file, Open(location, what));
  if (offset > file->size)
    return OutOfRange(what + ": external data offset " + std::to_string(offset) + " is past the end of '" +
                      file->path + "' (" + std::to_string(file->size) + " bytes)");
  if (!has_length) length = file->size - offset;
  if (length > file->size - offset)
    return OutOfRange(what + ": external data range [" + std::to_string(offset) + ", " +
                      std::to_string(offset) + "+" + std::to_string(length) + ") is past the end of '" +
                      file->path + "' (" + std::to_string(file->size) + " bytes)");
  ExternalBytes out;
  out.data = file->data() + offset;
  out.size = static_cast<size_t>(length);
  out.owner = file;
  return out;
}

}  // namespace onnx_internal
}  // namespace kiln
