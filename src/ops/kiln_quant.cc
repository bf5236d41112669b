// kiln's quantized convolution and matrix product (domain "kiln", see
// defs/kiln.def), made by passes/fold_qdq.cc from DequantizeLinear → Conv /
// MatMul / Gemm (→ QuantizeLinear) and run by the CUDA backend on cuBLASLt /
// cuDNN INT8:
//
//   QConv(x, x_scale, x_zp?, w, w_scale, w_zp?, bias?, y_scale?, y_zp?, z?, z_scale?, z_zp?)
//        attrs: Conv's, activation ("", Relu, Clip, Swish), activation_min/max, to
//   QMatMul(a, a_scale, a_zp?, b, b_scale, b_zp?, bias?, y_scale?, y_zp?, z?, z_scale?, z_zp?)
//        attrs: activation, activation_min/max, to
//
// x / a: int8 or uint8, per-tensor (scalar) scale and zero point. w: int8 or
// uint8 [M, C/group, k...]; b: int8 or uint8 [K, N] (a constant weight; a's
// batch dims broadcast). Weight scales and zero points per tensor or per
// output channel (w's dim 0, b's dim 1). bias: int32 per output channel at
// scale x_scale·w_scale[m] (QLinearConv's convention).
//
// The CPU reference accumulates in int32, acc = Σ (x - x_zp)(w - w_zp) + bias,
// then applies the FP32 scale epilogue. Without a residual z and with
// activation "" or "Relu" (passes/fold_qdq.cc's and qconv_epilogue's plain
// forms):
//   - without y_scale: y = act(float(acc) · (x_scale · w_scale[m]))
//   - with y_scale:    y = sat(nearbyint(act(float(acc) · (x_scale · w_scale[m] / y_scale))) + y_zp)
//     in y_zp's type (int8 when y_zp is omitted): onnxruntime's QLinearConv /
//     MLAS requantization, so a folded graph matches onnxruntime's own fused
//     QDQ kernels (ReLU commutes with the positive scale).
// With a residual z (y's shape: float32/float16, or int8/uint8 read as
// (z - z_zp) · z_scale) or activation "Clip" or "Swish" (passes/qconv_epilogue.cc: the
// Add, Relu/Clip and QuantizeLinear after an INT8 layer), in float32:
//   v = act(float(acc) · (x_scale · w_scale[m]) + z)
//   y = v, or sat(nearbyint(v / y_scale) + y_zp) with y_scale.
// A float output is float32, or float16 with attribute to = 10 (FP16 builds).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/half.h"
#include "ops/fused_epilogue.h"
#include "ops/linalg_matmul.h"
#include "ops/nn_common.h"
#include "ops/op_table.h"
#include "ops/quant_slots.h"

