// Measured ranges for the FP32 islands of an FP16 build (`kiln build --fp16
// --calib-inputs DIR`): runs the FP32 model on the CPU reference over the
// calibration inputs and records the largest magnitude of every float value
// of the main graph (passes/fp32_islands.h keeps those beyond FP16's range in
// FP32).
#pragma once

#include <map>
#include <string>

#include "ir/graph.h"

namespace kiln {

// DIR holds one sample set (a .npy file per graph input, named after the
// input: NAME.npy, with '/' and ':' in the name written as '_'), or
// subdirectories each holding one. Returns value name → max |v| over all
// sample sets (infinity for an overflow); errors name the file or input.
Expected<std::map<std::string, double>> MeasureRanges(const Model& model, const std::string& dir);

}  // namespace kiln
