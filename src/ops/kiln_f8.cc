// kiln's FP8 ops (domain "kiln", see defs/kiln.def), made by build/fp8.cc
// (`kiln build --fp8`) from MatMul/Gemm with a constant weight and run by the
// CUDA backend (backend/cuda/f8gemm.cu):
//
//   QuantizeE4M3(x, scale) → q
//   F8MatMul(a, a_scale, b, b_scale, bias?, z?, y_scale_inv?)
//     → y = act(a_scale·b_scale·a·bᵀ + bias + z)   [· y_scale_inv, as E4M3]
//
// QuantizeE4M3: x float32 or float16; scale a float32 scalar (the calibrated
// amax / 448); q float8e4m3fn of x's shape, core/float8.h QuantizeE4M3 per
// element (x / scale, round to nearest even, saturate to ±448, NaN stays
// NaN). One per quantized activation: products that read one value share it.
//
// F8MatMul: a float8e4m3fn [..., K] (a's batch dims broadcast) with its
// float32 scalar scale a_scale; b float8e4m3fn [N, K] — the weight transposed
// (the "TN" layout cuBLASLt's FP8 kernels take) — with b_scale. y [..., N] of
// the float type in attribute "to" (float32 or float16, default float32).
// bias ([N], y's type), z (y's shape and type) and the "activation"
// attribute ("", "Relu" or "GeluTanh") are kiln.FusedMatMul's epilogue
// (ops/fused_epilogue.h), fused by passes/fuse_gpu.cc into cuBLASLt's.
//
// E4M3 output (passes/f8_epilogue.cc: the next product's quantization taken
// into this one's epilogue): "to" float8e4m3fn and y_scale_inv, a float32
// scalar, the reciprocal of the output's scale. The epilogue runs in float16
// (bias float16, no z), then y = E4M3(v · y_scale_inv), rounded to nearest
// even and saturated to ±448: cuBLASLt's D scale multiplies, so the reference
// multiplies by the same reciprocal.
//
// LayerNormE4M3(x, scale, bias?, q_scale) → (y, q): LayerNormalization (its
// axis, epsilon; stash_type float) whose y also leaves as E4M3 for the next
// product: q = QuantizeE4M3(y, q_scale) of the y stored (passes/f8_epilogue.cc;
// one kernel writes both).
//
// The CPU reference multiplies the E4M3 values and sums in FP32 (their
// products are exact in FP32), scales the sum by a_scale·b_scale and rounds
// it to y's type, then runs the epilogue as the unfused ops would.
#include <cmath>
#include <string>
#include <vector>

#include "core/float8.h"
#include "core/half.h"
#include "ops/fused_epilogue.h"
#include "ops/linalg_matmul.h"
#include "ops/op_table.h"

