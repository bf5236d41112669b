// Engine: device constants, plan (de)serialization, IO description.
#include "runtime/gpu/gpu_engine.h"

#include <sstream>

#include "backend/gpu_caps.h"
#include "plan/plan_config.h"
#include "plan/plan_file.h"
#include "plan/plan_graph.h"
#include "plan/plan_tactics.h"
#include "runtime/engine_io.h"

namespace kiln::cuda {
namespace {

constexpr const char* kKilnVersion = KILN_VERSION;

struct DeviceId {
  std::string name;
  uint32_t cc = 0;
};

Expected<DeviceId> CurrentDevice() {
  int dev = 0;
  KILN_CUDA_RETURN_IF_ERROR(cudaGetDevice(&dev));
  cudaDeviceProp p{};
  KILN_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&p, dev));
  return DeviceId{p.name, static_cast<uint32_t>(p.major * 10 + p.minor)};
}

}  // namespace

Expected<std::shared_ptr<GpuEngine>> GpuEngine::Create(std::unique_ptr<Model> model, EngineConfig config,
                                                       std::optional<ShapeProgram> program,
                                                       std::shared_ptr<const ReferenceSupport> reference) {
  std::shared_ptr<GpuEngine> e(new GpuEngine());
  e->reference_ = std::move(reference);
  e->model_ = std::move(model);
  for (const Value* v : ShapeTensorInputs(*e->model_->graph)) e->shape_tensor_inputs_.insert(v->name());
  e->config_ = std::move(config);
  e->shape_program_ = program ? std::move(*program) : ShapeProgram::Compile(*e->model_);
  KILN_RETURN_IF_ERROR(e->UploadConstants());
  return e;
}

Status GpuEngine::UploadConstants() {
  weight_bytes_ = 0;
  for (const Value* v : model_->graph->values()) {
    if (!v->data || v->data->dtype() == DataType::kString || v->data->nbytes() == 0) continue;
    DeviceBuffer& buf = constants_[v->name()];  // a refit rewrites the same memory
    KILN_RETURN_IF_ERROR(buf.Reserve(v->data->nbytes()));
    KILN_CUDA_RETURN_IF_ERROR(cudaMemcpy(buf.get(), v->data->raw(), v->data->nbytes(), cudaMemcpyHostToDevice));
    weight_bytes_ += v->data->nbytes();
  }
  return Status::Ok();
}

Status GpuEngine::RefitConstants(const std::function<Status(Model&)>& swap) {
  KILN_RETURN_IF_ERROR(swap(*model_));
  return UploadConstants();
}

const void* GpuEngine::ConstantOnDevice(const std::string& name) const {
  auto it = constants_.find(name);
  return it == constants_.end() ? nullptr : it->second.get();
}

Expected<std::string> GpuEngine::Serialize() const {
  KILN_ASSIGN_OR_RETURN(DeviceId dev, CurrentDevice());
  PlanFile plan;
  plan.header.kiln_version = kKilnVersion;
  plan.header.gpu_name = dev.name;
  plan.header.compute_capability = dev.cc;
  WritePlanGraph(*model_, &plan);
  plan.sections["shapes"] = shape_program_.Encode();
  plan.sections["config"] = ConfigToJson(config_);
  // Tactics timed while building (cuDNN convolution algorithms per geometry): a loaded plan reuses them.
  plan.sections["tactics"] = StringMapToJson(tactics_->Entries());
  // Which entry each node used (at the opt shapes after a build): for `kiln inspect PLAN`.
  plan.sections["tactic_nodes"] = StringMapToJson(tactics_->Uses());
  return SerializePlan(plan);
}

Status GpuEngine::Save(const std::string& path) const {
  KILN_ASSIGN_OR_RETURN(std::string bytes, Serialize());
  auto plan = ParsePlan(bytes.data(), bytes.size());
  if (!plan.ok()) return plan.status();
  return WritePlanFile(*plan, path);
}

std::vector<TensorInfo> GpuEngine::Inputs() const {
  std::vector<TensorInfo> out = DescribeInputs(*model_->graph);
  for (TensorInfo& t : out) t.shape_tensor = IsShapeTensorInput(t.name);
  return out;
}

std::vector<TensorInfo> GpuEngine::Outputs() const { return DescribeOutputs(*model_->graph); }

std::string GpuEngine::Describe() const {
  std::ostringstream s;
  s << "precision " << (config_.fp16 ? "fp16" : (config_.tf32 ? "fp32 (tf32 allowed)" : "fp32")) << ", "
    << model_->graph->num_nodes() << " nodes, weights " << (weight_bytes_ >> 10) << " KiB";
  return s.str();
}

}  // namespace kiln::cuda

namespace kiln::cuda {

Expected<std::shared_ptr<Engine>> DeserializeGpuEngine(const PlanFile& plan,
                                                       std::shared_ptr<const ReferenceSupport> reference) {
  KILN_ASSIGN_OR_RETURN(DeviceId dev, CurrentDevice());
  KILN_RETURN_IF_ERROR(CheckPlanCompatible(plan.header, KILN_VERSION, dev.name, dev.cc));
  auto config = plan.sections.find("config");
  if (config == plan.sections.end()) return InvalidArgument("corrupted plan: no 'config' section");
  auto shapes = plan.sections.find("shapes");
  if (shapes == plan.sections.end()) return InvalidArgument("corrupted plan: no 'shapes' section");
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, ParsePlanGraph(plan));
  KILN_ASSIGN_OR_RETURN(ShapeProgram program, ShapeProgram::Decode(shapes->second));
  if (!program.complete() && !reference)
    return Unsupported(
        "the plan's shapes need shape inference at run time, which the lean runtime "
        "(kiln::runtime) does not link: " +
        program.incomplete() + ". Load it with kiln::BuilderLoadOptions() (kiln::builder)");
  KILN_ASSIGN_OR_RETURN(EngineConfig cfg, ConfigFromJson(config->second));
  KILN_ASSIGN_OR_RETURN(auto engine, GpuEngine::Create(std::move(model), std::move(cfg), std::move(program),
                                                       std::move(reference)));
  KILN_ASSIGN_OR_RETURN(PlanTactics tactics, ReadPlanTactics(plan));
  engine->tactics()->Load(tactics.entries);
  engine->tactics()->LoadUses(tactics.nodes);
  return std::shared_ptr<Engine>(std::move(engine));
}

}  // namespace kiln::cuda
