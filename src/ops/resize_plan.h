// Resize's plan, shared by the CPU reference (ops/unary_resize.cc) and the
// CUDA kernel (backend/cuda/resize.cu), so both interpolate from the same
// taps: for every resized axis and output index, the source indices and
// weights (nearest / linear / cubic, every coordinate_transformation_mode,
// nearest_mode, cubic_coeff_a, exclude_outside, antialias) or the
// extrapolation value (tf_crop_and_resize outside the roi). Computed in double
// as the ONNX reference does.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ops/op_context.h"

namespace kiln {
namespace ops {

struct ResizeAttrs {
  std::string mode = "nearest";  // nearest | linear | cubic
  std::string coord = "half_pixel";
  std::string nearest_mode = "round_prefer_floor";
  double cubic_a = -0.75;
  bool exclude_outside = false;
  double extrapolation_value = 0.0;
  bool antialias = false;
  std::string policy = "stretch";
  std::vector<int64_t> axes;  // empty: every axis
};

// Upsample and Resize-10 take (X, scales) and work as asymmetric + floor.
bool IsLegacyResize(const NodeContext& ctx);
Expected<ResizeAttrs> ReadResizeAttrs(const NodeContext& ctx);
// Axes the scales/sizes/roi entries refer to, normalized; every axis by default.
Expected<std::vector<int64_t>> ResolveResizeAxes(const NodeContext& ctx, const ResizeAttrs& a, int64_t rank);

// Per-axis plan of a concrete resize: scale factor, output size and roi.
struct AxisPlan {
  double scale = 1.0;
  int64_t out = 0;
  double roi_start = 0.0, roi_end = 1.0;
};

std::vector<double> TensorDoubles(const Tensor& t);

// An output dim computed from a scale (`dim` = scale * input dim, rounded):
// an error naming the axis when it is not finite or past 2^40, as converting
// it to int64 would be undefined.
Expected<int64_t> ScaledDim(const NodeContext& ctx, double dim, int64_t axis);

// Fills plans from scales (float) or sizes (int64) given per entry of `axes`.
Status PlanFromScalesOrSizes(const NodeContext& ctx, const ResizeAttrs& a, const std::vector<int64_t>& in,
                             const std::vector<int64_t>& axes, const std::vector<double>* scales,
                             const std::vector<int64_t>* sizes, std::vector<AxisPlan>* plans);

// One resized axis: output index y is sum_j weight[y*n+j] * x[index[y*n+j]]
// along `axis` (indices clamped into [0, in)), or the extrapolation value
// when extrapolate[y].
struct AxisTaps {
  int64_t axis = 0, in = 0, out = 0, n = 0;
  std::vector<int64_t> index;
  std::vector<double> weight;
  std::vector<uint8_t> extrapolate;
};

// A concrete Resize: output dims and the taps of every axis that changes, in
// axis order (applying them one after another is the reference's result).
struct ResizePlan {
  ResizeAttrs attrs;
  std::vector<int64_t> out_dims;
  std::vector<AxisTaps> axes;
};

// `roi`, `scales`, `sizes`: the node's inputs (nullptr when omitted; empty
// tensors count as omitted). Legacy forms read their scales attribute.
Expected<ResizePlan> PlanResize(const NodeContext& ctx, const std::vector<int64_t>& x_dims, const Tensor* roi,
                                const Tensor* scales, const Tensor* sizes);

}  // namespace ops
}  // namespace kiln
