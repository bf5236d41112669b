#include "runtime/memory_plan.h"

#include <algorithm>
#include <numeric>

namespace kiln {

MemoryPlan PlanMemory(const std::vector<BufferLifetime>& buffers, size_t alignment) {
  auto align = [alignment](size_t n) { return (n + alignment - 1) & ~(alignment - 1); };
  MemoryPlan plan;
  plan.offsets.assign(buffers.size(), 0);
  std::vector<size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return buffers[a].bytes > buffers[b].bytes; });
  std::vector<size_t> placed;
  for (size_t i : order) {
    const BufferLifetime& b = buffers[i];
    size_t size = align(std::max<size_t>(b.bytes, 1));
    plan.naive_bytes += size;
    // Intervals taken by overlapping-in-time buffers, sorted by offset.
    std::vector<std::pair<size_t, size_t>> taken;
    for (size_t j : placed) {
      const BufferLifetime& o = buffers[j];
      if (o.last < b.first || b.last < o.first) continue;
      taken.emplace_back(plan.offsets[j], plan.offsets[j] + align(std::max<size_t>(o.bytes, 1)));
    }
    std::sort(taken.begin(), taken.end());
    size_t offset = 0;
    for (const auto& [lo, hi] : taken) {
      if (offset + size <= lo) break;
      offset = std::max(offset, hi);
    }
    plan.offsets[i] = offset;
    plan.arena_bytes = std::max(plan.arena_bytes, offset + size);
    placed.push_back(i);
  }
  return plan;
}

}  // namespace kiln