namespace kiln {
namespace ops {
namespace {

using namespace quant_slots;  // NOLINT: the INT8 layers' input slots

int32_t IntAt(const Tensor& t, int64_t i) {
  return t.dtype() == DataType::kInt8 ? t.data<int8_t>()[i] : static_cast<int32_t>(t.data<uint8_t>()[i]);
}

// Output type: y_zp's type when quantized (int8 when y_zp is omitted), else float32 or the `to` attribute's
// float16.
Expected<DataType> OutputType(const NodeContext& ctx, bool has_y_scale, DataType y_zp_dtype) {
  const int64_t to = ctx.attr_int("to", static_cast<int64_t>(DataType::kFloat));
  if (to != static_cast<int64_t>(DataType::kFloat) && to != static_cast<int64_t>(DataType::kFloat16))
    return ctx.Error("attribute 'to' must be float32 (1) or float16 (10), got " + std::to_string(to));
  if (has_y_scale && ctx.node().attr("to")) return ctx.Error("attribute 'to' applies only to a float output");
  if (!has_y_scale) return static_cast<DataType>(to);
  if (y_zp_dtype == DataType::kUndefined) return DataType::kInt8;
  if (!IsInt8Type(y_zp_dtype)) return ctx.Error("y_zero_point must be int8 or uint8");
  return y_zp_dtype;
}

// The epilogue's activation (fused_epilogue.h's attributes): "" (none), "Relu", "Clip" or "Swish" (SiLU),
// computed in float32 as the unfused ops' references do.
Expected<Activation> ReadQuantActivation(const NodeContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Activation act, ReadActivation(ctx, /*conv=*/true));
  if (act.kind != ActKind::kNone && act.kind != ActKind::kRelu && act.kind != ActKind::kClip &&
      act.kind != ActKind::kSwish)
    return ctx.UnsupportedError("unknown activation '" + ctx.attr_string("activation", "") +
                                "' (expected \"\", \"Relu\", \"Clip\" or \"Swish\")");
  return act;
}

// Whether act(v · m) = act(v) · m for m > 0, so that 1 / y_scale may join the multiplier.
bool CommutesWithScale(const Activation& act) {
  return act.kind == ActKind::kNone || act.kind == ActKind::kRelu;
}

// The quantization parameters of one node, read and checked against `channels`
// output channels.
struct QuantParams {
  float x_scale = 1.f;
  int32_t x_zp = 0;
  std::vector<float> w_scale;  // per output channel
  std::vector<int32_t> w_zp;   // per output channel
  std::vector<int32_t> bias;   // per output channel
  bool quantized_out = false;
  float y_scale = 1.f;
  int32_t y_zp = 0;
  DataType y_type = DataType::kFloat;
  Activation act;
  const Tensor* z = nullptr;  // the residual, y's shape
  float z_scale = 1.f;        // an int8/uint8 z's
  int32_t z_zp = 0;
};

Status ReadScalarScale(const RunContext& ctx, size_t i, const char* what, float* out) {
  const Tensor& t = ctx.input(i);
  if (t.dtype() != DataType::kFloat || t.numel() != 1)
    return ctx.Error(std::string(what) + " must be a float32 scalar, got " + t.Describe());
  *out = t.data<float>()[0];
  if (!(*out > 0.f) || !std::isfinite(*out))
    return ctx.Error(std::string(what) + " must be positive and finite");
  return Status::Ok();
}

Status ReadParams(const RunContext& ctx, int64_t channels, QuantParams* p) {
  for (size_t i : {kX, kXScale, kW, kWScale})
    if (!ctx.has_input(i)) return ctx.Error("input " + std::to_string(i) + " is required");
  const Tensor& x = ctx.input(kX);
  const Tensor& w = ctx.input(kW);
  if (!IsInt8Type(x.dtype()) || !IsInt8Type(w.dtype()))
    return ctx.Error("x and w must be int8 or uint8, got " + x.Describe() + " and " + w.Describe());
  KILN_RETURN_IF_ERROR(ReadScalarScale(ctx, kXScale, "x_scale", &p->x_scale));
  if (ctx.has_input(kXZp)) {
    const Tensor& z = ctx.input(kXZp);
    if (z.dtype() != x.dtype() || z.numel() != 1)
      return ctx.Error("x_zero_point must be a scalar of x's type");
    p->x_zp = IntAt(z, 0);
  }
  const Tensor& ws = ctx.input(kWScale);
  if (ws.dtype() != DataType::kFloat || (ws.numel() != 1 && ws.numel() != channels))
    return ctx.Error("w_scale must be float32, a scalar or one value per output channel (" +
                     std::to_string(channels) + "), got " + ws.Describe());
  p->w_scale.resize(static_cast<size_t>(channels));
  p->w_zp.assign(static_cast<size_t>(channels), 0);
  for (int64_t m = 0; m < channels; ++m) p->w_scale[m] = ws.data<float>()[ws.numel() == 1 ? 0 : m];
  if (ctx.has_input(kWZp)) {
    const Tensor& z = ctx.input(kWZp);
    if (z.dtype() != w.dtype() || (z.numel() != 1 && z.numel() != channels))
      return ctx.Error("w_zero_point must be of w's type, a scalar or one value per output channel");
    for (int64_t m = 0; m < channels; ++m) p->w_zp[m] = IntAt(z, z.numel() == 1 ? 0 : m);
  }
  p->bias.assign(static_cast<size_t>(channels), 0);
  if (ctx.has_input(kBias)) {
    const Tensor& b = ctx.input(kBias);
    if (b.dtype() != DataType::kInt32 || b.numel() != channels)
      return ctx.Error("bias must be int32 with one value per output channel (" + std::to_string(channels) +
                       "), got " + b.Describe());
    for (int64_t m = 0; m < channels; ++m) p->bias[m] = b.data<int32_t>()[m];
  }
  p->quantized_out = ctx.has_input(kYScale);
  if (p->quantized_out) {
    KILN_RETURN_IF_ERROR(ReadScalarScale(ctx, kYScale, "y_scale", &p->y_scale));
    if (ctx.has_input(kYZp)) {
      const Tensor& z = ctx.input(kYZp);
      if (z.numel() != 1) return ctx.Error("y_zero_point must be a scalar");
      KILN_ASSIGN_OR_RETURN(p->y_type, OutputType(ctx, true, z.dtype()));
      p->y_zp = IntAt(z, 0);
    } else {
      p->y_type = DataType::kInt8;
    }
  } else {
    KILN_ASSIGN_OR_RETURN(p->y_type, OutputType(ctx, false, DataType::kUndefined));
  }
  KILN_ASSIGN_OR_RETURN(p->act, ReadQuantActivation(ctx));
  if (ctx.num_inputs() > kZ && ctx.has_input(kZ)) {
    p->z = &ctx.input(kZ);
    const DataType zt = p->z->dtype();
    if (IsInt8Type(zt)) {
      if (!(ctx.num_inputs() > kZScale && ctx.has_input(kZScale)))
        return ctx.Error("an int8/uint8 z needs z_scale (input 10)");
      KILN_RETURN_IF_ERROR(ReadScalarScale(ctx, kZScale, "z_scale", &p->z_scale));
      if (ctx.num_inputs() > kZZp && ctx.has_input(kZZp)) {
        const Tensor& zp = ctx.input(kZZp);
        if (zp.dtype() != zt || zp.numel() != 1)
          return ctx.Error("z_zero_point must be a scalar of z's type");
        p->z_zp = IntAt(zp, 0);
      }
    } else if (zt != DataType::kFloat && zt != DataType::kFloat16) {
      return ctx.Error("z must be float32, float16, int8 or uint8, got " + p->z->Describe());
    }
  }
  return Status::Ok();
}

Status CheckResidualShape(const RunContext& ctx, const QuantParams& p, const std::vector<int64_t>& ydims) {
  if (p.z && p.z->dims() != ydims)
    return ctx.Error("z must have y's shape " + DimsToString(ydims) + ", got " + p.z->Describe());
  return Status::Ok();
}

// z[i] as a float: the value itself, or (z - z_zp) · z_scale.
float ResidualAt(const QuantParams& p, int64_t i) {
  switch (p.z->dtype()) {
    case DataType::kFloat:
      return p.z->data<float>()[i];
    case DataType::kFloat16:
      return static_cast<float>(Half::FromBits(p.z->data<uint16_t>()[i]));
    default:
      return static_cast<float>(IntAt(*p.z, i) - p.z_zp) * p.z_scale;
  }
}

// The epilogue over int32 accumulators laid out as [outer, channels, inner] (z, when given, too).
Tensor Epilogue(const QuantParams& p, const std::vector<int32_t>& acc, const std::vector<int64_t>& dims,
                int64_t outer, int64_t channels, int64_t inner) {
  Tensor y(p.y_type, dims);
  // The plain form folds 1 / y_scale into the multiplier; the residual form divides after the Add.
  const bool plain = !p.z && CommutesWithScale(p.act);
  std::vector<float> mult(static_cast<size_t>(channels));
  for (int64_t m = 0; m < channels; ++m)
    mult[m] = p.quantized_out && plain ? p.x_scale * p.w_scale[m] / p.y_scale : p.x_scale * p.w_scale[m];
  const float lo = p.y_type == DataType::kInt8 ? -128.f : 0.f;
  const float hi = p.y_type == DataType::kInt8 ? 127.f : 255.f;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t m = 0; m < channels; ++m) {
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t idx = (o * channels + m) * inner + i;
        float v = static_cast<float>(acc[idx] + p.bias[m]) * mult[m];
        if (p.z) v += ResidualAt(p, idx);
        v = ActivateFloat(v, p.act);
        if (!p.quantized_out) {
          if (p.y_type == DataType::kFloat16)
            y.mutable_data<uint16_t>()[idx] = Half(v).bits;
          else
            y.mutable_data<float>()[idx] = v;
          continue;
        }
        if (!plain) v = v / p.y_scale;
        const float q = std::clamp(std::nearbyint(v) + static_cast<float>(p.y_zp), lo, hi);
        if (p.y_type == DataType::kInt8)
          y.mutable_data<int8_t>()[idx] = static_cast<int8_t>(q);
        else
          y.mutable_data<uint8_t>()[idx] = static_cast<uint8_t>(q);
      }
    }
  }
  return y;
}

