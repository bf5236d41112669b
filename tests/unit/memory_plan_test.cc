#include <gtest/gtest.h>

#include <random>

#include "runtime/memory_plan.h"

namespace kiln {
namespace {

TEST(MemoryPlan, ReusesDeadBuffers) {
  // A chain a→b→c: a and c never live together, so they can share memory.
  MemoryPlan p = PlanMemory({{1000, 0, 1}, {1000, 1, 2}, {1000, 2, 3}});
  EXPECT_EQ(p.offsets[0], p.offsets[2]);
  EXPECT_NE(p.offsets[0], p.offsets[1]);
  EXPECT_LT(p.arena_bytes, p.naive_bytes);
}

TEST(MemoryPlan, NeverOverlapsLiveBuffers) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<BufferLifetime> bufs;
    for (int i = 0; i < 40; ++i) {
      int first = static_cast<int>(rng() % 30);
      bufs.push_back({1 + rng() % 5000, first, first + static_cast<int>(rng() % 8)});
    }
    MemoryPlan p = PlanMemory(bufs);
    for (size_t i = 0; i < bufs.size(); ++i) {
      EXPECT_EQ(p.offsets[i] % 256, 0u);
      EXPECT_LE(p.offsets[i] + bufs[i].bytes, p.arena_bytes);
      for (size_t j = i + 1; j < bufs.size(); ++j) {
        bool live_together = !(bufs[i].last < bufs[j].first || bufs[j].last < bufs[i].first);
        bool overlap = p.offsets[i] < p.offsets[j] + bufs[j].bytes && p.offsets[j] < p.offsets[i] + bufs[i].bytes;
        EXPECT_FALSE(live_together && overlap) << i << " " << j;
      }
    }
  }
}

}  // namespace
}  // namespace kiln
