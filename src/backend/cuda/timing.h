// Timing a candidate at Prepare (tactic choice): the work `run` enqueues on
// the stream it is given, on a private non-blocking stream, one warm-up run,
// then the fastest of `runs` runs between two CUDA events. Synchronizes; never
// call it inside a stream capture (Prepare is outside any).
#pragma once

#include <cuda_runtime.h>

#include <functional>

#include "kiln/status.h"

namespace kiln::cuda {

// Milliseconds of the fastest run; the first error of `run` or of CUDA.
Expected<float> TimeOnPrivateStream(const std::function<Status(cudaStream_t)>& run, int runs);

}  // namespace kiln::cuda
