// Detection ops: NonMaxSuppression (greedy per batch and class, in the order
// of the ONNX reference: score descending, lower box index first on ties) and
// RoiAlign (avg/max pooling of bilinear samples, half_pixel or
// output_half_pixel coordinates, adaptive sampling when sampling_ratio is 0).
#include <algorithm>
#include <cmath>

#include "ops/op_table.h"
#include "ops/op_util.h"

namespace kiln {
namespace ops {
namespace {

// Box as (x_min, y_min, x_max, y_max).
struct Box {
  float x0, y0, x1, y1;
};

Box ReadBox(const float* b, bool center_point) {
  if (center_point) {  // [x_center, y_center, width, height]
    float hw = b[2] / 2, hh = b[3] / 2;
    return {b[0] - hw, b[1] - hh, b[0] + hw, b[1] + hh};
  }
  // [y1, x1, y2, x2], corners in any order.
  return {std::min(b[1], b[3]), std::min(b[0], b[2]), std::max(b[1], b[3]), std::max(b[0], b[2])};
}

// True when the IoU of a and b exceeds the threshold (as the ONNX reference).
bool Suppresses(const Box& a, const Box& b, float iou_threshold) {
  float ix0 = std::max(a.x0, b.x0), ix1 = std::min(a.x1, b.x1);
  if (ix1 <= ix0) return false;
  float iy0 = std::max(a.y0, b.y0), iy1 = std::min(a.y1, b.y1);
  if (iy1 <= iy0) return false;
  float inter = (ix1 - ix0) * (iy1 - iy0);
  if (inter <= 0) return false;
  float area_a = (a.x1 - a.x0) * (a.y1 - a.y0);
  float area_b = (b.x1 - b.x0) * (b.y1 - b.y0);
  float uni = area_a + area_b - inter;
  if (area_a <= 0 || area_b <= 0 || uni <= 0) return false;
  return inter / uni > iou_threshold;
}

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
      bx.push_back(ReadBox(&boxes[static_cast<size_t>((b * n_boxes + i) * 4)], center));
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
          if (Suppresses(bx[static_cast<size_t>(i)], bx[static_cast<size_t>(k)], iou_threshold)) {
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

struct Sample {
  int64_t pos[4];
  double w[4];
};

template <class T>
void RoiAlignImpl(const Tensor& x, const std::vector<double>& rois, const std::vector<int64_t>& batch_idx,
                  int64_t out_h, int64_t out_w, int64_t sampling_ratio, double scale, bool half_pixel,
                  bool max_mode, Tensor* y) {
  using C = compute_t<T>;
  const int64_t channels = x.dim(1), height = x.dim(2), width = x.dim(3);
  const T* xd = x.data<T>();
  T* yd = y->mutable_data<T>();
  const int64_t n_rois = static_cast<int64_t>(batch_idx.size());
  const double offset = half_pixel ? 0.5 : 0.0;
  for (int64_t n = 0; n < n_rois; ++n) {
    const double* r = &rois[static_cast<size_t>(n * 4)];
    double start_w = r[0] * scale - offset, start_h = r[1] * scale - offset;
    double roi_w = r[2] * scale - offset - start_w, roi_h = r[3] * scale - offset - start_h;
    if (!half_pixel) {  // malformed ROIs become 1x1
      roi_w = std::max(roi_w, 1.0);
      roi_h = std::max(roi_h, 1.0);
    }
    const double bin_h = roi_h / static_cast<double>(out_h), bin_w = roi_w / static_cast<double>(out_w);
    const int64_t grid_h =
        sampling_ratio > 0 ? sampling_ratio : static_cast<int64_t>(std::ceil(roi_h / out_h));
    const int64_t grid_w =
        sampling_ratio > 0 ? sampling_ratio : static_cast<int64_t>(std::ceil(roi_w / out_w));
    // The reference divides by the product even when both are negative
    // (reversed half_pixel ROIs); no samples are taken then.
    const double count = static_cast<double>(std::max<int64_t>(grid_h * grid_w, 1));
    const int64_t gh = std::max<int64_t>(grid_h, 0), gw = std::max<int64_t>(grid_w, 0);

    // Bilinear sample positions and weights, shared by all channels.
    std::vector<Sample> samples;
    for (int64_t ph = 0; ph < out_h; ++ph)
      for (int64_t pw = 0; pw < out_w; ++pw)
        for (int64_t iy = 0; iy < gh; ++iy) {
          double yy = start_h + ph * bin_h + (iy + 0.5) * bin_h / static_cast<double>(grid_h);
          for (int64_t ix = 0; ix < gw; ++ix) {
            double xx = start_w + pw * bin_w + (ix + 0.5) * bin_w / static_cast<double>(grid_w);
            Sample s{{0, 0, 0, 0}, {0, 0, 0, 0}};
            if (yy < -1.0 || yy > height || xx < -1.0 || xx > width) {
              samples.push_back(s);
              continue;
            }
            double yv = std::max(yy, 0.0), xv = std::max(xx, 0.0);
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
            double ly = yv - y_low, lx = xv - x_low, hy = 1.0 - ly, hx = 1.0 - lx;
            s = {{y_low * width + x_low, y_low * width + x_high, y_high * width + x_low,
                  y_high * width + x_high},
                 {hy * hx, hy * lx, ly * hx, ly * lx}};
            samples.push_back(s);
          }
        }

    for (int64_t c = 0; c < channels; ++c) {
      const T* plane = xd + (batch_idx[static_cast<size_t>(n)] * channels + c) * height * width;
      T* out = yd + (n * channels + c) * out_h * out_w;
      size_t si = 0;
      for (int64_t p = 0; p < out_h * out_w; ++p) {
        double acc = 0.0;
        bool first = true;
        for (int64_t g = 0; g < gh * gw; ++g, ++si) {
          const Sample& s = samples[si];
          if (!max_mode) {
            for (int k = 0; k < 4; ++k) acc += s.w[k] * static_cast<double>(ToCompute(plane[s.pos[k]]));
            continue;
          }
          double v = s.w[0] * static_cast<double>(ToCompute(plane[s.pos[0]]));
          for (int k = 1; k < 4; ++k)
            v = std::max(v, s.w[k] * static_cast<double>(ToCompute(plane[s.pos[k]])));
          acc = first ? v : std::max(acc, v);
          first = false;
        }
        if (!max_mode) acc /= count;
        out[p] = FromCompute<T>(static_cast<C>(acc));
      }
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

  Tensor y(x.dtype(), {rois.dim(0), x.dim(1), out_h, out_w});
  bool ok = DispatchFloat(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    RoiAlignImpl<T>(x, roi_values, batch_idx, out_h, out_w, sampling_ratio, scale, ctm == "half_pixel",
                    mode == "max", &y);
  });
  if (!ok) return ctx.Error("X must be a floating-point tensor");
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
