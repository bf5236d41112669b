// kiln's quantized convolution and matrix product (domain "kiln", see
// defs/kiln.def), made by passes/fold_qdq.cc from DequantizeLinear → Conv /
// MatMul / Gemm (→ QuantizeLinear) and run by the CUDA backend on cuBLASLt /
// cuDNN INT8:
//
//   QConv(x, x_scale, x_zp?, w, w_scale, w_zp?, bias?, y_scale?, y_zp?)  attrs: Conv's
//   QMatMul(a, a_scale, a_zp?, b, b_scale, b_zp?, bias?, y_scale?, y_zp?)
//
// x / a: int8 or uint8, per-tensor (scalar) scale and zero point. w: int8 or
// uint8 [M, C/group, k...]; b: int8 or uint8 [K, N] (a constant weight; a's
// batch dims broadcast). Weight scales and zero points per tensor or per
// output channel (w's dim 0, b's dim 1). bias: int32 per output channel at
// scale x_scale·w_scale[m] (QLinearConv's convention).
//
// The CPU reference accumulates in int32, acc = Σ (x - x_zp)(w - w_zp) + bias,
// then applies the FP32 scale epilogue:
//   - without y_scale: y = float(acc) · (x_scale · w_scale[m])      (float32)
//   - with y_scale:    y = sat(nearbyint(float(acc) · (x_scale · w_scale[m] / y_scale)) + y_zp)
//     in y_zp's type (int8 when y_zp is omitted): onnxruntime's QLinearConv /
//     MLAS requantization, so a folded graph matches onnxruntime's own fused
//     QDQ kernels.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "ops/linalg_matmul.h"
#include "ops/nn_common.h"
#include "ops/op_table.h"

namespace kiln {
namespace ops {
namespace {

// Input slots shared by both ops.
constexpr size_t kX = 0, kXScale = 1, kXZp = 2, kW = 3, kWScale = 4, kWZp = 5, kBias = 6, kYScale = 7,
                 kYZp = 8;

int32_t IntAt(const Tensor& t, int64_t i) {
  return t.dtype() == DataType::kInt8 ? t.data<int8_t>()[i] : static_cast<int32_t>(t.data<uint8_t>()[i]);
}

// Output type: y_zp's type when quantized (int8 when y_zp is omitted), else float32.
Expected<DataType> OutputType(const NodeContext& ctx, bool has_y_scale, DataType y_zp_dtype) {
  if (!has_y_scale) return DataType::kFloat;
  if (y_zp_dtype == DataType::kUndefined) return DataType::kInt8;
  if (!IsInt8Type(y_zp_dtype)) return ctx.Error("y_zero_point must be int8 or uint8");
  return y_zp_dtype;
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
  }
  return Status::Ok();
}

// The epilogue over int32 accumulators laid out as [outer, channels, inner].
Tensor Epilogue(const QuantParams& p, const std::vector<int32_t>& acc, const std::vector<int64_t>& dims,
                int64_t outer, int64_t channels, int64_t inner) {
  Tensor y(p.y_type, dims);
  std::vector<float> mult(static_cast<size_t>(channels));
  for (int64_t m = 0; m < channels; ++m)
    mult[m] = p.quantized_out ? p.x_scale * p.w_scale[m] / p.y_scale : p.x_scale * p.w_scale[m];
  const float lo = p.y_type == DataType::kInt8 ? -128.f : 0.f;
  const float hi = p.y_type == DataType::kInt8 ? 127.f : 255.f;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t m = 0; m < channels; ++m) {
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t idx = (o * channels + m) * inner + i;
        const float v = static_cast<float>(acc[idx] + p.bias[m]) * mult[m];
        if (!p.quantized_out) {
          y.mutable_data<float>()[idx] = v;
          continue;
        }
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

DataType InferOutputType(InferContext& ctx, Status* st) {
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
  ctx.set_output(0, Epilogue(p, acc, ydims, rows, n, 1));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
