// libFuzzer target: the ONNX loader (src/onnx/), the verifier (src/ir/verifier.cc)
// and shape inference (src/passes/shape_inference.cc), as `kiln check` runs them:
// strict load, VerifyModel, InferShapes; and the lenient load with CheckModel
// and CheckShapes.
// Any bytes must give a model or a Status error; never a crash, a leak or a
// runaway allocation (run with -rss_limit_mb).
//
// External data resolves against a scratch folder holding one 256-byte file,
// "w.bin", so locations, offsets and lengths are exercised without touching
// anything else.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ir/verifier.h"
#include "onnx/import.h"
#include "op_threw.h"
#include "passes/shape_inference.h"

namespace {

std::string ScratchFolder() {
  static const std::string dir = [] {
    std::filesystem::path d =
        std::filesystem::temp_directory_path() / ("kiln_fuzz_onnx_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    std::ofstream f(d / "w.bin", std::ios::binary);
    for (int i = 0; i < 256; ++i) f.put(static_cast<char>(i));
    static const std::filesystem::path remove_at_exit = d;
    std::atexit([] { std::filesystem::remove_all(remove_at_exit); });
    return d.string();
  }();
  return dir;
}

void Check(const uint8_t* data, size_t size, bool strict) {
  kiln::LoadOptions options;
  options.strict = strict;
  options.mmap_external_data = false;
  auto model = kiln::ParseModel(data, size, ScratchFolder(), options);
  if (!model.ok()) return;
  if (strict) {
    if (!kiln::VerifyModel(**model).ok()) return;
    kiln::ShapeInferenceOptions si;
    si.tolerate_errors = true;
    std::vector<std::string> errors;
    si.errors = &errors;
    (void)kiln::InferShapes(**model, si);
    // The tolerant run keeps messages only; a strict one gives the first
    // error's code, which tells an op that threw from a name quoting it.
    for (const std::string& e : errors) {
      if (e.find(kiln::kOpThrew) == std::string::npos) continue;
      auto again = kiln::ParseModel(data, size, ScratchFolder(), options);
      if (again.ok()) kiln_fuzz::NoteIfOpThrew(kiln::InferShapes(**again));
      break;
    }
  } else {
    (void)kiln::CheckModel(**model);
    (void)kiln::CheckShapes(**model);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Check(data, size, /*strict=*/true);
  Check(data, size, /*strict=*/false);
  return 0;
}
