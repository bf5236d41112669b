// Linear quantization: QuantizeLinear, DequantizeLinear (per-tensor, per-axis
// and blocked scales; int8/uint8/int16/uint16/int4/uint4/int2/uint2, float8
// and float4e2m1 quantized types; output_dtype, saturate, precision) and
// DynamicQuantizeLinear (uint8, as the ONNX reference computes it in float32).
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include "core/float8.h"
#include "ops/op_table.h"
#include "ops/reduce_util.h"

namespace kiln {
namespace ops {
namespace {

std::optional<FloatFormat> SmallFloatFormat(DataType dt) {
  switch (dt) {
    case DataType::kFloat8E4M3FN:
      return FloatFormat::kE4M3FN;
    case DataType::kFloat8E4M3FNUZ:
      return FloatFormat::kE4M3FNUZ;
    case DataType::kFloat8E5M2:
      return FloatFormat::kE5M2;
    case DataType::kFloat8E5M2FNUZ:
      return FloatFormat::kE5M2FNUZ;
    case DataType::kFloat4E2M1:
      return FloatFormat::kE2M1;
    default:
      return std::nullopt;
  }
}

// Saturation range of the integer quantized types.
struct IntQuantRange {
  DataType dt;
  int64_t lo, hi;
};
constexpr IntQuantRange kIntRanges[] = {
    {DataType::kUInt8, 0, 255},        {DataType::kInt8, -128, 127}, {DataType::kUInt16, 0, 65535},
    {DataType::kInt16, -32768, 32767}, {DataType::kUInt4, 0, 15},    {DataType::kInt4, -8, 7},
    {DataType::kUInt2, 0, 3},          {DataType::kInt2, -2, 1},     {DataType::kInt32, INT32_MIN, INT32_MAX},
};

bool IntRange(DataType dt, int64_t* lo, int64_t* hi) {
  for (const IntQuantRange& r : kIntRanges) {
    if (r.dt != dt) continue;
    *lo = r.lo;
    *hi = r.hi;
    return true;
  }
  return false;
}

// Element i of t as a double, for every type quantization reads (small floats included).
double ReadAt(const Tensor& t, int64_t i) {
  const DataType dt = t.dtype();
  if (auto f = SmallFloatFormat(dt)) return DecodeFloat(*f, t.data<uint8_t>()[i]);
  if (dt == DataType::kFloat8E8M0) return Float8E8M0ToFloat(t.data<uint8_t>()[i]);
  return t.ScalarAt(i);
}

// Writes integer v (already in range) as element i of t.
void WriteInt(Tensor* t, int64_t i, int64_t v) {
  switch (t->dtype()) {
    case DataType::kUInt8:
    case DataType::kUInt4:
    case DataType::kUInt2:
      t->mutable_data<uint8_t>()[i] = static_cast<uint8_t>(v);
      break;
    case DataType::kInt8:
    case DataType::kInt4:
    case DataType::kInt2:
      t->mutable_data<int8_t>()[i] = static_cast<int8_t>(v);
      break;
    case DataType::kUInt16:
      t->mutable_data<uint16_t>()[i] = static_cast<uint16_t>(v);
      break;
    case DataType::kInt16:
      t->mutable_data<int16_t>()[i] = static_cast<int16_t>(v);
      break;
    case DataType::kInt32:
      t->mutable_data<int32_t>()[i] = static_cast<int32_t>(v);
      break;
    default:
      break;
  }
}

// Writes float v as element i of a float32/float16/bfloat16/double tensor.
void WriteFloat(Tensor* t, int64_t i, double v) {
  switch (t->dtype()) {
    case DataType::kFloat:
      t->mutable_data<float>()[i] = static_cast<float>(v);
      break;
    case DataType::kDouble:
      t->mutable_data<double>()[i] = v;
      break;
    case DataType::kFloat16:
      t->mutable_data<Half>()[i] = Half(static_cast<float>(v));
      break;
    case DataType::kBFloat16:
      t->mutable_data<BFloat16>()[i] = BFloat16(static_cast<float>(v));
      break;
    default:
      break;
  }
}

// Rounds v to the precision of dt (float, float16, bfloat16; others: as is).
double RoundTo(DataType dt, double v) {
  switch (dt) {
    case DataType::kFloat:
      return static_cast<float>(v);
    case DataType::kFloat16:
      return static_cast<float>(Half(static_cast<float>(v)));
    case DataType::kBFloat16:
      return static_cast<float>(BFloat16(static_cast<float>(v)));
    default:
      return v;
  }
}

// Maps an element (o, k, i) of x (viewed around the quantization axis) to the
// index of its scale / zero point: per-tensor, per-axis or blocked.
struct ParamMap {
  enum Mode { kTensor, kAxis, kBlocked } mode = kTensor;
  reduce::AxisView view;
  int64_t block = 0;
  int64_t n_blocks = 0;
  int64_t at(int64_t o, int64_t k, int64_t i) const {
    switch (mode) {
      case kTensor:
        return 0;
      case kAxis:
        return k;
      case kBlocked:
        return (o * n_blocks + k / block) * view.inner + i;
    }
    return 0;
  }
};

Status MakeParamMap(const NodeContext& ctx, const Tensor& x, const Tensor& scale, ParamMap* m) {
  const int64_t block = ctx.attr_int("block_size", 0);
  if (block < 0) return ctx.Error("block_size must be >= 0");
  int64_t axis = 0;
  if (scale.numel() == 1 && block == 0) {
    m->mode = ParamMap::kTensor;
    m->view = reduce::ViewAround(x.dims(), x.rank());  // everything is "outer"
    if (x.rank() == 0) m->view = reduce::AxisView{};
    return Status::Ok();
  }
  KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, ctx.attr_int("axis", 1), x.rank(), &axis));
  m->view = reduce::ViewAround(x.dims(), axis);
  if (block == 0) {
    if (scale.rank() != 1 || scale.numel() != m->view.n)
      return ctx.Error("per-axis scale must be 1-D of the axis size " + std::to_string(m->view.n));
    m->mode = ParamMap::kAxis;
    return Status::Ok();
  }
  m->mode = ParamMap::kBlocked;
  m->block = block;
  m->n_blocks = (m->view.n + block - 1) / block;
  bool ok = scale.rank() == x.rank();
  for (int64_t d = 0; ok && d < x.rank(); ++d)
    ok = scale.dim(static_cast<int>(d)) == (d == axis ? m->n_blocks : x.dim(static_cast<int>(d)));
  if (!ok)
    return ctx.Error("blocked scale must have x's shape with ceil(" + std::to_string(m->view.n) + " / " +
                     std::to_string(block) + ") on axis " + std::to_string(axis));
  return Status::Ok();
}

// Output type of QuantizeLinear: the zero point's, else output_dtype, else uint8.
Status QuantOutputType(const NodeContext& ctx, DataType zp_dtype, DataType* out) {
  const int64_t attr = ctx.attr_int("output_dtype", 0);
  if (attr != 0 && !IsValidDataType(static_cast<int32_t>(attr))) return ctx.Error("bad output_dtype");
  DataType dt = attr ? static_cast<DataType>(attr) : DataType::kUInt8;
  if (zp_dtype != DataType::kUndefined) {
    if (attr && static_cast<DataType>(attr) != zp_dtype)
      return ctx.Error("output_dtype does not match the zero point's type");
    dt = zp_dtype;
  }
  int64_t lo, hi;
  if ((!IntRange(dt, &lo, &hi) || dt == DataType::kInt32) && !SmallFloatFormat(dt))
    return ctx.UnsupportedError("quantized type " + std::string(DataTypeName(dt)) + " is not supported");
  *out = dt;
  return Status::Ok();
}

}  // namespace

