// Activation memory planning: given each buffer's size and the schedule steps
// where it is first written and last read, assign offsets in one arena so that
// buffers alive at the same time never overlap. Greedy: largest buffers first,
// each at the lowest offset that fits among already placed buffers whose
// lifetimes intersect (the usual best-fit heuristic of inference runtimes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kiln {

struct BufferLifetime {
  size_t bytes = 0;
  int first = 0;  // step that writes it
  int last = 0;   // last step that reads it (inclusive)
};

struct MemoryPlan {
  std::vector<size_t> offsets;  // one per buffer
  size_t arena_bytes = 0;
  size_t naive_bytes = 0;  // sum of all sizes (what no planning would take)
};

// Offsets are multiples of `alignment` (a power of two).
MemoryPlan PlanMemory(const std::vector<BufferLifetime>& buffers, size_t alignment = 256);

}  // namespace kiln
