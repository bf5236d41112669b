// libFuzzer target: the .npy reader (src/io/npy.cc). Any bytes must give a
// tensor whose size matches its dims, or a Status error; never a crash.
#include <cstdint>
#include <cstdlib>

#include "io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kiln::Expected<kiln::Tensor> t = kiln::ParseNpy(data, size, "fuzz.npy");
  if (!t.ok()) return 0;
  // A parsed tensor holds what its dims say, and writes back out.
  if (t->dtype() != kiln::DataType::kString && t->numel() > 0 && t->raw() == nullptr) std::abort();
  (void)kiln::EncodeNpy(*t);
  return 0;
}
