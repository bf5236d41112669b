#include "build/calibrate.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <vector>

#include "io/npy.h"
#include "ir/clone.h"
#include "reference/executor.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

bool HasNpy(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".npy") return true;
  return false;
}

std::string FileStem(std::string name) {
  std::replace(name.begin(), name.end(), '/', '_');
  std::replace(name.begin(), name.end(), ':', '_');
  return name;
}

}  // namespace

Expected<std::map<std::string, RtValue>> ReadCalibSample(const Model& model, const std::string& sample_dir) {
  const fs::path dir(sample_dir);
  std::map<std::string, RtValue> feed;
  for (const Value* in : model.graph->inputs) {
    if (in->data) continue;
    fs::path file = dir / (in->name() + ".npy");
    if (!fs::exists(file)) file = dir / (FileStem(in->name()) + ".npy");
    if (!fs::exists(file))
      return InvalidArgument("calibration inputs: " + dir.string() + " has no " + file.filename().string() +
                             " for graph input '" + in->name() + "'");
    KILN_ASSIGN_OR_RETURN(Tensor t, ReadNpy(file.string()));
    feed[in->name()] = RtValue::FromTensor(std::move(t));
  }
  return feed;
}

Expected<std::vector<std::string>> ListCalibSamples(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return InvalidArgument("calibration inputs: " + dir + " is not a directory");
  std::vector<fs::path> samples;
  if (HasNpy(dir)) samples.push_back(dir);
  std::vector<fs::path> subdirs;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && HasNpy(e.path())) subdirs.push_back(e.path());
  std::sort(subdirs.begin(), subdirs.end());
  samples.insert(samples.end(), subdirs.begin(), subdirs.end());
  if (samples.empty()) return InvalidArgument("calibration inputs: no .npy files in " + dir);
  std::vector<std::string> out;
  for (const fs::path& p : samples) out.push_back(p.string());
  return out;
}

Expected<std::map<std::string, double>> MeasureRanges(const Model& model, const std::string& dir) {
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> samples, ListCalibSamples(dir));
  std::vector<CalibFeed> feeds;
  for (const std::string& s : samples) {
    KILN_ASSIGN_OR_RETURN(auto feed, ReadCalibSample(model, s));
    feeds.push_back({s, std::move(feed)});
  }
  return MeasureRanges(model, feeds);
}

Expected<std::map<std::string, double>> MeasureRanges(const Model& model, const std::vector<CalibFeed>& feeds) {
  KILN_ASSIGN_OR_RETURN(CalibRuns runs, MeasureRangesKeeping(model, feeds, {}));
  return std::move(runs.max_abs);
}

Expected<CalibRuns> MeasureRangesKeeping(const Model& model, const std::vector<CalibFeed>& feeds,
                                         const std::set<std::string>& keep) {
  // Every float32 value of the main graph becomes an output, after the model's own.
  std::unique_ptr<Model> probe = CloneModel(model);
  Graph& g = *probe->graph;
  const size_t own = g.outputs.size();
  for (Value* v : g.values())
    if (v->producer() && v->dtype() == DataType::kFloat &&
        std::find(g.outputs.begin(), g.outputs.end(), v) == g.outputs.end())
      g.outputs.push_back(v);
  for (Value* in : g.inputs)
    if (!in->data && in->dtype() == DataType::kFloat) g.outputs.push_back(in);

  CalibRuns runs;
  for (const CalibFeed& f : feeds) {
    auto out = ReferenceExecutor(*probe).Run(f.values);
    if (!out.ok()) return out.status().WithPrefix("calibration inputs " + f.source);
    for (size_t i = 0; i < out->size() && i < g.outputs.size(); ++i) {
      const Tensor& t = (*out)[i].tensor;
      if (t.dtype() != DataType::kFloat) continue;
      const std::string& name = g.outputs[i]->name();
      double& m = runs.max_abs[name];
      for (int64_t k = 0; k < t.numel(); ++k) {
        double a = std::fabs(static_cast<double>(t.data<float>()[k]));
        if (!std::isnan(a)) m = std::max(m, a);
      }
      if (runs.outputs.empty() && keep.count(name)) runs.first[name] = t;
    }
    out->resize(std::min(out->size(), own));
    runs.outputs.push_back(std::move(*out));
  }
  return runs;
}

}  // namespace kiln
