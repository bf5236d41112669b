// Precision analysis for `kiln build --fp16`: the nodes that must stay FP32
// because their values may leave FP16's range (max 65504, smallest normal
// 6.1e-5), whatever form the exporter wrote. passes/fp16.cc keeps these nodes
// in FP32 and casts at the island boundaries.
//
// The rule. Every float32 value has a range class:
//   safe  — what FP16 holds as well as the surrounding activations;
//   large — may exceed FP16's range: squares, exponentials and sums of them;
//   scale — a normaliser made from a large value (√, 1/x, x^-½ of it): in
//           range for FP16, but only meaningful together with what it scales;
//   position — positions and the angles made from them: whole numbers past
//           FP16's 2048 and values that Cos/Sin need to a fraction of a unit.
// Seeds (the node stays FP32 whatever its inputs):
//   Mul(x, x), Pow(x, c) with c > 1 or a non-constant exponent, Exp,
//   ReduceSumSquare → large; ReduceL2 → scale; ReduceLogSumExp → safe;
//   ReduceSum over more than `large_reduction` elements → large;
//   ReduceMean over more than `large_reduction` elements → safe (the node
//   alone accumulates and stores in FP32);
//   a float Range, or the float Cast of an integer Range → position (FP16
//   holds integers exactly only to 2048, and pos·inv_freq rounded to FP16
//   moves a rotary/sinusoidal angle by up to half an ulp of pos);
//   with calibration (`--calib-inputs`), a node of the main graph whose
//   float output measured beyond `fp16_limit` → large (a graph input measured
//   beyond it is large too, and its readers stay FP32).
// Propagation (a node that reads a large, scale or position value stays FP32):
//   position through Mul, Div, Einsum, MatMul and the pass-through ops below
//   when its other float inputs are positions or constants (the angles
//   pos·inv_freq); anything else (Cos/Sin, a Concat with activations) → safe;
//   Sqrt, Reciprocal, Pow(·, c ≤ 1) of large/scale → scale;
//   Div(a, b) with b large/scale → safe (the normalising division);
//   Mul with one scale input and one non-scale input → safe (the normalising
//   product, x·rsqrt(var) or e·(1/Σe)); otherwise Mul → large if an input is;
//   Add/Sub/Max/Min/Sum/Neg/Abs/Relu/Where, reductions, Cast and data
//   movement (Reshape, Transpose, Slice, Concat, ...) keep the largest class
//   of their inputs;
//   anything else (Log, Softmax, LayerNormalization, Sigmoid, MatMul, Conv,
//   ...) stays FP32 itself, as it reads an FP32 value, and its output is safe.
// So an island runs from the first node that squares/exponentiates, through
// the reduction and the ε/√/reciprocal, to the normalising Div/Mul, and ends
// where the values are back in a safe range. Control-flow nodes never join;
// their bodies (If/Loop/Scan) are analysed with the outer classes known.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln {

struct Fp32IslandOptions {
  // A ReduceSum/ReduceMean over more elements than this stays FP32.
  int64_t large_reduction = 4096;
  // Measured max |v| per value name of the main graph (build/calibrate.h).
  std::map<std::string, double> measured_max;
  double fp16_limit = 65504.0 / 4;  // FP16's largest value, with a 4× margin
};

struct Fp32Node {
  const Node* node = nullptr;
  std::string reason;  // e.g. "squares 'x' (Mul(x, x)): may exceed FP16's range"
};

// The nodes of the model (its graph and every subgraph) that stay FP32, in
// graph order (a subgraph's nodes after the node that holds it), each once.
std::vector<Fp32Node> FindFp32Islands(const Model& model, const Fp32IslandOptions& options = {});

}  // namespace kiln
