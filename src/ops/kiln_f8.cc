// kiln's FP8 matrix product (domain "kiln", see defs/kiln.def), made by
// build/fp8.cc (`kiln build --fp8`) from MatMul/Gemm with a constant weight and
// run by the CUDA backend on cuBLASLt FP8 (backend/cuda/f8gemm.cu):
//
//   F8MatMul(a, a_scale, b, b_scale, bias?, z?) → y = act(a·bᵀ + bias + z)
//
// a: float32 or float16 [..., K] (a's batch dims broadcast); a_scale: float32
// scalar, the per-tensor activation scale (calibrated amax / 448). b: float8e4m3fn
// [N, K] — the weight transposed (the "TN" layout cuBLASLt's FP8 kernels take);
// b_scale: float32 scalar. y: a's type, [..., N]. bias ([N], a's type), z (y's
// shape and type) and the "activation" attribute ("" or "Relu") are
// kiln.FusedMatMul's epilogue (ops/fused_epilogue.h), fused by
// passes/fuse_gpu.cc into cuBLASLt's epilogue.
//
// The CPU reference emulates the GPU: each a is quantized to E4M3
// (core/float8.h QuantizeE4M3: a / a_scale, round to nearest even, saturate to
// ±448), the E4M3 values of a and b are multiplied and summed in FP32 (their
// products are exact in FP32), the sum is scaled by a_scale·b_scale and
// rounded to y's type, then the epilogue runs as the unfused ops would.
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

constexpr size_t kA = 0, kAScale = 1, kB = 2, kBScale = 3, kBias = 4, kZ = 5;

bool IsActivationType(DataType dt) { return dt == DataType::kFloat || dt == DataType::kFloat16; }

Expected<float> ScalarScale(const RunContext& ctx, size_t i, const char* what) {
  const Tensor& t = ctx.input(i);
  if (t.dtype() != DataType::kFloat || t.numel() != 1)
    return ctx.Error(std::string(what) + " must be a float32 scalar, got " + t.Describe());
  const float s = t.data<float>()[0];
  if (!(s > 0.f) || !std::isfinite(s)) return ctx.Error(std::string(what) + " must be positive and finite");
  return s;
}

}  // namespace

Status InferF8MatMul(InferContext& ctx) {
  if (ctx.num_inputs() < 4 || ctx.num_inputs() > 6) return ctx.Error("expects a, a_scale, b, b_scale, bias?, z?");
  const DataType at = ctx.input_dtype(kA);
  if (at != DataType::kUndefined && !IsActivationType(at))
    return ctx.Error("a must be float32 or float16, got " + std::string(DataTypeName(at)));
  if (ctx.input_dtype(kB) != DataType::kUndefined && ctx.input_dtype(kB) != DataType::kFloat8E4M3FN)
    return ctx.Error("b must be float8e4m3fn, got " + std::string(DataTypeName(ctx.input_dtype(kB))));
  const Shape& b = ctx.input_shape(kB);
  if (b.rank_known() && b.rank() != 2) return ctx.Error("b must be 2-D [N, K], got " + b.ToString());
  Shape kn = b.rank_known() ? Shape(std::vector<Dim>{b[1], b[0]}) : Shape();
  KILN_ASSIGN_OR_RETURN(Shape s, linalg::MatMulShape(ctx, ctx.input_shape(kA), kn));
  ctx.set_output(0, at == DataType::kUndefined ? DataType::kFloat : at, std::move(s));
  return InferProductEpilogue(ctx, kBias, kZ, b.rank_known() ? b[0] : Dim(), at);
}

Status RunF8MatMul(RunContext& ctx) {
  if (ctx.num_inputs() < 4 || ctx.num_inputs() > 6) return ctx.Error("expects a, a_scale, b, b_scale, bias?, z?");
  for (size_t i = 0; i < 4; ++i)
    if (!ctx.has_input(i)) return ctx.Error("input " + std::to_string(i) + " is required");
  const Tensor& a = ctx.input(kA);
  const Tensor& b = ctx.input(kB);
  if (!IsActivationType(a.dtype()) || a.rank() < 1)
    return ctx.Error("a must be float32 or float16 of rank >= 1, got " + a.Describe());
  if (b.dtype() != DataType::kFloat8E4M3FN || b.rank() != 2)
    return ctx.Error("b must be float8e4m3fn [N, K], got " + b.Describe());
  const int64_t n = b.dim(0), k = b.dim(1);
  if (a.dims().back() != k) return ctx.Error("inner dimensions differ: " + a.Describe() + " x " + b.Describe() + " (b is [N, K])");
  KILN_ASSIGN_OR_RETURN(float a_scale, ScalarScale(ctx, kAScale, "a_scale"));
  KILN_ASSIGN_OR_RETURN(float b_scale, ScalarScale(ctx, kBScale, "b_scale"));
  float decode[256];
  for (int c = 0; c < 256; ++c) decode[c] = Float8E4M3FNToFloat(static_cast<uint8_t>(c));
  const int64_t rows = k > 0 ? a.numel() / k : 0;
  std::vector<float> qa(static_cast<size_t>(a.numel())), qb(static_cast<size_t>(b.numel()));
  for (int64_t i = 0; i < a.numel(); ++i) {
    const float x = a.dtype() == DataType::kFloat ? a.data<float>()[i] : static_cast<float>(a.data<Half>()[i]);
    qa[i] = decode[QuantizeE4M3(x, a_scale)];
  }
  const uint8_t* bits = b.data<uint8_t>();
  for (int64_t i = 0; i < b.numel(); ++i) qb[i] = decode[bits[i]];
  std::vector<float> acc(static_cast<size_t>(rows * n), 0.f);
  linalg::Product<float>(rows, n, k, MatrixRef<float>::RowMajor(qa.data(), k),
                         MatrixRef<float>::Transposed(qb.data(), k), acc.data());
  std::vector<int64_t> ydims = a.dims();
  ydims.back() = n;
  Tensor y(a.dtype(), ydims);
  const float alpha = a_scale * b_scale;
  for (int64_t i = 0; i < rows * n; ++i) {
    if (a.dtype() == DataType::kFloat)
      y.mutable_data<float>()[i] = acc[i] * alpha;
    else
      y.mutable_data<Half>()[i] = Half(acc[i] * alpha);
  }
  KILN_RETURN_IF_ERROR(RunProductEpilogue(ctx, &y, kBias, kZ));
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
