#include <gtest/gtest.h>

#include "plan/plan_file.h"

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

}  // namespace
}  // namespace kiln
