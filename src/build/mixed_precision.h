// Mixed precision for quantized builds (INT8 in build/int8.h, FP8 in
// build/fp8.h): which of the candidate layers stay float. Two checks, the
// same for both formats, each measured on the CPU reference against the FP32
// model:
//  - isolated: one layer quantized alone, on the first calibration input (its
//    FP32 output against the op run on fake-quantized input and weight);
//    above a per-layer threshold it stays float;
//  - whole model: while the quantized model's worst output error over up to
//    four calibration inputs exceeds a threshold, the layers of largest
//    effect on the output stay float, as few as a bisection on their number
//    finds (error is taken to fall as more stay float). A layer's effect is
//    the model's output error with that layer alone quantized (first
//    calibration input); layers are ranked by it (the 64 of largest isolated
//    error; any beyond, by isolated error).
// Both errors are rel L2 (reference/compare.h).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"
#include "ops/op_context.h"

namespace kiln {

// Input 0 and output 0 of each of `layers`, by value name, when the FP32
// model runs on `feed`.
Expected<std::map<std::string, Tensor>> LayerValues(const Model& model, const std::vector<Node*>& layers,
                                                    const std::map<std::string, RtValue>& feed);

// A quantize-dequantize round trip of a tensor, as the quantized kernel sees it.
using FakeQuant = std::function<Tensor(const Tensor&)>;

// Layer n's isolated error: its FP32 output `y` against n run on act(x) and
// weight(W) (input 1, a constant); other inputs as they are.
Expected<double> IsolatedError(const Model& model, const Node& n, const Tensor& x, const Tensor& y,
                               const FakeQuant& act, const FakeQuant& weight);

// A calibration input and the FP32 model's outputs on it.
struct Probe {
  std::map<std::string, RtValue> feed;
  std::vector<RtValue> want;
};
Expected<Probe> MakeProbe(const Model& model, std::map<std::string, RtValue> feed);

// The quantized model with the layers named in `keep_float` left float.
using QuantizeExcept = std::function<Expected<std::unique_ptr<Model>>(const std::set<std::string>& keep_float)>;

struct WholeModelCheck {
  std::string format;   // "INT8", "FP8"
  std::string flag;     // the threshold's flag, for the note
  double target = 0;    // rel L2; 0: off
  std::string kept;     // " stays FP32: " / " stays FP16: "
};

// The whole-model check over `probes`. `isolated`: each quantized layer's
// isolated error (layers without one, or already in *keep_float, are not
// ranked). Adds the layers that stay float to *keep_float and their report
// lines to *verdict (node name → line), and a note with the errors before
// and after.
Status WholeModelFallback(const std::vector<Node*>& candidates, const std::map<std::string, double>& isolated,
                          const std::vector<Probe>& probes, const QuantizeExcept& quantize,
                          const WholeModelCheck& check, std::set<std::string>* keep_float,
                          std::map<std::string, std::string>* verdict, std::vector<std::string>* notes);

}  // namespace kiln
