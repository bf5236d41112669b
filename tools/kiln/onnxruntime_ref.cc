// onnxruntime as `kiln compare`'s reference (see onnxruntime_ref.h).
#include "onnxruntime_ref.h"

#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "feeds.h"
#include "io/npy.h"
#include "subprocess.h"

namespace kiln::cli {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the system's temp dir, removed with this object.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ =
        fs::temp_directory_path() / ("kiln_compare_" + std::to_string(getpid()) + "_" + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// The last `n` characters of a program's output, without trailing blanks.
std::string Tail(std::string s, size_t n) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s.size() > n ? "..." + s.substr(s.size() - n) : s;
}

}  // namespace

std::string CompareScript() {
  const char* env = std::getenv("KILN_COMPARE_SCRIPT");
  return env && *env ? env : KILN_SOURCE_DIR "/tools/compare_intermediates.py";
}

Expected<ReferenceValues> RunOnnxruntime(const std::string& python, const std::string& model_path,
                                         const std::vector<std::string>& names,
                                         const std::map<std::string, RtValue>& feeds) {
  TempDir tmp;
  std::vector<std::string> argv = {python, CompareScript(), model_path};
  int i = 0;
  for (const auto& [name, v] : feeds) {
    if (v.kind != ValueKind::kTensor)
      return Unsupported("input '" + name + "': only tensor inputs can be passed to onnxruntime");
    std::string note, path = (tmp.path() / ("input_" + std::to_string(i++) + ".npy")).string();
    KILN_RETURN_IF_ERROR(WriteNpy(path, NpyWritable(v.tensor, &note)));
    argv.push_back("--input");
    argv.push_back(name + "=" + path);
  }
  const fs::path names_file = tmp.path() / "names.txt", out_dir = tmp.path() / "reference";
  {
    std::ofstream f(names_file);
    for (const std::string& n : names) f << n << "\n";
    if (!f) return Internal("cannot write " + names_file.string());
  }
  argv.insert(argv.end(), {"--names-file", names_file.string(), "--reference-dir", out_dir.string()});
  auto run = RunProcess(argv);
  if (!run.ok())
    return NotFound("onnxruntime reference: " + run.status().message() +
                    " (choose the Python with --python or KILN_PYTHON)");
  if (run->exit_code == 3)
    return Unsupported("onnxruntime reference: " + Tail(run->output, 600) +
                       " (or choose another Python with --python / KILN_PYTHON)");
  if (run->exit_code != 0)
    return Internal("onnxruntime reference (" + python + " " + CompareScript() + ") failed with exit code " +
                    std::to_string(run->exit_code) + ": " + Tail(run->output, 2000));

  ReferenceValues r;
  std::ifstream skipped(out_dir / "skipped.tsv");
  for (std::string line; std::getline(skipped, line);) {
    size_t tab = line.find('\t');
    if (tab != std::string::npos) r.skipped[line.substr(0, tab)] = line.substr(tab + 1);
  }
  for (size_t k = 0; k < names.size(); ++k) {
    if (r.skipped.count(names[k])) continue;
    auto t = ReadNpy((out_dir / (std::to_string(k) + ".npy")).string());
    if (!t.ok()) return Internal("onnxruntime reference: value '" + names[k] + "': " + t.status().message());
    r.values[names[k]] = std::move(*t);
  }
  return r;
}

}  // namespace kiln::cli
