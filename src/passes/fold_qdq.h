// Explicit quantization: QDQ pairs around convolutions and matrix products
// folded into kiln's INT8 ops (ops/kiln_quant.cc), TensorRT's explicit mode.
//
//   DequantizeLinear(x_q) ─┐
//   DequantizeLinear(W_q) ─┼─ Conv / MatMul / Gemm ─[→ QuantizeLinear(y_scale, y_zp)]
//   [bias]                ─┘
//   ⇒ kiln.QConv / kiln.QMatMul(x_q, x_scale, x_zp, W_q, w_scale, w_zp, bias_i32, [y_scale, y_zp])
//
// Matched when: x_q is int8/uint8 with a constant per-tensor scale and zero
// point; W_q is a constant int8/uint8 tensor with a constant scale per tensor
// or per output channel (Conv: axis 0; MatMul [K, N]: axis 1; Gemm: the N
// axis of B, transB honoured by transposing the constant); Gemm has transA 0,
// alpha 1 and beta 1 (or no C); the bias (Conv's B, Gemm's C of N values) is
// constant, as an int32 DequantizeLinear at scale x_scale·w_scale (used as is,
// onnxruntime's quantize_static writes this) or as floats (quantized to int32
// at that scale). A QuantizeLinear that is the op's only user, with a
// constant per-tensor scale and an int8/uint8 zero point, becomes the
// requantization epilogue (the fused node produces the QuantizeLinear's
// output); otherwise the fused node returns float32 (int32 accumulation, FP32
// scale epilogue). DequantizeLinear nodes left without users are removed.
// Runs before the simplifier, whose constant folding would otherwise turn the
// weights' DequantizeLinear into float initializers.
#pragma once

#include <string>
#include <vector>

#include "passes/pass.h"

namespace kiln {

Status RunFoldQdq(Model& model, PassContext& ctx);

// The same, also listing one line per fused node ("node 'conv1' (Conv) runs
// INT8 as kiln.QConv: per-channel weight scales, int8 output") in `report`.
Status FoldQdq(Model& model, PassContext& ctx, std::vector<std::string>* report);

}  // namespace kiln
