// ONNX's quantized operator form (onnxruntime's QuantFormat.QOperator, the ONNX
// model zoo's int8 models) → kiln's INT8 ops, which the CUDA backend runs:
//
//   QLinearConv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B?)
//   ⇒ kiln.QConv(x, x_scale, x_zp, w, w_scale, w_zp, B, y_scale, y_zp)    (Conv's attributes)
//   QLinearMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp)
//   ⇒ kiln.QMatMul(a, a_scale, a_zp, b, b_scale, b_zp, -, y_scale, y_zp)
//
// Matched when every scale and zero point is a constant, x / a and y per tensor (scalars), w / b a
// constant int8/uint8 weight with per-tensor or per-output-channel (w's dim 0, b's dim 1) parameters,
// b 2-D, and B a constant int32 vector; anything else (QLinearMatMul's per-row a_scale, a computed b)
// stays, and the GPU check names the node. The kiln ops accumulate the same int32 sums and requantize
// in float32 (onnxruntime's MLAS does too); the ONNX ops' CPU references form the product in double,
// so the two can differ by one unit on the rare element whose scaled sum sits at a rounding tie.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunLowerQLinear(Model& model, PassContext& ctx);

}  // namespace kiln
