// Implicit quantization (`kiln build --int8 --calib DIR`): QDQ inserted around
// the convolutions and matrix products chosen for INT8, so that fold_qdq.h
// (the explicit path) makes them kiln.QConv / kiln.QMatMul. TensorRT's
// recommended placement: the inputs of each layer are quantized (activations
// per tensor, symmetric int8 at the calibrated scale; weights per output
// channel, symmetric int8 at max|w|/127), its output stays float (FP32 scale
// epilogue), so activations between layers (ReLU, pooling, residual adds) run
// in float and the next layer's input is quantized again.
#pragma once

#include <map>
#include <set>
#include <string>

#include "passes/pass.h"

namespace kiln {

// Conv / MatMul / Gemm with a constant float32 weight the fused INT8 ops take
// (Conv: any; MatMul: 2-D weight; Gemm: transA 0, alpha 1, beta 1) and a
// float32 activation input.
bool IsInt8Candidate(const Node& n);
// The output-channel axis of a candidate's weight (Conv 0, MatMul 1, Gemm
// transB ? 0 : 1).
int Int8WeightAxis(const Node& n);
// Per-output-channel symmetric int8 scales of a float weight: max|w|/127 (1
// for an all-zero channel).
std::vector<float> Int8WeightScales(const Tensor& w, int axis);
// w quantized: clamp(round(w / scale[c]), -127, 127).
Tensor QuantizeWeight(const Tensor& w, int axis, const std::vector<float>& scales);

struct InsertQdqOptions {
  // Activation value name → scale (symmetric int8, zero point 0).
  std::map<std::string, float> act_scales;
  // Node names kept in float (the fallback's choice).
  std::set<std::string> keep_float;
};

// Inserts QuantizeLinear → DequantizeLinear on the activation input of every
// candidate not in keep_float whose input has a scale, and DequantizeLinear on
// its weight. One Q/DQ pair per activation value, shared by its readers.
Status InsertQdq(Model& model, PassContext& ctx, const InsertQdqOptions& options);

}  // namespace kiln
