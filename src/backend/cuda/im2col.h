// The im2col gather of kiln.Im2Col (src/ops/im2col_plan.h) for other GPU ops: a channels-last convolution's
// windows as the rows of A, so the convolution is A · Wᵀ on cuBLASLt (conv.cc's im2col tactic).
#pragma once

#include <cuda_runtime.h>

#include "core/dtype.h"
#include "kiln/status.h"
#include "ops/im2col_plan.h"

namespace kiln::cuda {

// A [N·OH·OW, g.columns] from X (elements of `dt`, moved as words of its size: no conversion), on `stream`.
Status LaunchIm2Col(DataType dt, const Im2ColGeometry& g, const void* x, void* a, cudaStream_t stream);

}  // namespace kiln::cuda