// Also checks the epilogue's activation and z.
DataType InferOutputType(InferContext& ctx, Status* st) {
  *st = ReadQuantActivation(ctx).status();
  if (st->ok() && ctx.num_inputs() > kZ && ctx.has_input(kZ)) {
    const DataType zt = ctx.input_dtype(kZ);
    if (IsInt8Type(zt) && !(ctx.num_inputs() > kZScale && ctx.has_input(kZScale)))
      *st = ctx.Error("an int8/uint8 z needs z_scale (input 10)");
    else if (!IsInt8Type(zt) && zt != DataType::kFloat && zt != DataType::kFloat16 &&
             zt != DataType::kUndefined)
      *st = ctx.Error("z must be float32, float16, int8 or uint8, got " + std::string(DataTypeName(zt)));
  }
  if (!st->ok()) return DataType::kFloat;
  const bool has_ys = ctx.num_inputs() > kYScale && ctx.has_input(kYScale);
  DataType zp = ctx.num_inputs() > kYZp && ctx.has_input(kYZp) ? ctx.input_dtype(kYZp) : DataType::kUndefined;
  auto t = OutputType(ctx, has_ys, zp);
  if (!t.ok()) {
    *st = t.status();
    return DataType::kFloat;
  }
  return *t;
}

}  // namespace

