// The CUDA Engine and Context behind include/kiln/engine.h.
//
// Engine: the optimized IR (host), device copies of every constant, the build
// options and profiles. Immutable once made.
// Context: per stream. On SetInputShape it clones the IR, infers concrete
// shapes (shape-only subgraphs such as Shape→Gather→Concat fold on the host, as
// TensorRT does with shape tensors), decides which nodes run on the GPU, plans
// the activation arena, creates/prepares the GpuOps and allocates. Enqueue then
// only launches: eagerly the first time at a shape, from a captured CUDA graph
// afterwards.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gpu_op.h"
#include "ir/graph.h"
#include "kiln/engine.h"
#include "plan/plan_config.h"
#include "plan/plan_file.h"
#include "runtime/shape_program.h"

namespace kiln::cuda {

using kiln::EngineConfig;

class GpuEngine final : public Engine, public std::enable_shared_from_this<GpuEngine> {
 public:
  // Takes an optimized model whose shapes are inferred; uploads constants.
  // `program`: the shape program a plan stores (a build compiles it from `model`).
  // `reference`: kiln::builder's shape inference, for what the program cannot
  // express (may be null when the program is complete).
  static Expected<std::shared_ptr<GpuEngine>> Create(std::unique_ptr<Model> model, EngineConfig config,
                                                     std::optional<ShapeProgram> program,
                                                     std::shared_ptr<const ReferenceSupport> reference);

  Expected<std::string> Serialize() const override;
  Status Save(const std::string& plan_path) const override;
  Expected<std::unique_ptr<Context>> CreateContext() const override;
  std::vector<TensorInfo> Inputs() const override;
  std::vector<TensorInfo> Outputs() const override;
  std::map<std::string, ShapeRange> Profiles() const override { return config_.profiles; }
  std::string Describe() const override;

  const Model& model() const { return *model_; }
  // Refit (build/refit.h): `swap` replaces constant contents in the engine's
  // model, then the device copies are rewritten in place.
  Status RefitConstants(const std::function<Status(Model&)>& swap);
  const EngineConfig& config() const { return config_; }
  // Device copy of a constant value (by name), or nullptr.
  const void* ConstantOnDevice(const std::string& name) const;
  size_t weight_bytes() const { return weight_bytes_; }
  // Inputs whose values the runtime needs on the host (backend/gpu_caps.h).
  bool IsShapeTensorInput(const std::string& name) const { return shape_tensor_inputs_.count(name) > 0; }
  // Tactics timed by any of this engine's contexts (cuDNN convolution algorithms).
  const std::shared_ptr<TacticCache>& tactics() const { return tactics_; }
  // Every value's dims as expressions over the input dims (runtime/shape_program.h).
  const ShapeProgram& shape_program() const { return shape_program_; }
  // Shape inference at run time (kiln::builder); null in the lean runtime.
  const ReferenceSupport* reference() const { return reference_.get(); }

 private:
  GpuEngine() = default;
  Status UploadConstants();
  std::unique_ptr<Model> model_;
  EngineConfig config_;
  std::unordered_map<std::string, DeviceBuffer> constants_;
  size_t weight_bytes_ = 0;
  std::set<std::string> shape_tensor_inputs_;
  std::shared_ptr<TacticCache> tactics_ = std::make_shared<TacticCache>();
  ShapeProgram shape_program_;
  std::shared_ptr<const ReferenceSupport> reference_;
};

// Builds an engine from an in-memory model (Engine::Build loads the file and
// calls this; tests build single-op models directly).
Expected<std::shared_ptr<Engine>> BuildEngine(std::unique_ptr<Model> model, const BuildOptions& options,
                                              BuildReport* report);

// Engine::Deserialize for a GPU plan (checked against this GPU and kiln version).
Expected<std::shared_ptr<Engine>> DeserializeGpuEngine(const PlanFile& plan,
                                                       std::shared_ptr<const ReferenceSupport> reference);

}  // namespace kiln::cuda
