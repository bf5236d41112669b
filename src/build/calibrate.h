// Measured ranges for the FP32 islands of an FP16 build (`kiln build --fp16
// --calib-inputs DIR`): runs the FP32 model on the CPU reference over the
// calibration inputs and records the largest magnitude of every float value
// of the main graph (passes/fp32_islands.h keeps those beyond FP16's range in
// FP32).
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ops/op_context.h"

namespace kiln {

// DIR holds one sample set (a .npy file per graph input, named after the
// input: NAME.npy, with '/' and ':' in the name written as '_'), or
// subdirectories each holding one. Returns value name → max |v| over all
// sample sets (infinity for an overflow); errors name the file or input.
// The sample sets of DIR (DIR itself when it holds .npy files, then its
// subdirectories that do, sorted); an error when there are none.
Expected<std::vector<std::string>> ListCalibSamples(const std::string& dir);
// One sample set: graph input name → value.
Expected<std::map<std::string, RtValue>> ReadCalibSample(const Model& model, const std::string& sample_dir);

Expected<std::map<std::string, double>> MeasureRanges(const Model& model, const std::string& dir);

// One set of calibration inputs and where it came from (a directory, "random input 2").
struct CalibFeed {
  std::string source;
  std::map<std::string, RtValue> values;
};
// The same over sample sets already in memory.
Expected<std::map<std::string, double>> MeasureRanges(const Model& model, const std::vector<CalibFeed>& feeds);

// MeasureRanges that also keeps, from the same runs, what the mixed-precision
// checks (build/mixed_precision.h) would run the model again for: each feed's
// graph outputs (the probes' wanted outputs) and, on the first feed, the
// values named in `keep` (the layers' inputs and outputs).
struct CalibRuns {
  std::map<std::string, double> max_abs;      // as MeasureRanges
  std::vector<std::vector<RtValue>> outputs;  // per feed, the model's outputs in graph order
  std::map<std::string, Tensor> first;        // `keep`'s float32 values on feeds[0]
};
Expected<CalibRuns> MeasureRangesKeeping(const Model& model, const std::vector<CalibFeed>& feeds,
                                         const std::set<std::string>& keep);

}  // namespace kiln
