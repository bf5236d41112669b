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

}  // namespace
}  // namespace kiln
