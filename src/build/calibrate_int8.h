// Post-training INT8 calibration (`kiln build --int8 --calib DIR`): runs the
// FP32 model on the CPU reference over the calibration inputs, collects a
// histogram of |v| per activation, and picks each activation's clipping
// threshold amax (scale = amax / 127, symmetric int8) by
//   - entropy: TensorRT's EntropyCalibrator2 — 2048 bins over [0, max|v|];
//     for each candidate threshold of 128..2048 bins, the KL divergence
//     between the clipped distribution (outliers folded into the last bin)
//     and its 128-level quantization; the threshold with the least;
//   - percentile: the smallest bin edge below which `percentile`% of |v| lie;
//   - max: max|v| (no clipping).
// The scales go to a calibration cache file (TensorRT's layout: a header line,
// then "name: <float32 bits in hex>" per activation, plus "fp32-fallback NODE"
// for each layer the fallback kept FP32) that `--calib FILE` reads
// back instead of calibrating again.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln {

enum class CalibMethod { kEntropy, kPercentile, kMax };

Expected<CalibMethod> ParseCalibMethod(const std::string& name);  // entropy | percentile | max
const char* CalibMethodName(CalibMethod m);

struct CalibTable {
  CalibMethod method = CalibMethod::kEntropy;
  std::map<std::string, float> scales;  // activation name → int8 scale (amax / 127)
  // Nodes the per-layer fallback kept FP32 (the cache's "fp32-fallback NODE" lines),
  // so that a build from the cache makes the same choice.
  std::set<std::string> keep_float;
};

constexpr int kCalibBins = 2048;

// The threshold, in bins (128..bins.size()), the entropy method picks for a
// histogram of |v|: the clipping point is that many bins from 0.
int EntropyThresholdBins(const std::vector<double>& hist);
// The bin count below which `percentile`% of the histogram's mass lies.
int PercentileThresholdBins(const std::vector<double>& hist, double percentile);

// Calibrates the float32 values `names` of the main graph over the sample sets
// of `dir` (build/calibrate.h's layout). Values measured all zero get no scale.
Expected<CalibTable> CalibrateInt8(const Model& model, const std::string& dir,
                                   const std::vector<std::string>& names, CalibMethod method,
                                   double percentile);

Status WriteCalibCache(const CalibTable& table, const std::string& path);
Expected<CalibTable> ReadCalibCache(const std::string& path);

}  // namespace kiln
