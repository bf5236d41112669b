// Post-training INT8 calibration (see calibrate_int8.h).
#include "build/calibrate_int8.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "build/calibrate.h"
#include "ir/clone.h"
#include "reference/executor.h"

namespace kiln {
namespace {

constexpr int kQuantLevels = 128;  // int8 magnitudes 0..127
constexpr const char* kCacheMagic = "kiln-int8-calibration-v1";
constexpr const char* kFp32Prefix = "fp32-fallback ";  // a node the fallback kept FP32

// The probe: a copy of the model whose outputs are `names` (those it has).
std::unique_ptr<Model> Probe(const Model& model, const std::vector<std::string>& names,
                             std::vector<std::string>* kept) {
  std::unique_ptr<Model> probe = CloneModel(model);
  Graph& g = *probe->graph;
  g.outputs.clear();
  for (const std::string& n : names) {
    Value* v = g.FindValue(n);
    if (!v || v->dtype() != DataType::kFloat) continue;
    g.outputs.push_back(v);
    kept->push_back(n);
  }
  return probe;
}

// KL(p || q) over the bins where p > 0 (q == 0 there: infinity).
double KlDivergence(const std::vector<double>& p, const std::vector<double>& q) {
  double kl = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] <= 0) continue;
    if (q[i] <= 0) return std::numeric_limits<double>::infinity();
    kl += p[i] * std::log(p[i] / q[i]);
  }
  return kl;
}

}  // namespace

Expected<CalibMethod> ParseCalibMethod(const std::string& name) {
  if (name == "entropy") return CalibMethod::kEntropy;
  if (name == "percentile") return CalibMethod::kPercentile;
  if (name == "max") return CalibMethod::kMax;
  return InvalidArgument("unknown calibration method '" + name + "' (entropy, percentile, max)");
}

const char* CalibMethodName(CalibMethod m) {
  switch (m) {
    case CalibMethod::kEntropy:
      return "entropy";
    case CalibMethod::kPercentile:
      return "percentile";
    case CalibMethod::kMax:
      return "max";
  }
  return "?";
}

int EntropyThresholdBins(const std::vector<double>& hist_in) {
  const int nbins = static_cast<int>(hist_in.size());
  // The spike of exact zeros (ReLU outputs) says nothing about where to clip:
  // bin 0 takes bin 1's count, as NVIDIA's pytorch-quantization does.
  std::vector<double> hist = hist_in;
  if (nbins > 1) hist[0] = hist[1];
  if (nbins <= kQuantLevels) return nbins;
  double best = std::numeric_limits<double>::infinity();
  int best_i = nbins;
  std::vector<double> p, q;
  for (int i = kQuantLevels; i <= nbins; ++i) {
    // P: the first i bins, the mass beyond folded into the last.
    p.assign(hist.begin(), hist.begin() + i);
    for (int j = i; j < nbins; ++j) p[i - 1] += hist[j];
    double psum = 0;
    for (double v : p) psum += v;
    if (psum <= 0) continue;
    // Q: the first i bins merged into 128 levels, each level's mass spread
    // evenly over its non-empty bins.
    q.assign(static_cast<size_t>(i), 0.0);
    const int merged = i / kQuantLevels;
    for (int l = 0; l < kQuantLevels; ++l) {
      const int start = l * merged, end = l == kQuantLevels - 1 ? i : start + merged;
      double sum = 0;
      int nonzero = 0;
      for (int j = start; j < end; ++j) {
        sum += hist[j];
        nonzero += hist[j] != 0;
      }
      if (nonzero == 0) continue;
      for (int j = start; j < end; ++j)
        if (hist[j] != 0) q[j] = sum / nonzero;
    }
    double qsum = 0;
    for (double v : q) qsum += v;
    if (qsum <= 0) continue;
    for (double& v : p) v /= psum;
    for (double& v : q) v /= qsum;
    const double kl = KlDivergence(p, q);
    if (kl < best) {
      best = kl;
      best_i = i;
    }
  }
  return best_i;
}

int PercentileThresholdBins(const std::vector<double>& hist, double percentile) {
  double total = 0;
  for (double v : hist) total += v;
  if (total <= 0) return static_cast<int>(hist.size());
  double cum = 0;
  for (size_t i = 0; i < hist.size(); ++i) {
    cum += hist[i];
    if (cum >= total * percentile / 100.0) return static_cast<int>(i) + 1;
  }
  return static_cast<int>(hist.size());
}