namespace kiln {
namespace ops {
namespace {

constexpr size_t kA = 0, kAScale = 1, kB = 2, kBScale = 3, kBias = 4, kZ = 5, kYScaleInv = 6;

bool IsActivationType(DataType dt) { return dt == DataType::kFloat || dt == DataType::kFloat16; }

Expected<DataType> OutputType(const NodeContext& ctx) {
  const int64_t to = ctx.attr_int("to", static_cast<int64_t>(DataType::kFloat));
  const bool e4m3 = to == static_cast<int64_t>(DataType::kFloat8E4M3FN);
  if (to != static_cast<int64_t>(DataType::kFloat) && to != static_cast<int64_t>(DataType::kFloat16) && !e4m3)
    return ctx.Error("attribute 'to' must be float32 (1), float16 (10) or float8e4m3fn (17), got " +
                     std::to_string(to));
  const Node& n = ctx.node();
  const bool has_inv = n.input(kYScaleInv) != nullptr;
  if (e4m3 != has_inv)
    return ctx.Error(e4m3 ? "an E4M3 output needs y_scale_inv (input 6)"
                          : "y_scale_inv (input 6) needs 'to' float8e4m3fn (17)");
  if (e4m3 && n.input(kZ)) return ctx.Error("an E4M3 output takes no z");
  return static_cast<DataType>(to);
}

// The type the epilogue runs in: y's, or float16 for an E4M3 y.
DataType EpilogueType(DataType yt) { return yt == DataType::kFloat8E4M3FN ? DataType::kFloat16 : yt; }

Status CheckE4M3(const InferContext& ctx, size_t i, const char* what) {
  const DataType t = ctx.input_dtype(i);
  if (t != DataType::kUndefined && t != DataType::kFloat8E4M3FN)
    return ctx.Error(std::string(what) + " must be float8e4m3fn, got " + std::string(DataTypeName(t)));
  return Status::Ok();
}

Expected<float> ScalarScale(const RunContext& ctx, size_t i, const char* what) {
  const Tensor& t = ctx.input(i);
  if (t.dtype() != DataType::kFloat || t.numel() != 1)
    return ctx.Error(std::string(what) + " must be a float32 scalar, got " + t.Describe());
  const float s = t.data<float>()[0];
  if (!(s > 0.f) || !std::isfinite(s)) return ctx.Error(std::string(what) + " must be positive and finite");
  return s;
}

// x (input 0) float32 or float16 and its E4M3 scale (input `scale_at`) float32, where known.
Status CheckQuantizeTypes(const InferContext& ctx, size_t scale_at, const char* scale_name) {
  const DataType xt = ctx.input_dtype(0);
  if (xt != DataType::kUndefined && !IsActivationType(xt))
    return ctx.Error("x must be float32 or float16, got " + std::string(DataTypeName(xt)));
  const DataType st = ctx.input_dtype(scale_at);
  if (st != DataType::kUndefined && st != DataType::kFloat)
    return ctx.Error(std::string(scale_name) + " must be float32, got " + std::string(DataTypeName(st)));
  return Status::Ok();
}

// core/float8.h QuantizeE4M3 of every element of x (float32 or float16).
Tensor ToE4M3(const Tensor& x, float scale) {
  Tensor q(DataType::kFloat8E4M3FN, x.dims());
  uint8_t* out = q.mutable_data<uint8_t>();
  for (int64_t i = 0; i < x.numel(); ++i)
    out[i] = QuantizeE4M3(
        x.dtype() == DataType::kFloat ? x.data<float>()[i] : static_cast<float>(x.data<Half>()[i]), scale);
  return q;
}

}  // namespace

Status InferQuantizeE4M3(InferContext& ctx) {
  if (ctx.num_inputs() != 2 || !ctx.has_input(0) || !ctx.has_input(1))
    return ctx.Error("expects x and scale");
  KILN_RETURN_IF_ERROR(CheckQuantizeTypes(ctx, 1, "scale"));
  ctx.set_output(0, DataType::kFloat8E4M3FN, ctx.input_shape(0));
  return Status::Ok();
}

Status RunQuantizeE4M3(RunContext& ctx) {
  if (ctx.num_inputs() != 2 || !ctx.has_input(0) || !ctx.has_input(1))
    return ctx.Error("expects x and scale");
  const Tensor& x = ctx.input(0);
  if (!IsActivationType(x.dtype())) return ctx.Error("x must be float32 or float16, got " + x.Describe());
  KILN_ASSIGN_OR_RETURN(float scale, ScalarScale(ctx, 1, "scale"));
  ctx.set_output(0, ToE4M3(x, scale));
  return Status::Ok();
}

Status InferLayerNormE4M3(InferContext& ctx) {
  if (ctx.num_inputs() != 4 || !ctx.has_input(0) || !ctx.has_input(1) || !ctx.has_input(3) ||
      ctx.num_outputs() != 2)
    return ctx.Error("expects x, scale, bias?, q_scale and outputs y, q");
  KILN_RETURN_IF_ERROR(CheckQuantizeTypes(ctx, 3, "q_scale"));
  ctx.set_output(0, ctx.input_dtype(0), ctx.input_shape(0));
  ctx.set_output(1, DataType::kFloat8E4M3FN, ctx.input_shape(0));
  return Status::Ok();
}

Status RunLayerNormE4M3(RunContext& ctx) {
  if (ctx.num_inputs() != 4 || !ctx.has_input(0) || !ctx.has_input(1) || !ctx.has_input(3))
    return ctx.Error("expects x, scale, bias? and q_scale");
  if (!IsActivationType(ctx.input(0).dtype()))
    return ctx.Error("x must be float32 or float16, got " + ctx.input(0).Describe());
  KILN_ASSIGN_OR_RETURN(float scale, ScalarScale(ctx, 3, "q_scale"));
  RunContext norm(
      ctx.node(), 17,
      {&ctx.input_value(0), &ctx.input_value(1), ctx.has_input(2) ? &ctx.input_value(2) : nullptr});
  KILN_RETURN_IF_ERROR(RunLayerNormalization(norm));
  Tensor y = std::move(norm.outputs()[0].tensor);
  ctx.set_output(1, ToE4M3(y, scale));
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

Status InferF8MatMul(InferContext& ctx) {
  if (ctx.num_inputs() < 4 || ctx.num_inputs() > 7)
    return ctx.Error("expects a, a_scale, b, b_scale, bias?, z?, y_scale_inv?");
  KILN_RETURN_IF_ERROR(CheckE4M3(ctx, kA, "a"));
  KILN_RETURN_IF_ERROR(CheckE4M3(ctx, kB, "b"));
  KILN_ASSIGN_OR_RETURN(DataType yt, OutputType(ctx));
  const Shape& b = ctx.input_shape(kB);
  if (b.rank_known() && b.rank() != 2) return ctx.Error("b must be 2-D [N, K], got " + b.ToString());
  Shape kn = b.rank_known() ? Shape(std::vector<Dim>{b[1], b[0]}) : Shape();
  KILN_ASSIGN_OR_RETURN(Shape s, linalg::MatMulShape(ctx, ctx.input_shape(kA), kn));
  ctx.set_output(0, yt, std::move(s));
  return InferProductEpilogue(ctx, kBias, kZ, b.rank_known() ? b[0] : Dim(), EpilogueType(yt));
}

Status RunF8MatMul(RunContext& ctx) {
  if (ctx.num_inputs() < 4 || ctx.num_inputs() > 7)
    return ctx.Error("expects a, a_scale, b, b_scale, bias?, z?, y_scale_inv?");
  for (size_t i = 0; i < 4; ++i)
    if (!ctx.has_input(i)) return ctx.Error("input " + std::to_string(i) + " is required");
  const Tensor& a = ctx.input(kA);
  const Tensor& b = ctx.input(kB);
  if (a.dtype() != DataType::kFloat8E4M3FN || a.rank() < 1)
    return ctx.Error("a must be float8e4m3fn of rank >= 1, got " + a.Describe());
  if (b.dtype() != DataType::kFloat8E4M3FN || b.rank() != 2)
    return ctx.Error("b must be float8e4m3fn [N, K], got " + b.Describe());
  const int64_t n = b.dim(0), k = b.dim(1);
  if (a.dims().back() != k) return ctx.Error("inner dimensions differ: " + a.Describe() + " x " + b.Describe() + " (b is [N, K])");
  KILN_ASSIGN_OR_RETURN(float a_scale, ScalarScale(ctx, kAScale, "a_scale"));
  KILN_ASSIGN_OR_RETURN(float b_scale, ScalarScale(ctx, kBScale, "b_scale"));
  KILN_ASSIGN_OR_RETURN(DataType out_type, OutputType(ctx));
  const DataType yt = EpilogueType(out_type);
  float decode[256];
  for (int c = 0; c < 256; ++c) decode[c] = Float8E4M3FNToFloat(static_cast<uint8_t>(c));
  auto decoded = [&](const Tensor& t) {
    std::vector<float> v(static_cast<size_t>(t.numel()));
    for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = decode[t.data<uint8_t>()[i]];
    return v;
  };
  const std::vector<float> qa = decoded(a), qb = decoded(b);
  const int64_t rows = k > 0 ? a.numel() / k : 0;
  std::vector<float> acc(static_cast<size_t>(rows * n), 0.f);
  linalg::Product<float>(rows, n, k, MatrixRef<float>::RowMajor(qa.data(), k),
                         MatrixRef<float>::Transposed(qb.data(), k), acc.data());
  std::vector<int64_t> ydims = a.dims();
  ydims.back() = n;
  Tensor y(yt, ydims);
  const float alpha = a_scale * b_scale;
  for (int64_t i = 0; i < rows * n; ++i) {
    if (yt == DataType::kFloat)
      y.mutable_data<float>()[i] = acc[i] * alpha;
    else
      y.mutable_data<Half>()[i] = Half(acc[i] * alpha);
  }
  KILN_RETURN_IF_ERROR(RunProductEpilogue(ctx, &y, kBias, kZ));
  if (out_type == DataType::kFloat8E4M3FN) {
    KILN_ASSIGN_OR_RETURN(float inv, ScalarScale(ctx, kYScaleInv, "y_scale_inv"));
    Tensor q(DataType::kFloat8E4M3FN, y.dims());
    for (int64_t i = 0; i < y.numel(); ++i)
      q.mutable_data<uint8_t>()[i] = QuantizeE4M3(static_cast<float>(y.data<Half>()[i]) * inv, 1.f);
    y = std::move(q);
  }
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