Status InferQuantizeLinear(InferContext& ctx) {
  if (ctx.num_inputs() < 2 || !ctx.has_input(0) || !ctx.has_input(1))
    return ctx.Error("expects x and y_scale");
  DataType zp = ctx.num_inputs() > 2 && ctx.has_input(2) ? ctx.input_dtype(2) : DataType::kUndefined;
  DataType out;
  KILN_RETURN_IF_ERROR(QuantOutputType(ctx, zp, &out));
  ctx.set_output(0, out, ctx.input_shape(0));
  return Status::Ok();
}

Status RunQuantizeLinear(RunContext& ctx) {
  if (ctx.num_inputs() < 2 || !ctx.has_input(0) || !ctx.has_input(1))
    return ctx.Error("expects x and y_scale");
  const Tensor& x = ctx.input(0);
  const Tensor& scale = ctx.input(1);
  const Tensor* zp = ctx.num_inputs() > 2 && ctx.has_input(2) ? &ctx.input(2) : nullptr;
  DataType out_dt;
  KILN_RETURN_IF_ERROR(QuantOutputType(ctx, zp ? zp->dtype() : DataType::kUndefined, &out_dt));
  ParamMap pm;
  KILN_RETURN_IF_ERROR(MakeParamMap(ctx, x, scale, &pm));
  if (zp && zp->numel() != scale.numel()) return ctx.Error("zero point and scale must have the same shape");
  // Precision of x / scale: the precision attribute, else numpy's promotion.
  DataType div_dt = DataType::kDouble;
  if (int64_t p = ctx.attr_int("precision", 0)) {
    div_dt = static_cast<DataType>(p);
  } else if (x.dtype() == scale.dtype()) {
    div_dt = x.dtype() == DataType::kInt32 ? DataType::kDouble : x.dtype();
  } else if (x.dtype() != DataType::kInt32 && scale.dtype() != DataType::kInt32) {
    div_dt = DataType::kFloat;
  }
  const bool saturate = ctx.attr_int("saturate", 1) != 0;
  const std::optional<FloatFormat> ffmt = SmallFloatFormat(out_dt);
  int64_t lo = 0, hi = 0;
  IntRange(out_dt, &lo, &hi);
  Tensor y(out_dt, x.dims());
  const reduce::AxisView& v = pm.view;
  for (int64_t o = 0; o < v.outer; ++o) {
    for (int64_t k = 0; k < v.n; ++k) {
      for (int64_t i = 0; i < v.inner; ++i) {
        const int64_t idx = v.at(o, k, i);
        const int64_t pi = pm.at(o, k, i);
        double s = RoundTo(div_dt, ReadAt(scale, pi));
        double q = RoundTo(div_dt, RoundTo(div_dt, ReadAt(x, idx)) / s);
        if (ffmt) {
          if (out_dt == DataType::kFloat4E2M1 && zp) q = RoundTo(DataType::kFloat, q + ReadAt(*zp, pi));
          y.mutable_data<uint8_t>()[idx] = static_cast<uint8_t>(EncodeFloat(*ffmt, q, saturate));
          continue;
        }
        double r = std::nearbyint(q);
        if (zp) r += ReadAt(*zp, pi);
        if (std::isnan(r)) r = 0;
        WriteInt(&y, idx,
                 static_cast<int64_t>(std::clamp(r, static_cast<double>(lo), static_cast<double>(hi))));
      }
    }
  }
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

Status InferDequantizeLinear(InferContext& ctx) {
  if (ctx.num_inputs() < 2 || !ctx.has_input(0) || !ctx.has_input(1))
    return ctx.Error("expects x and x_scale");
  const int64_t attr = ctx.attr_int("output_dtype", 0);
  DataType out = attr ? static_cast<DataType>(attr) : ctx.input_dtype(1);
  ctx.set_output(0, out, ctx.input_shape(0));
  return Status::Ok();
}

Status RunDequantizeLinear(RunContext& ctx) {
  if (ctx.num_inputs() < 2 || !ctx.has_input(0) || !ctx.has_input(1))
    return ctx.Error("expects x and x_scale");
  const Tensor& x = ctx.input(0);
  const Tensor& scale = ctx.input(1);
  const Tensor* zp = ctx.num_inputs() > 2 && ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const int64_t attr = ctx.attr_int("output_dtype", 0);
  const DataType out_dt = attr ? static_cast<DataType>(attr) : scale.dtype();
  if (out_dt != DataType::kFloat && out_dt != DataType::kFloat16 && out_dt != DataType::kBFloat16 &&
      out_dt != DataType::kDouble)
    return ctx.UnsupportedError("output type " + std::string(DataTypeName(out_dt)) + " is not supported");
  int64_t lo, hi;
  const bool small_float = SmallFloatFormat(x.dtype()).has_value();
  if (!small_float && !IntRange(x.dtype(), &lo, &hi))
    return ctx.UnsupportedError("quantized type " + std::string(DataTypeName(x.dtype())) +
                                " is not supported");
  ParamMap pm;
  KILN_RETURN_IF_ERROR(MakeParamMap(ctx, x, scale, &pm));
  // Float8/float4 zero points must be 0 and are ignored (as in the ONNX reference).
  if (small_float) zp = nullptr;
  if (zp && zp->numel() != scale.numel()) return ctx.Error("zero point and scale must have the same shape");
  if (zp && zp->dtype() != x.dtype()) return ctx.Error("zero point must have x's type");
  Tensor y(out_dt, x.dims());
  const reduce::AxisView& v = pm.view;
  for (int64_t o = 0; o < v.outer; ++o) {
    for (int64_t k = 0; k < v.n; ++k) {
      for (int64_t i = 0; i < v.inner; ++i) {
        const int64_t idx = v.at(o, k, i);
        const int64_t pi = pm.at(o, k, i);
        // float32 arithmetic, as the reference: (float(x) - zp) * scale.
        float dx = static_cast<float>(ReadAt(x, idx));
        if (zp) dx -= static_cast<float>(ReadAt(*zp, pi));
        WriteFloat(&y, idx, static_cast<double>(dx * static_cast<float>(ReadAt(scale, pi))));
      }
    }
  }
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

Status InferDynamicQuantizeLinear(InferContext& ctx) {
  if (ctx.num_inputs() != 1 || !ctx.has_input(0)) return ctx.Error("expects one input");
  ctx.set_output(0, DataType::kUInt8, ctx.input_shape(0));
  ctx.set_output(1, DataType::kFloat, Shape::Scalar());
  ctx.set_output(2, DataType::kUInt8, Shape::Scalar());
  return Status::Ok();
}

Status RunDynamicQuantizeLinear(RunContext& ctx) {
  if (ctx.num_inputs() != 1 || !ctx.has_input(0)) return ctx.Error("expects one input");
  const Tensor& x = ctx.input(0);
  if (x.dtype() != DataType::kFloat) return ctx.UnsupportedError("input must be float32");
  const float* p = x.data<float>();
  float mx = 0.0f, mn = 0.0f;
  for (int64_t i = 0; i < x.numel(); ++i) {
    mx = std::max(mx, p[i]);
    mn = std::min(mn, p[i]);
  }
  const float scale = (mx == mn ? 1.0f : mx - mn) / 255.0f;
  const float zp_f = std::clamp(0.0f - mn / scale, 0.0f, 255.0f);
  const float zp = std::nearbyint(zp_f);
  Tensor y(DataType::kUInt8, x.dims());
  uint8_t* py = y.mutable_data<uint8_t>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    float q = std::nearbyint(p[i] / scale) + zp;
    if (std::isnan(q)) q = 0;
    py[i] = static_cast<uint8_t>(std::clamp(q, 0.0f, 255.0f));
  }
  ctx.set_output(0, std::move(y));
  ctx.set_output(1, Tensor::FromVector<float>(DataType::kFloat, {}, {scale}));
  ctx.set_output(2, Tensor::FromVector<uint8_t>(DataType::kUInt8, {}, {static_cast<uint8_t>(zp)}));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
