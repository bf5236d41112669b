#include "engine_inputs.h"

#include <random>

#include "core/dtype.h"
#include "core/half.h"

namespace kiln::cli {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Tensor RandomInput(DataType dt, const std::vector<int64_t>& dims, std::mt19937& rng) {
  Tensor t(dt, dims);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (dt) {
      case DataType::kFloat: t.mutable_data<float>()[i] = u(rng); break;
      case DataType::kFloat16: t.mutable_data<Half>()[i] = Half(u(rng)); break;
      case DataType::kInt64: t.mutable_data<int64_t>()[i] = static_cast<int64_t>(rng() % 100); break;
      case DataType::kInt32: t.mutable_data<int32_t>()[i] = static_cast<int32_t>(rng() % 100); break;
      case DataType::kBool: t.mutable_data<bool>()[i] = (rng() & 1) != 0; break;
      default: break;
    }
  }
  return t;
}

}  // namespace

Expected<std::shared_ptr<Engine>> LoadOrBuildEngine(const std::string& path, BuildOptions::Backend backend,
                                                    const InputShapes& shapes, bool fp16) {
  if (!EndsWith(path, ".onnx")) return Engine::Load(path, BuilderLoadOptions());
  BuildOptions opt;
  opt.backend = backend;
  opt.fp16 = fp16;
  for (const auto& [name, dims] : shapes) opt.profiles[name] = ShapeRange{dims, dims, dims};
  return Engine::Build(path, opt);
}

std::map<std::string, Tensor> RandomEngineInputs(const Engine& engine, const InputShapes& shapes, uint32_t seed) {
  std::mt19937 rng(seed);
  std::map<std::string, Tensor> inputs;
  const auto profiles = engine.Profiles();
  for (const TensorInfo& in : engine.Inputs()) {
    std::vector<int64_t> dims = in.dims;
    auto given = shapes.find(in.name);
    if (given != shapes.end()) {
      dims = given->second;
    } else {
      auto prof = profiles.find(in.name);
      for (size_t i = 0; i < dims.size(); ++i)
        if (dims[i] < 0) dims[i] = prof != profiles.end() && i < prof->second.opt.size() ? prof->second.opt[i] : 1;
    }
    auto dt = ParseDataType(in.dtype);
    inputs[in.name] = RandomInput(dt ? *dt : DataType::kFloat, dims, rng);
  }
  return inputs;
}

}  // namespace kiln::cli
