// FastDiv (core/fast_div.h): the multiply-high division the depthwise and copy kernels use for pixel
// coordinates and flat indices. Divide's host branch is the device's arithmetic (__umulhi is the high word of
// the same 64-bit product), so this checks the constants the kernels run with against n / d.
#include "core/fast_div.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace kiln {
namespace {

constexpr uint32_t kMax = (uint32_t{1} << 31) - 1;  // the largest dividend and divisor the kernels pass

TEST(FastDiv, QuotientsMatchIntegerDivision) {
  std::vector<uint32_t> divisors;
  for (uint32_t d = 1; d <= 4096; ++d) divisors.push_back(d);
  for (uint32_t s = 12; s <= 31; ++s) {
    const uint32_t p = s == 31 ? kMax : (uint32_t{1} << s);
    divisors.insert(divisors.end(), {p - 1, p, p + 1});
  }
  std::mt19937 rng(3);
  std::uniform_int_distribution<uint32_t> any(1, kMax);
  for (int i = 0; i < 2000; ++i) divisors.push_back(any(rng));
  int64_t bad = 0;
  for (uint32_t d : divisors) {
    const FastDiv f = MakeFastDiv(d);
    std::vector<uint32_t> ns = {
        0, 1, d - 1, d, d + 1, 2 * d - 1, kMax, kMax - 1, kMax / d * d, kMax / d * d - 1};
    for (int i = 0; i < 64; ++i) ns.push_back(any(rng));
    for (uint32_t n : ns) {
      if (n > kMax) continue;
      if (Divide(f, n) != n / d && bad++ < 5) ADD_FAILURE() << n << " / " << d << ": got " << Divide(f, n);
    }
  }
  EXPECT_EQ(bad, 0);
}

}  // namespace
}  // namespace kiln
