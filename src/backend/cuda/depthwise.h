// Depthwise 2-D convolution on channels-last tensors (group == C == K), with
// the FusedConv epilogue: Y = act(conv(X, W) + B + Z). Our own kernel because
// cuDNN's NHWC depthwise path was measured at twice the whole NCHW model time
// on MobileNetV2/EfficientNet-B0 (H200, FP16, batch 32): depthwise is
// memory-bound, one pass over X with each thread owning a 16-byte vector of
// channels of one output pixel, FP32 accumulation.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "backend/cuda/activation.h"
#include "core/dtype.h"
#include "kiln/status.h"

namespace kiln::cuda {

struct DepthwiseShape {
  int64_t n = 0, h = 0, w = 0, c = 0;  // X [N,H,W,C]
  int64_t oh = 0, ow = 0;              // Y [N,OH,OW,C]
  int64_t kh = 0, kw = 0;              // W [C,KH,KW,1]
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
};

// Three kernels: kPixels gives each thread one output pixel's 16-byte channel vector (any filter; weights
// staged in shared memory); kRows gives it a run of consecutive output pixels of a row, so neighbouring
// windows share their input loads and weight reads (3x3 and 5x5 filters of stride 1 or 2, no dilation, C a
// multiple of the 16-byte vector: DepthwiseRowsFit); kRegs is kPixels with the thread's weights in
// registers, loaded once for all its pixels (3x3 filters, C a multiple of the vector: DepthwiseRegsFit).
// kTile gives each block an output tile of a few channel groups, its input window copied into shared memory
// first (the shapes kRows takes); kTilePairs is kTile with two horizontally adjacent output pixels per thread
// sharing their input columns and weight reads. All give the same bits; which is fastest depends on the
// shape, so conv.cc times them.
enum class DepthwiseKernel { kPixels, kRows, kRegs, kTile, kTilePairs };

bool DepthwiseRowsFit(DataType dt, const DepthwiseShape& s);
bool DepthwiseRegsFit(DataType dt, const DepthwiseShape& s);

// b, z may be null. float32 / float16 / bfloat16. kRows / kRegs / kTile / kTilePairs where they do not fit
// (or the pointers are not 16-byte aligned) run kPixels. sm_count: the device's SMs (GpuResources::sm_count),
// which size the grids.
Status LaunchDepthwiseNhwc(DataType dt, const DepthwiseShape& s, const void* x, const void* w, const void* b,
                           const void* z, void* y, const ActivationSpec& act, DepthwiseKernel kernel,
                           int sm_count, cudaStream_t stream);

}  // namespace kiln::cuda
