// Detection ops: NonMaxSuppression (greedy per batch and class, in the order
// of the ONNX reference: score descending, lower box index first on ties) and
// RoiAlign (avg/max pooling of bilinear samples, half_pixel or
// output_half_pixel coordinates, adaptive sampling when sampling_ratio is 0).
#include <algorithm>
#include <cmath>

#include "ops/op_table.h"
#include "ops/nms_box.h"
#include "ops/op_util.h"
#include "ops/roi_align_plan.h"

namespace kiln {
namespace ops {
namespace {

using Box = NmsBox;

std::vector<float> ToFloats(const Tensor& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = static_cast<float>(t.ScalarAt(i));
  return v;
}

}  // namespace

// ---------------------------------------------------------------- NonMaxSuppression

Status InferNonMaxSuppression(InferContext& ctx) {
  if (ctx.num_inputs() < 2) return ctx.Error("needs boxes and scores");
  const Shape& b = ctx.input_shape(0);
  const Shape& s = ctx.input_shape(1);
  if (b.rank_known() && (b.rank() != 3 || (b[2].known() && b[2].value() != 4)))
    return ctx.Error("boxes must be [num_batches, spatial_dimension, 4]");
  if (s.rank_known() && s.rank() != 3)
    return ctx.Error("scores must be [num_batches, num_classes, spatial_dimension]");
  ctx.set_output(0, DataType::kInt64, Shape({Dim::Unknown(), Dim(3)}));
  return Status::Ok();
}

Status RunNonMaxSuppression(RunContext& ctx) {
  if (ctx.num_inputs() < 2 || !ctx.has_input(0) || !ctx.has_input(1))
    return ctx.Error("needs boxes and scores");
  const Tensor& boxes_t = ctx.input(0);
  const Tensor& scores_t = ctx.input(1);
  if (boxes_t.rank() != 3 || boxes_t.dim(2) != 4)
    return ctx.Error("boxes must be [num_batches, spatial_dimension, 4]");
  if (scores_t.rank() != 3) return ctx.Error("scores must be [num_batches, num_classes, spatial_dimension]");
  const int64_t batches = boxes_t.dim(0), n_boxes = boxes_t.dim(1), classes = scores_t.dim(1);
  if (scores_t.dim(0) != batches || scores_t.dim(2) != n_boxes)
    return ctx.Error("boxes and scores do not match");

  int64_t max_out = 0;
  if (ctx.has_input(2) && ctx.input(2).numel() > 0) max_out = std::max<int64_t>(ctx.input(2).IntAt(0), 0);
  float iou_threshold = 0.0f;
  if (ctx.has_input(3) && ctx.input(3).numel() > 0)
    iou_threshold = static_cast<float>(ctx.input(3).ScalarAt(0));
  bool has_score_threshold = ctx.has_input(4) && ctx.input(4).numel() > 0;
  float score_threshold = has_score_threshold ? static_cast<float>(ctx.input(4).ScalarAt(0)) : 0.0f;
  if (iou_threshold < 0.0f || iou_threshold > 1.0f) return ctx.Error("iou_threshold must be in [0, 1]");
  const bool center = ctx.attr_int("center_point_box", 0) != 0;

  const std::vector<float> boxes = ToFloats(boxes_t);
  const std::vector<float> scores = ToFloats(scores_t);
  std::vector<int64_t> selected;  // triples
  for (int64_t b = 0; b < batches; ++b) {
    std::vector<Box> bx;
    for (int64_t i = 0; i < n_boxes; ++i)
      bx.push_back(ReadNmsBox(&boxes[static_cast<size_t>((b * n_boxes + i) * 4)], center));
    for (int64_t c = 0; c < classes; ++c) {
      const float* sc = &scores[static_cast<size_t>((b * classes + c) * n_boxes)];
      std::vector<int64_t> cand;
      for (int64_t i = 0; i < n_boxes; ++i)
        if (!has_score_threshold || sc[i] > score_threshold) cand.push_back(i);
      std::stable_sort(cand.begin(), cand.end(), [&](int64_t x, int64_t y) { return sc[x] > sc[y]; });
      std::vector<int64_t> kept;
      for (int64_t i : cand) {
        if (static_cast<int64_t>(kept.size()) >= max_out) break;
        bool keep = true;
        for (int64_t k : kept)
          if (NmsSuppresses(bx[static_cast<size_t>(i)], bx[static_cast<size_t>(k)], iou_threshold)) {
            keep = false;
            break;
          }
        if (!keep) continue;
        kept.push_back(i);
        selected.insert(selected.end(), {b, c, i});
      }
    }
  }
  const int64_t n = static_cast<int64_t>(selected.size() / 3);
  ctx.set_output(0, Tensor::FromVector<int64_t>(DataType::kInt64, {n, 3}, selected));
  return Status::Ok();
}

// ---------------------------------------------------------------- RoiAlign

namespace {

template <class T>
void RoiAlignImpl(const Tensor& x, const std::vector<double>& rois, const std::vector<int64_t>& batch_idx,
                  const RoiAlignParams& p, Tensor* y) {
  using C = compute_t<T>;
  const int64_t channels = x.dim(1), plane_size = p.height * p.width;
  const T* xd = x.data<T>();
  T* yd = y->mutable_data<T>();
  const int64_t n_rois = static_cast<int64_t>(batch_idx.size());
  for (int64_t n = 0; n < n_rois; ++n) {
    const RoiGrid g = MakeRoiGrid(&rois[static_cast<size_t>(n * 4)], p);
    for (int64_t c = 0; c < channels; ++c) {
      const T* plane = xd + (batch_idx[static_cast<size_t>(n)] * channels + c) * plane_size;
      T* out = yd + (n * channels + c) * p.out_h * p.out_w;
      auto load = [plane](int64_t off) { return static_cast<double>(ToCompute(plane[off])); };
      for (int64_t ph = 0; ph < p.out_h; ++ph)
        for (int64_t pw = 0; pw < p.out_w; ++pw)
          out[ph * p.out_w + pw] = FromCompute<T>(static_cast<C>(RoiPool(g, p, ph, pw, load)));
    }
  }
}

}  // namespace

Status InferRoiAlign(InferContext& ctx) {
  if (ctx.num_inputs() < 3) return ctx.Error("needs X, rois and batch_indices");
  const Shape& x = ctx.input_shape(0);
  const Shape& rois = ctx.input_shape(1);
  const Shape& idx = ctx.input_shape(2);
  if (x.rank_known() && x.rank() != 4) return ctx.Error("X must be 4-D [N, C, H, W]");
  if (rois.rank_known() && (rois.rank() != 2 || (rois[1].known() && rois[1].value() != 4)))
    return ctx.Error("rois must be [num_rois, 4]");
  if (idx.rank_known() && idx.rank() != 1) return ctx.Error("batch_indices must be 1-D");
  Dim n = idx.rank_known() ? idx[0] : Dim::Unknown();
  if (!n.known() && rois.rank_known()) n = rois[0];
  Dim c = x.rank_known() ? x[1] : Dim::Unknown();
  ctx.set_output(0, ctx.input_dtype(0),
                 Shape({n, c, Dim(ctx.attr_int("output_height", 1)), Dim(ctx.attr_int("output_width", 1))}));
  return Status::Ok();
}

Status RunRoiAlign(RunContext& ctx) {
  if (ctx.num_inputs() < 3) return ctx.Error("needs X, rois and batch_indices");
  const Tensor& x = ctx.input(0);
  const Tensor& rois = ctx.input(1);
  const Tensor& idx = ctx.input(2);
  if (x.rank() != 4) return ctx.Error("X must be 4-D [N, C, H, W]");
  if (rois.rank() != 2 || rois.dim(1) != 4) return ctx.Error("rois must be [num_rois, 4]");
  if (idx.rank() != 1 || idx.dim(0) != rois.dim(0)) return ctx.Error("batch_indices must be [num_rois]");
  const int64_t out_h = ctx.attr_int("output_height", 1), out_w = ctx.attr_int("output_width", 1);
  const int64_t sampling_ratio = ctx.attr_int("sampling_ratio", 0);
  if (out_h <= 0 || out_w <= 0 || sampling_ratio < 0) return ctx.Error("bad output size or sampling_ratio");
  const std::string mode = ctx.attr_string("mode", "avg");
  if (mode != "avg" && mode != "max") return ctx.Error("mode must be avg or max, got '" + mode + "'");
  // Opset 10 had no attribute and behaved as output_half_pixel.
  const std::string ctm = ctx.attr_string("coordinate_transformation_mode",
                                          ctx.opset() < 16 ? "output_half_pixel" : "half_pixel");
  if (ctm != "half_pixel" && ctm != "output_half_pixel")
    return ctx.Error("unknown coordinate_transformation_mode '" + ctm + "'");
  std::vector<int64_t> batch_idx = idx.ToInt64s();
  for (int64_t b : batch_idx)
    if (b < 0 || b >= x.dim(0)) return ctx.Error("batch index " + std::to_string(b) + " is out of range");
  std::vector<double> roi_values(static_cast<size_t>(rois.numel()));
  for (int64_t i = 0; i < rois.numel(); ++i) roi_values[static_cast<size_t>(i)] = rois.ScalarAt(i);
  const double scale = ctx.attr_float("spatial_scale", 1.0f);
  if (sampling_ratio == 0) {  // adaptive grids must stay a sane size
    for (size_t i = 0; i < roi_values.size(); i += 4) {
      const double h = std::fabs(roi_values[i + 3] - roi_values[i + 1]) * scale;
      const double w = std::fabs(roi_values[i + 2] - roi_values[i]) * scale;
      if (!(h < 65536.0 && w < 65536.0))
        return ctx.Error("roi " + std::to_string(i / 4) + " is too large or not finite");
    }
  } else if (sampling_ratio > 4096) {
    return ctx.Error("sampling_ratio is too large");
  }

  RoiAlignParams params;
  params.height = x.dim(2);
  params.width = x.dim(3);
  params.out_h = out_h;
  params.out_w = out_w;
  params.sampling_ratio = sampling_ratio;
  params.scale = scale;
  params.half_pixel = ctm == "half_pixel";
  params.max_mode = mode == "max";
  Tensor y(x.dtype(), {rois.dim(0), x.dim(1), out_h, out_w});
  bool ok = DispatchFloat(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    RoiAlignImpl<T>(x, roi_values, batch_idx, params, &y);
  });
  if (!ok) return ctx.Error("X must be a floating-point tensor");
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
