// libFuzzer target: the plan parser (src/plan/plan_file.cc) and what a CPU
// build of Engine::Deserialize does with it: ParsePlan, CheckPlanCompatible,
// then the 'graph' and 'weights' sections through kiln's IR decoder and shape
// inference (ParsePlanGraph).
//
// Each input is parsed twice: as given (so the magic, version, length and
// checksum checks are fuzzed), and with the header's payload size and
// checksum rewritten to match the payload, so mutations reach the section
// table and the graph instead of stopping at the checksum.
#include <cstdint>
#include <cstring>
#include <string>

#include "op_threw.h"
#include "plan/plan_file.h"
#include "plan/plan_graph.h"

namespace {

constexpr size_t kHeaderSize = kiln::kPlanHeaderSize;

void Load(const std::string& bytes) {
  kiln::Expected<kiln::PlanFile> plan = kiln::ParsePlan(bytes.data(), bytes.size());
  if (!plan.ok()) return;
  // Checked, not required: the graph is fuzzed whatever the header says.
  (void)kiln::CheckPlanCompatible(plan->header, KILN_VERSION, "NVIDIA H200", 90);
  auto model = kiln::ParsePlanGraph(*plan);
  if (!model.ok()) kiln_fuzz::NoteIfOpThrew(model.status());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  Load(bytes);
  if (size >= kHeaderSize) {
    const uint64_t payload = size - kHeaderSize;
    const uint64_t checksum = kiln::PlanChecksum(data + kHeaderSize, payload);
    std::memcpy(&bytes[16], &payload, 8);
    std::memcpy(&bytes[24], &checksum, 8);
    Load(bytes);
  }
  return 0;
}
