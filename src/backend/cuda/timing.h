// Timing a candidate at Prepare (tactic choice): the work `run` enqueues on
// the stream it is given, on a private non-blocking stream, one warm-up run,
// then the fastest of `runs` runs between two CUDA events. Synchronizes; never
// call it inside a stream capture (Prepare is outside any).
#pragma once

#include <cuda_runtime.h>

#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "kiln/status.h"

namespace kiln::cuda {

// Milliseconds of the fastest run; the first error of `run` or of CUDA.
Expected<float> TimeOnPrivateStream(const std::function<Status(cudaStream_t)>& run, int runs);

// Fills the operands a candidate is timed on with bytes 0x3c: not zeros, which some kernels run faster on
// (0x3c3c is 1.06 in float16, 0.0115 in bfloat16; 0x3c is 1.5 in float8e4m3, 60 in int8).
Status FillForTiming(std::initializer_list<DeviceBuffer*> buffers);

struct GpuResources;

// Candidates timed in order, the fastest kept as a tactic entry under `key` (its name; the first wins ties);
// returns its index. A verdict already in the cache stands (a loaded plan, or another context that timed the
// same choice first: every context runs the same kernels) and nothing is timed; a verdict naming no candidate
// (another kiln's cache) picks the first.
Expected<size_t> FastestTactic(GpuResources& res, const std::string& key,
                               const std::vector<std::string>& names,
                               const std::vector<std::function<Expected<float>()>>& timers,
                               const std::string& node_name);

// A timed verdict into the tactic cache; the verdict that stands (a context that timed the same choice first
// decides for all, so every context runs the same kernels).
std::string KeepTactic(GpuResources& res, const std::string& key, const std::string& verdict);

}  // namespace kiln::cuda
