// Build pass (run by RunBuildPasses after the INT8 folding, before fuse_gpu):
// the float tail of an INT8 layer into its epilogue (ops/kiln_quant.cc).
//
//   kiln.QConv / kiln.QMatMul (float y) → Add(·, r) → Relu / Clip → QuantizeLinear(s, zp)
//   ⇒ one kiln.QConv / kiln.QMatMul with z = r, activation and y_scale = s, y_zp = zp
//
// Each step is taken where the layer's float output has that op as its only
// user (and is no graph output), in this order:
//   - residual: an Add of the layer's output and r of the same shape
//     (float32, or a DequantizeLinear's input at a constant per-tensor scale,
//     read as int8/uint8 z with z_scale / z_zp). The layer is rebuilt at the
//     Add's place, since r may be computed after it (ResNet's downsample);
//   - activation: Relu, Clip with constant bounds, or SiLU as Mul(y, Sigmoid(y))
//     (YOLO's convolutions; y then has those two users);
//   - requantization: a QuantizeLinear with a constant scalar scale and an
//     int8/uint8 zero point: the layer then writes the int8 tensor itself.
// Before: an INT8 ResNet-50 block ran the product, a kernel for its ReLU (or
// its residual Add and ReLU) and one for the next layer's QuantizeLinear, each
// a pass over the activation in float32.
//
// With quantized_residuals (implicit quantization, `--int8` on a float model:
// TensorRT's implicit mode quantizes the residual stream too), a layer whose
// float output is read only by one such QuantizeLinear and as other layers' z
// writes the int8 tensor, and those layers read it as an int8 z at that scale:
// ResNet's block output then crosses memory once, in int8, instead of in
// float32 three times (written, quantized, added). The residual becomes
// dq(q(y)): half a step of the block output's scale of error per block.
#pragma once

#include <map>
#include <string>

#include "passes/pass.h"

namespace kiln {

// A residual branch's own output (ResNet's downsample, read only as conv3's z) has no QuantizeLinear to
// take the scale from: with a calibrated scale for it in residual_scales (value name → scale), the layer
// writes it in int8 at that scale too, and conv3 reads an int8 z.
struct QConvEpilogueOptions {
  bool quantized_residuals = false;
  std::map<std::string, float> residual_scales;
};

Status RunQConvEpilogue(Model& model, PassContext& ctx);
Status RunQConvEpilogue(Model& model, PassContext& ctx, const QConvEpilogueOptions& options);

}  // namespace kiln
