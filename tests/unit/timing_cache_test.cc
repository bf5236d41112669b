// The timing cache file (src/build/timing_cache.h, `kiln build
// --timingCacheFile`): round trip, and a clear error for every way a file can
// be damaged or belong to another GPU. The reuse itself needs a GPU
// (tests/gpu/build_determinism_gpu_test.cc).
#include "build/timing_cache.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "fixtures.h"
#include "plan/plan_file.h"

namespace kiln {
namespace {

TimingCache Sample() {
  TimingCache c;
  c.gpu_name = "NVIDIA H200";
  c.compute_capability = 90;
  c.kiln_version = "1.2.3";
  c.entries["conv t2 d:1:64:56:56"] = "1:0.0213:4096:1;0:0.0305:0:1;";
  c.entries["conv t0 d:1:3:224:224"] = "6:0.1:0:0;";
  return c;
}

void ExpectError(const Expected<TimingCache>& r, const std::string& words) {
  ASSERT_FALSE(r.ok()) << "expected an error containing '" << words << "'";
  EXPECT_NE(r.status().message().find(words), std::string::npos) << r.status().message();
}

TEST(TimingCache, RoundTrips) {
  const TimingCache c = Sample();
  const std::string bytes = SerializeTimingCache(c);
  ASSERT_GE(bytes.size(), kTimingCacheHeaderSize);
  auto back = ParseTimingCache(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->gpu_name, c.gpu_name);
  EXPECT_EQ(back->compute_capability, c.compute_capability);
  EXPECT_EQ(back->kiln_version, c.kiln_version);
  EXPECT_EQ(back->entries, c.entries);
  EXPECT_EQ(SerializeTimingCache(*back), bytes) << "serialization is not deterministic";
  EXPECT_TRUE(CheckTimingCacheCompatible(*back, "NVIDIA H200", 90).ok());
}

TEST(TimingCache, RejectsDamagedFiles) {
  const std::string good = SerializeTimingCache(Sample());
  ExpectError(ParseTimingCache(""), "not a kiln timing cache");
  ExpectError(ParseTimingCache("KILNPLAN" + good.substr(8)), "not a kiln timing cache");
  ExpectError(ParseTimingCache(good.substr(0, kTimingCacheHeaderSize - 1)), "not a kiln timing cache");

  std::string version = good;
  version[8] = 7;
  ExpectError(ParseTimingCache(version), "format version 7");

  ExpectError(ParseTimingCache(good.substr(0, good.size() - 1)), "body bytes");
  ExpectError(ParseTimingCache(good + "x"), "body bytes");

  std::string flipped = good;
  flipped[kTimingCacheHeaderSize + 3] ^= 0x20;
  ExpectError(ParseTimingCache(flipped), "checksum");

  // A well-formed container whose body is not a JSON object of strings.
  auto with_body = [&](const std::string& body) {
    std::string b = good.substr(0, kTimingCacheHeaderSize) + body;
    uint64_t size = body.size(), sum = PlanChecksum(body.data(), body.size());
    std::memcpy(&b[112], &size, 8);
    std::memcpy(&b[120], &sum, 8);
    return b;
  };
  ASSERT_TRUE(ParseTimingCache(with_body("{\"k\":\"v\"}")).ok());
  ExpectError(ParseTimingCache(with_body("[1,2]")), "not a JSON object");
  ExpectError(ParseTimingCache(with_body("{\"k\":")), "not a JSON object");
  ExpectError(ParseTimingCache(with_body("{\"k\":3}")), "entry 'k' is not a string");
}

TEST(TimingCache, RefusesAnotherGpu) {
  const TimingCache c = Sample();
  Status other_name = CheckTimingCacheCompatible(c, "NVIDIA A100-SXM4-80GB", 90);
  ASSERT_FALSE(other_name.ok());
  EXPECT_NE(other_name.message().find("NVIDIA H200"), std::string::npos) << other_name.message();
  EXPECT_NE(other_name.message().find("A100"), std::string::npos) << other_name.message();
  Status other_arch = CheckTimingCacheCompatible(c, "NVIDIA H200", 80);
  ASSERT_FALSE(other_arch.ok());
  EXPECT_NE(other_arch.message().find("sm_80"), std::string::npos) << other_arch.message();
}

TEST(TimingCache, FilesLoadSaveAndNameThePath) {
  const std::filesystem::path dir = fixtures::TestDir("kiln_timing_cache");
  const std::string path = (dir / "t.cache").string();
  // No file yet: an empty cache, which the first build creates.
  auto empty = LoadTimingCacheFile(path, "NVIDIA H200", 90);
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->empty());

  const TimingCache c = Sample();
  ASSERT_TRUE(SaveTimingCacheFile(path, c.entries, c.gpu_name, c.compute_capability).ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  auto loaded = LoadTimingCacheFile(path, c.gpu_name, c.compute_capability);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(*loaded, c.entries);

  auto foreign = LoadTimingCacheFile(path, "NVIDIA L4", 89);
  ASSERT_FALSE(foreign.ok());
  EXPECT_NE(foreign.status().message().find(path), std::string::npos) << foreign.status().message();
  EXPECT_NE(foreign.status().message().find("sm_89"), std::string::npos) << foreign.status().message();

  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << "garbage";
  }
  auto bad = LoadTimingCacheFile(path, c.gpu_name, c.compute_capability);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(path), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find("not a kiln timing cache"), std::string::npos)
      << bad.status().message();

  Status unwritable = SaveTimingCacheFile((dir / "missing" / "t.cache").string(), c.entries, c.gpu_name, 90);
  EXPECT_FALSE(unwritable.ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kiln
