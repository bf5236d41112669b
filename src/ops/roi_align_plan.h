// RoiAlign's sampling, shared by the CPU reference (ops/misc_detection.cc) and
// the CUDA kernel (backend/cuda/roi_align.cu), so both pool the same bilinear
// samples with the same weights in double: the ROI's grid of bins and samples
// (half_pixel or output_half_pixel, sampling_ratio 0 = adaptive), each
// sample's four taps, and the avg / max pooling of one output bin (max mode as
// the ONNX reference: the max over samples of the max over the weighted taps).
#pragma once

#include <cmath>
#include <cstdint>

#include "core/host_device.h"

namespace kiln {
namespace ops {

struct RoiAlignParams {
  int64_t height = 0, width = 0;  // of X
  int64_t out_h = 1, out_w = 1, sampling_ratio = 0;
  double scale = 1.0;
  bool half_pixel = true, max_mode = false;
};

// One ROI's bins and sample grid.
struct RoiGrid {
  double start_h = 0, start_w = 0, bin_h = 0, bin_w = 0, count = 1;
  int64_t grid_h = 0, grid_w = 0;  // as computed (may be negative for reversed half_pixel ROIs)
  int64_t gh = 0, gw = 0;          // samples taken per bin and axis (>= 0)
};

// r: [x1, y1, x2, y2] of the ROI.
KILN_HOST_DEVICE inline RoiGrid MakeRoiGrid(const double* r, const RoiAlignParams& p) {
  RoiGrid g;
  const double offset = p.half_pixel ? 0.5 : 0.0;
  g.start_w = r[0] * p.scale - offset;
  g.start_h = r[1] * p.scale - offset;
  double roi_w = r[2] * p.scale - offset - g.start_w, roi_h = r[3] * p.scale - offset - g.start_h;
  if (!p.half_pixel) {  // malformed ROIs become 1x1
    roi_w = roi_w > 1.0 ? roi_w : 1.0;
    roi_h = roi_h > 1.0 ? roi_h : 1.0;
  }
  g.bin_h = roi_h / static_cast<double>(p.out_h);
  g.bin_w = roi_w / static_cast<double>(p.out_w);
  g.grid_h = p.sampling_ratio > 0 ? p.sampling_ratio : static_cast<int64_t>(ceil(roi_h / static_cast<double>(p.out_h)));
  g.grid_w = p.sampling_ratio > 0 ? p.sampling_ratio : static_cast<int64_t>(ceil(roi_w / static_cast<double>(p.out_w)));
  // The reference divides by the product even when both are negative
  // (reversed half_pixel ROIs); no samples are taken then.
  const int64_t prod = g.grid_h * g.grid_w;
  g.count = static_cast<double>(prod > 1 ? prod : 1);
  g.gh = g.grid_h > 0 ? g.grid_h : 0;
  g.gw = g.grid_w > 0 ? g.grid_w : 0;
  return g;
}

// The four taps (offsets in the H×W plane) and weights of sample (iy, ix) of
// bin (ph, pw); zero weights outside the image.
struct RoiSample {
  int64_t pos[4] = {0, 0, 0, 0};
  double w[4] = {0, 0, 0, 0};
};

KILN_HOST_DEVICE inline RoiSample RoiSampleAt(const RoiGrid& g, const RoiAlignParams& p, int64_t ph, int64_t pw,
                                              int64_t iy, int64_t ix) {
  RoiSample s;
  const double yy = g.start_h + static_cast<double>(ph) * g.bin_h +
                    (static_cast<double>(iy) + 0.5) * g.bin_h / static_cast<double>(g.grid_h);
  const double xx = g.start_w + static_cast<double>(pw) * g.bin_w +
                    (static_cast<double>(ix) + 0.5) * g.bin_w / static_cast<double>(g.grid_w);
  const int64_t height = p.height, width = p.width;
  if (yy < -1.0 || yy > static_cast<double>(height) || xx < -1.0 || xx > static_cast<double>(width)) return s;
  double yv = yy > 0.0 ? yy : 0.0, xv = xx > 0.0 ? xx : 0.0;
  int64_t y_low = static_cast<int64_t>(yv), x_low = static_cast<int64_t>(xv), y_high, x_high;
  if (y_low >= height - 1) {
    y_high = y_low = height - 1;
    yv = static_cast<double>(y_low);
  } else {
    y_high = y_low + 1;
  }
  if (x_low >= width - 1) {
    x_high = x_low = width - 1;
    xv = static_cast<double>(x_low);
  } else {
    x_high = x_low + 1;
  }
  const double ly = yv - static_cast<double>(y_low), lx = xv - static_cast<double>(x_low);
  const double hy = 1.0 - ly, hx = 1.0 - lx;
  s.pos[0] = y_low * width + x_low;
  s.pos[1] = y_low * width + x_high;
  s.pos[2] = y_high * width + x_low;
  s.pos[3] = y_high * width + x_high;
  s.w[0] = hy * hx;
  s.w[1] = hy * lx;
  s.w[2] = ly * hx;
  s.w[3] = ly * lx;
  return s;
}

// The pooled value of bin (ph, pw); load(offset) reads the channel's plane as double.
template <class Load>
KILN_HOST_DEVICE inline double RoiPool(const RoiGrid& g, const RoiAlignParams& p, int64_t ph, int64_t pw, Load&& load) {
  double acc = 0.0;
  bool first = true;
  for (int64_t iy = 0; iy < g.gh; ++iy)
    for (int64_t ix = 0; ix < g.gw; ++ix) {
      const RoiSample s = RoiSampleAt(g, p, ph, pw, iy, ix);
      if (!p.max_mode) {
        for (int k = 0; k < 4; ++k) acc += s.w[k] * load(s.pos[k]);
        continue;
      }
      double v = s.w[0] * load(s.pos[0]);
      for (int k = 1; k < 4; ++k) {
        const double t = s.w[k] * load(s.pos[k]);
        v = t > v ? t : v;  // std::max(v, t)
      }
      acc = first ? v : (v > acc ? v : acc);
      first = false;
    }
  return p.max_mode ? acc : acc / g.count;
}

}  // namespace ops
}  // namespace kiln
