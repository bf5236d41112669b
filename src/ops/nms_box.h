// NonMaxSuppression's box reading and overlap test, shared by the CPU
// reference (ops/misc_detection.cc) and the CUDA kernel (backend/cuda/nms.cu).
#pragma once

#include "core/host_device.h"

namespace kiln {
namespace ops {

// Box as (x_min, y_min, x_max, y_max).
struct NmsBox {
  float x0, y0, x1, y1;
};

KILN_HOST_DEVICE inline float NmsMin(float a, float b) { return b < a ? b : a; }  // std::min
KILN_HOST_DEVICE inline float NmsMax(float a, float b) { return a < b ? b : a; }  // std::max

KILN_HOST_DEVICE inline NmsBox ReadNmsBox(const float* b, bool center_point) {
  if (center_point) {  // [x_center, y_center, width, height]
    const float hw = b[2] / 2, hh = b[3] / 2;
    return {b[0] - hw, b[1] - hh, b[0] + hw, b[1] + hh};
  }
  // [y1, x1, y2, x2], corners in any order.
  return {NmsMin(b[1], b[3]), NmsMin(b[0], b[2]), NmsMax(b[1], b[3]), NmsMax(b[0], b[2])};
}

// True when the IoU of a and b exceeds the threshold (as the ONNX reference).
KILN_HOST_DEVICE inline bool NmsSuppresses(const NmsBox& a, const NmsBox& b, float iou_threshold) {
  const float ix0 = NmsMax(a.x0, b.x0), ix1 = NmsMin(a.x1, b.x1);
  if (ix1 <= ix0) return false;
  const float iy0 = NmsMax(a.y0, b.y0), iy1 = NmsMin(a.y1, b.y1);
  if (iy1 <= iy0) return false;
  const float inter = (ix1 - ix0) * (iy1 - iy0);
  if (inter <= 0) return false;
  const float area_a = (a.x1 - a.x0) * (a.y1 - a.y0);
  const float area_b = (b.x1 - b.x0) * (b.y1 - b.y0);
  const float uni = area_a + area_b - inter;
  if (area_a <= 0 || area_b <= 0 || uni <= 0) return false;
  return inter / uni > iou_threshold;
}

}  // namespace ops
}  // namespace kiln