Status InferQConv(InferContext& ctx) {
  if (ctx.num_inputs() < 5)
    return ctx.Error("expects x, x_scale, x_zero_point, w, w_scale and optional inputs");
  Status st;
  DataType out = InferOutputType(ctx, &st);
  KILN_RETURN_IF_ERROR(st);
  return nn::InferConvOutput(ctx, kX, kW, out);
}

Status RunQConv(RunContext& ctx) {
  if (ctx.num_inputs() < 5)
    return ctx.Error("expects x, x_scale, x_zero_point, w, w_scale and optional inputs");
  const Tensor& x = ctx.input(kX);
  const Tensor& w = ctx.input(kW);
  nn::ConvGeom g;
  KILN_RETURN_IF_ERROR(nn::PrepareConv(ctx, x, w, &g));
  QuantParams p;
  KILN_RETURN_IF_ERROR(ReadParams(ctx, g.m, &p));
  std::vector<int32_t> xs(static_cast<size_t>(x.numel())), wsh(static_cast<size_t>(w.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) xs[i] = IntAt(x, i) - p.x_zp;
  const int64_t per_m = g.m > 0 ? w.numel() / g.m : 0;
  for (int64_t i = 0; i < w.numel(); ++i) wsh[i] = IntAt(w, i) - p.w_zp[per_m ? i / per_m : 0];
  std::vector<int64_t> ydims = {g.n, g.m};
  ydims.insert(ydims.end(), g.out.begin(), g.out.end());
  std::vector<int32_t> acc(static_cast<size_t>(g.n * g.m * g.out_size()), 0);
  nn::ConvForward<int32_t>(g, xs.data(), wsh.data(), acc.data());
  KILN_RETURN_IF_ERROR(CheckResidualShape(ctx, p, ydims));
  ctx.set_output(0, Epilogue(p, acc, ydims, g.n, g.m, g.out_size()));
  return Status::Ok();
}

Status InferQMatMul(InferContext& ctx) {
  if (ctx.num_inputs() < 5)
    return ctx.Error("expects a, a_scale, a_zero_point, b, b_scale and optional inputs");
  Status st;
  DataType out = InferOutputType(ctx, &st);
  KILN_RETURN_IF_ERROR(st);
  const Shape& b = ctx.input_shape(kW);
  if (b.rank_known() && b.rank() != 2) return ctx.Error("b must be 2-D [K, N]");
  KILN_ASSIGN_OR_RETURN(Shape s, linalg::MatMulShape(ctx, ctx.input_shape(kX), b));
  ctx.set_output(0, out, std::move(s));
  return Status::Ok();
}

Status RunQMatMul(RunContext& ctx) {
  if (ctx.num_inputs() < 5)
    return ctx.Error("expects a, a_scale, a_zero_point, b, b_scale and optional inputs");
  const Tensor& a = ctx.input(kX);
  const Tensor& b = ctx.input(kW);
  if (b.rank() != 2) return ctx.Error("b must be 2-D [K, N], got " + b.Describe());
  if (a.rank() < 1) return ctx.Error("a must have rank >= 1");
  const int64_t k = b.dim(0), n = b.dim(1);
  if (a.dims().back() != k)
    return ctx.Error("inner dimensions differ: " + a.Describe() + " x " + b.Describe());
  QuantParams p;
  KILN_RETURN_IF_ERROR(ReadParams(ctx, n, &p));
  const int64_t rows = k > 0 ? a.numel() / k : 0;
  std::vector<int32_t> bt(static_cast<size_t>(k * n));  // b - b_zp, transposed to [N, K]
  for (int64_t kk = 0; kk < k; ++kk)
    for (int64_t j = 0; j < n; ++j) bt[j * k + kk] = IntAt(b, kk * n + j) - p.w_zp[j];
  std::vector<int32_t> acc(static_cast<size_t>(rows * n), 0), arow(static_cast<size_t>(k));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t kk = 0; kk < k; ++kk) arow[kk] = IntAt(a, r * k + kk) - p.x_zp;
    for (int64_t j = 0; j < n; ++j) {
      int32_t s = 0;
      const int32_t* bj = bt.data() + j * k;
      for (int64_t kk = 0; kk < k; ++kk) s += arow[kk] * bj[kk];
      acc[r * n + j] = s;
    }
  }
  std::vector<int64_t> ydims = a.dims();
  ydims.back() = n;
  KILN_RETURN_IF_ERROR(CheckResidualShape(ctx, p, ydims));
  ctx.set_output(0, Epilogue(p, acc, ydims, rows, n, 1));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