Expected<CalibTable> CalibrateInt8(const Model& model, const std::string& dir,
                                   const std::vector<std::string>& names, CalibMethod method,
                                   double percentile) {
  if (!(percentile > 0 && percentile <= 100))
    return InvalidArgument("calibration percentile must be in (0, 100], got " + std::to_string(percentile));
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> samples, ListCalibSamples(dir));
  std::vector<std::string> kept;
  std::unique_ptr<Model> probe = Probe(model, names, &kept);
  CalibTable table;
  table.method = method;
  if (kept.empty()) return table;
  // Pass 1: max |v| per value. Pass 2: histograms of |v| over [0, max].
  std::vector<double> amax(kept.size(), 0.0);
  std::vector<std::vector<double>> hist(kept.size(), std::vector<double>(kCalibBins, 0.0));
  for (int pass = 0; pass < (method == CalibMethod::kMax ? 1 : 2); ++pass) {
    for (const std::string& s : samples) {
      KILN_ASSIGN_OR_RETURN(auto feed, ReadCalibSample(*probe, s));
      auto out = ReferenceExecutor(*probe).Run(feed);
      if (!out.ok()) return out.status().WithPrefix("INT8 calibration on " + s);
      for (size_t i = 0; i < kept.size() && i < out->size(); ++i) {
        const Tensor& t = (*out)[i].tensor;
        if (t.dtype() != DataType::kFloat) continue;
        const float* p = t.data<float>();
        for (int64_t k = 0; k < t.numel(); ++k) {
          const double a = std::fabs(static_cast<double>(p[k]));
          if (!std::isfinite(a)) continue;
          if (pass == 0) {
            amax[i] = std::max(amax[i], a);
          } else if (amax[i] > 0) {
            const int b = std::min(kCalibBins - 1, static_cast<int>(a / amax[i] * kCalibBins));
            hist[i][b] += 1;
          }
        }
      }
    }
  }
  for (size_t i = 0; i < kept.size(); ++i) {
    if (!(amax[i] > 0)) continue;
    double threshold = amax[i];
    if (method == CalibMethod::kEntropy)
      threshold = amax[i] * EntropyThresholdBins(hist[i]) / kCalibBins;
    else if (method == CalibMethod::kPercentile)
      threshold = amax[i] * PercentileThresholdBins(hist[i], percentile) / kCalibBins;
    table.scales[kept[i]] = static_cast<float>(threshold / 127.0);
  }
  return table;
}

Status WriteCalibCache(const CalibTable& table, const std::string& path) {
  std::ofstream f(path);
  if (!f) return InvalidArgument("cannot write the calibration cache " + path);
  f << kCacheMagic << "-" << CalibMethodName(table.method) << "\n";
  for (const std::string& node : table.keep_float) f << kFp32Prefix << node << "\n";
  for (const auto& [name, scale] : table.scales) {
    uint32_t bits;
    std::memcpy(&bits, &scale, sizeof(bits));
    char hex[16];
    std::snprintf(hex, sizeof(hex), "%08x", bits);
    f << name << ": " << hex << "\n";
  }
  if (!f) return InvalidArgument("cannot write the calibration cache " + path);
  return Status::Ok();
}

Expected<CalibTable> ReadCalibCache(const std::string& path) {
  std::ifstream f(path);
  if (!f) return InvalidArgument("cannot read the calibration cache " + path);
  std::string line;
  std::getline(f, line);
  const std::string magic = std::string(kCacheMagic) + "-";
  if (line.compare(0, magic.size(), magic) != 0)
    return InvalidArgument(path + ": not a kiln calibration cache (first line '" + line + "', expected '" +
                           magic + "<method>')");
  CalibTable table;
  KILN_ASSIGN_OR_RETURN(table.method, ParseCalibMethod(line.substr(magic.size())));
  int lineno = 1;
  while (std::getline(f, line)) {
    ++lineno;
    if (line.empty()) continue;
    if (line.compare(0, std::strlen(kFp32Prefix), kFp32Prefix) == 0) {
      table.keep_float.insert(line.substr(std::strlen(kFp32Prefix)));
      continue;
    }
    const size_t colon = line.rfind(": ");
    uint32_t bits = 0;
    char* end = nullptr;
    if (colon != std::string::npos)
      bits = static_cast<uint32_t>(std::strtoul(line.c_str() + colon + 2, &end, 16));
    float scale;
    std::memcpy(&scale, &bits, sizeof(scale));
    if (colon == std::string::npos || end == line.c_str() + colon + 2 || !(scale > 0) ||
        !std::isfinite(scale))
      return InvalidArgument(path + ":" + std::to_string(lineno) +
                             ": expected 'name: <positive float32 bits in hex>', got '" + line + "'");
    table.scales[line.substr(0, colon)] = scale;
  }
  return table;
}

}  // namespace kiln
