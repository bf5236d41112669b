#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "fixtures.h"
#include "onnx/import.h"
#include "passes/shape_inference.h"
#include "plan/plan_file.h"
#include "plan/plan_graph.h"

namespace kiln {
namespace {

PlanFile Sample() {
  PlanFile p;
  p.header.kiln_version = "0.1.0";
  p.header.gpu_name = "NVIDIA H100 80GB HBM3";
  p.header.compute_capability = 90;
  p.sections["graph"] = std::string("\x01\x02\x00\x03", 4);
  p.sections["kernels"] = "{}";
  return p;
}

TEST(PlanFile, RoundTrips) {
  std::string bytes = SerializePlan(Sample());
  auto back = ParsePlan(bytes.data(), bytes.size());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->header.gpu_name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(back->header.compute_capability, 90u);
  EXPECT_EQ(back->sections, Sample().sections);
}

// Section bodies start at 64-byte aligned file offsets (the weights can be mapped).
TEST(PlanFile, SectionBodiesAreAligned) {
  std::string bytes = SerializePlan(Sample());
  for (const char* body : {"\x01\x02", "{}"}) {
    size_t at = bytes.find(body);
    ASSERT_NE(at, std::string::npos);
    EXPECT_EQ(at % kPlanSectionAlignment, 0u) << body;
  }
}

TEST(PlanFile, RejectsEveryTruncation) {
  std::string bytes = SerializePlan(Sample());
  for (size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(ParsePlan(bytes.data(), n).ok()) << n;
}

TEST(PlanFile, RejectsCorruptionVersionAndMagic) {
  std::string bytes = SerializePlan(Sample());
  std::string flipped = bytes;
  flipped.back() ^= 0x40;
  EXPECT_NE(ParsePlan(flipped.data(), flipped.size()).status().message().find("checksum"), std::string::npos);
  std::string version = bytes;
  version[8] = 7;
  EXPECT_NE(ParsePlan(version.data(), version.size()).status().message().find("format version 7"),
            std::string::npos);
  std::string magic = bytes;
  magic[0] = 'X';
  EXPECT_NE(ParsePlan(magic.data(), magic.size()).status().message().find("magic"), std::string::npos);
}

// A plan from another kiln or for another compute capability is refused with
// what to do, before anything in it is read.
TEST(PlanFile, OnlyThisKilnAndThisArchitectureLoadIt) {
  PlanHeader h;
  h.kiln_version = "0.1.0";
  h.gpu_name = "NVIDIA H200";
  h.compute_capability = 90;
  EXPECT_TRUE(CheckPlanCompatible(h, "0.1.0", "NVIDIA H200", 90).ok());
  Status other_kiln = CheckPlanCompatible(h, "0.2.0", "NVIDIA H200", 90);
  EXPECT_FALSE(other_kiln.ok());
  EXPECT_NE(other_kiln.message().find("built by kiln 0.1.0, this is kiln 0.2.0; rebuild"), std::string::npos)
      << other_kiln.message();
  Status other_gpu = CheckPlanCompatible(h, "0.1.0", "NVIDIA A100", 80);
  EXPECT_FALSE(other_gpu.ok());
  EXPECT_NE(other_gpu.message().find("built for NVIDIA H200 (sm_90), this GPU is NVIDIA A100 (sm_80)"),
            std::string::npos)
      << other_gpu.message();
}

// ---- plans whose checksum is valid but whose contents are not ----

// A plan from raw payload bytes, with a matching length and checksum.
std::string PlanWithPayload(const std::string& payload, uint32_t count) {
  std::string bytes = SerializePlan(PlanFile{});
  bytes += payload;
  const uint64_t size = payload.size();
  const uint64_t sum = PlanChecksum(payload.data(), payload.size());
  std::memcpy(&bytes[12], &count, 4);
  std::memcpy(&bytes[16], &size, 8);
  std::memcpy(&bytes[24], &sum, 8);
  return bytes;
}

// One section at payload offset `at`, its body padded to an aligned file offset.
std::string Section(const std::string& name, const std::string& body, uint64_t declared_size, size_t at = 0) {
  std::string s(4, '\0');
  const uint32_t n = static_cast<uint32_t>(name.size());
  std::memcpy(&s[0], &n, 4);
  s += name;
  s.append(8, '\0');
  std::memcpy(&s[s.size() - 8], &declared_size, 8);
  s.append((kPlanSectionAlignment - (kPlanHeaderSize + at + s.size()) % kPlanSectionAlignment) % kPlanSectionAlignment,
           '\0');
  return s + body;
}

std::string PlanError(const std::string& bytes) {
  auto plan = ParsePlan(bytes.data(), bytes.size());
  return plan.ok() ? "(parsed)" : plan.status().message();
}

TEST(PlanFile, ValidChecksumOutOfRangeSizesAreErrors) {
  const std::string ok = Section("graph", "abcd", 4);
  ASSERT_EQ(PlanError(PlanWithPayload(ok, 1)), "(parsed)");
  // A section size past the end (and one that would wrap a 64-bit offset).
  EXPECT_EQ(PlanError(PlanWithPayload(Section("graph", "abcd", 5), 1)),
            "corrupted plan: section 'graph' runs past the end");
  EXPECT_EQ(PlanError(PlanWithPayload(Section("graph", "abcd", ~uint64_t{0}), 1)),
            "corrupted plan: section 'graph' runs past the end");
  // A name length past the end.
  std::string long_name = ok;
  const uint32_t huge = 0xFFFFFFFFu;
  std::memcpy(&long_name[0], &huge, 4);
  EXPECT_EQ(PlanError(PlanWithPayload(long_name, 1)), "corrupted plan: section name runs past the end");
  // More sections declared than present, fewer declared than present.
  EXPECT_EQ(PlanError(PlanWithPayload(ok, 0xFFFFFFFFu)), "corrupted plan: section table runs past the end");
  EXPECT_EQ(PlanError(PlanWithPayload(ok + ok, 1)), "corrupted plan: trailing bytes after the last section");
  // The same section twice.
  EXPECT_EQ(PlanError(PlanWithPayload(ok + Section("graph", "xy", 2, ok.size()), 2)),
            "corrupted plan: section 'graph' appears twice");
  // A payload size that disagrees with the file (the checksum alone is not trusted).
  std::string padded = PlanWithPayload(ok, 1);
  const uint64_t wrong = ~uint64_t{0} - 3;
  std::memcpy(&padded[16], &wrong, 8);
  EXPECT_NE(PlanError(padded).find("header says 18446744073709551612 payload bytes"), std::string::npos)
      << PlanError(padded);
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// A plan read from a file keeps its weights where they lie: the constants of
// the decoded graph borrow from the mapping (no copy), stay valid after the
// PlanFile is gone, and the plan re-serializes to the same bytes.
TEST(PlanFile, FileWeightsAreMappedNotCopied) {
  auto loaded = LoadModel(fixtures::ZooModel("resnet18"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_TRUE(InferShapes(**loaded).ok());
  PlanFile plan;
  plan.header.kiln_version = "test";
  WritePlanGraph(**loaded, &plan);
  const std::string path = ::testing::TempDir() + "/mapped.plan";
  ASSERT_TRUE(WritePlanFile(plan, path).ok());
  const std::string written = SerializePlan(plan);

  auto read = ReadPlanFile(path);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->sections.count("weights"), 0u);
  ASSERT_TRUE(read->storage);
  EXPECT_EQ(read->weights.size(), plan.sections["weights"].size());
  EXPECT_EQ(SerializePlan(*read), written);

  auto model = ParsePlanGraph(*read);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const char* lo = read->weights.data();
  const char* hi = lo + read->weights.size();
  size_t mapped = 0, total = 0;
  for (const Value* v : (*model)->graph->values()) {
    if (!v->data || v->data->dtype() == DataType::kString || v->data->nbytes() == 0) continue;
    ++total;
    const char* p = static_cast<const char*>(v->data->raw());
    mapped += p >= lo && p < hi;
  }
  EXPECT_GT(total, 10u);
  EXPECT_EQ(mapped, total);
  // The mapping outlives the PlanFile: the model holds it.
  *read = PlanFile{};
  double sum = 0;
  for (const Value* v : (*model)->graph->values())
    if (v->data && v->data->dtype() == DataType::kFloat && v->data->numel() > 0) sum += v->data->ScalarAt(0);
  EXPECT_TRUE(std::isfinite(sum));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace kiln
