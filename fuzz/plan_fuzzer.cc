// libFuzzer target: the plan parser (src/plan/plan_file.cc) and what
// Engine::Deserialize does with it: ParsePlan, CheckPlanCompatible, the
// 'graph', 'weights' and 'folded' sections through kiln's IR decoder
// (ParsePlanGraph), then shape inference (a CPU plan's load) and the 'shapes'
// section's program, decoded and evaluated at the inputs' dims (a GPU plan's
// load and SetInputShape).
//
// Each input is parsed twice: as given (so the magic, version, length and
// checksum checks are fuzzed), and with the header's payload size and
// checksum rewritten to match the payload, so mutations reach the section
// table and the graph instead of stopping at the checksum.
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "op_threw.h"
#include "passes/shape_inference.h"
#include "plan/plan_file.h"
#include "plan/plan_graph.h"
#include "runtime/shape_program.h"

namespace {

constexpr size_t kHeaderSize = kiln::kPlanHeaderSize;

void Load(const std::string& bytes) {
  kiln::Expected<kiln::PlanFile> plan = kiln::ParsePlan(bytes.data(), bytes.size());
  if (!plan.ok()) return;
  // Checked, not required: the graph is fuzzed whatever the header says.
  (void)kiln::CheckPlanCompatible(plan->header, KILN_VERSION, "NVIDIA H200", 90);
  auto shapes = plan->sections.find("shapes");
  if (shapes != plan->sections.end()) {
    auto program = kiln::ShapeProgram::Decode(shapes->second);
    if (program.ok()) {
      std::map<std::string, std::vector<int64_t>> dims;
      for (const auto& [name, rank] : program->Inputs())
        dims[name] = std::vector<int64_t>(rank > 0 ? rank : 0, 3);
      (void)program->Evaluate(dims);
    }
  }
  auto model = kiln::ParsePlanGraph(*plan);
  if (!model.ok()) return kiln_fuzz::NoteIfOpThrew(model.status());
  kiln::Status inferred = kiln::InferShapes(**model);
  if (!inferred.ok()) kiln_fuzz::NoteIfOpThrew(inferred);
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
