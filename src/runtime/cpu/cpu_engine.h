// The CPU Engine and Context behind include/kiln/engine.h: the same API on the
// CPU reference executor (BuildOptions::Backend::kCpu). Tensor addresses are
// host pointers; Enqueue runs the whole graph synchronously (the stream
// argument must be nullptr). Outputs whose shape depends on input values go
// through the OutputAllocator (host memory), as on the GPU.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/engine.h"
#include "plan/plan_config.h"
#include "plan/plan_file.h"

namespace kiln::cpu {

using kiln::kCpuPlanDevice;

class CpuEngine final : public Engine, public std::enable_shared_from_this<CpuEngine> {
 public:
  // Takes a model whose shapes are inferred.
  static std::shared_ptr<CpuEngine> Create(std::unique_ptr<Model> model, EngineConfig config);

  Expected<std::string> Serialize() const override;
  Status Save(const std::string& plan_path) const override;
  Expected<std::unique_ptr<Context>> CreateContext() const override;
  std::vector<TensorInfo> Inputs() const override;
  std::vector<TensorInfo> Outputs() const override;
  std::map<std::string, ShapeRange> Profiles() const override { return config_.profiles; }
  std::string Describe() const override;

  const Model& model() const { return *model_; }
  const EngineConfig& config() const { return config_; }

 private:
  CpuEngine() = default;
  std::unique_ptr<Model> model_;
  EngineConfig config_;
};

// Engine::Deserialize for a plan whose device is kCpuPlanDevice.
Expected<std::shared_ptr<Engine>> DeserializeCpuEngine(const PlanFile& plan);

}  // namespace kiln::cpu
