// CPU engine: the optimized-for-nothing IR (the reference semantics), run by
// ReferenceExecutor. A context infers its output shapes at the set input
// shapes (shape inference on a clone, like the GPU context) and copies the
// executor's results into the bound host buffers or the OutputAllocator's.
#include "runtime/cpu/cpu_engine.h"

#include <cstring>
#include <sstream>

#include "ir/clone.h"
#include "passes/shape_inference.h"
#include "plan/plan_graph.h"
#include "reference/executor.h"
#include "runtime/engine_io.h"

namespace kiln::cpu {
namespace {

class CpuContext final : public Context {
 public:
  explicit CpuContext(std::shared_ptr<const CpuEngine> engine) : engine_(std::move(engine)) {
    for (const Value* v : graph().inputs) {
      if (v->data) continue;
      auto dims = v->type.shape.concrete();
      if (dims) input_shapes_[v->name()] = *dims;  // static inputs need no SetInputShape
    }
  }

  Status SetInputShape(const std::string& name, const std::vector<int64_t>& dims) override {
    KILN_RETURN_IF_ERROR(CheckInputShape(graph(), engine_->config().profiles, name, dims));
    if (input_shapes_[name] != dims) {
      shapes_model_.reset();
      last_run_dims_.clear();
    }
    input_shapes_[name] = dims;
    return Status::Ok();
  }

  // Inputs are host memory anyway: the values only make shape inference exact
  // (GetOutputShape before the run).
  Status SetInputValue(const std::string& name, const void* host_data, size_t bytes) override {
    KILN_ASSIGN_OR_RETURN(Tensor t, InputValue(graph(), input_shapes_, name, host_data, bytes));
    input_values_[name] = std::move(t);
    shapes_model_.reset();
    last_run_dims_.clear();
    return Status::Ok();
  }

  Expected<std::vector<int64_t>> GetOutputShape(const std::string& name) const override {
    const Value* out = nullptr;
    for (const Value* v : graph().outputs)
      if (v->name() == name) out = v;
    if (!out) return InvalidArgument("GetOutputShape: the engine has no output named '" + name + "'");
    auto ran = last_run_dims_.find(name);
    if (ran != last_run_dims_.end()) return ran->second;
    KILN_RETURN_IF_ERROR(const_cast<CpuContext*>(this)->InferAtCurrentShapes());
    std::vector<int64_t> dims;
    const Shape& s = shapes_model_->graph->FindValue(name)->type.shape;
    if (!s.rank_known()) return std::vector<int64_t>{};
    for (const Dim& d : s.dims()) dims.push_back(d.known() ? d.value() : -1);
    return dims;
  }

  Status SetTensorAddress(const std::string& name, void* host_ptr) override {
    KILN_RETURN_IF_ERROR(CheckIoName(graph(), name, "SetTensorAddress"));
    addresses_[name] = host_ptr;
    return Status::Ok();
  }

  Status SetOutputAllocator(const std::string& name, OutputAllocator* allocator) override {
    KILN_RETURN_IF_ERROR(CheckIoName(graph(), name, "SetOutputAllocator"));
    allocators_[name] = allocator;
    return Status::Ok();
  }

  Status Enqueue(void* stream) override {
    if (stream) return InvalidArgument("Enqueue: a CPU engine runs synchronously; pass no stream (nullptr)");
    std::map<std::string, RtValue> inputs;
    for (const Value* v : graph().inputs) {
      if (v->data) continue;
      auto shape = input_shapes_.find(v->name());
      if (shape == input_shapes_.end())
        return InvalidArgument("input '" + v->name() + "' (" + v->type.ToString() +
                               ") has dynamic dims: call SetInputShape first");
      auto addr = addresses_.find(v->name());
      Tensor t(v->dtype(), shape->second);
      if ((addr == addresses_.end() || !addr->second) && t.nbytes())
        return InvalidArgument("input '" + v->name() + "' has no address (Context::SetTensorAddress)");
      if (t.nbytes()) std::memcpy(t.mutable_raw(), addr->second, t.nbytes());
      inputs[v->name()] = RtValue::FromTensor(std::move(t));
    }
    ReferenceExecutor exec(engine_->model());
    KILN_ASSIGN_OR_RETURN(std::vector<RtValue> results, exec.Run(inputs));
    last_run_dims_.clear();
    for (size_t i = 0; i < results.size(); ++i) {
      const std::string& name = graph().outputs[i]->name();
      if (results[i].kind != ValueKind::kTensor)
        return Unsupported("output '" + name + "' is not a tensor (" + results[i].Describe() + ")");
      KILN_RETURN_IF_ERROR(CopyOut(name, results[i].tensor));
    }
    return Status::Ok();
  }

  std::vector<std::string> SyncPoints() const override { return {}; }
  size_t ActivationBytes() const override { return 0; }
  Expected<std::vector<std::pair<std::string, float>>> ProfileLayers(void*) override {
    return Unsupported("ProfileLayers: the CPU engine has no per-layer profile");
  }

 private:
  const Graph& graph() const { return *engine_->model().graph; }

  Status InferAtCurrentShapes() {
    if (shapes_model_) return Status::Ok();
    for (const Value* v : graph().inputs)
      if (!v->data && !input_shapes_.count(v->name()))
        return InvalidArgument("input '" + v->name() + "' (" + v->type.ToString() +
                               ") has dynamic dims: call SetInputShape first");
    std::unique_ptr<Model> m = CloneModel(engine_->model());
    ShapeInferenceOptions opt;
    for (const auto& [name, dims] : input_shapes_) opt.input_shapes[name] = Shape::Of(dims);
    for (Value* v : m->graph->inputs) {
      auto it = input_values_.find(v->name());
      if (it != input_values_.end() && it->second.dims() == input_shapes_.at(v->name())) v->data = it->second;
    }
    KILN_RETURN_IF_ERROR(InferShapes(*m, opt).WithPrefix("shape inference at the given input shapes"));
    shapes_model_ = std::move(m);
    return Status::Ok();
  }

  // An output to its bound buffer or, when it has one, its OutputAllocator.
  Status CopyOut(const std::string& name, const Tensor& t) {
    void* dst = nullptr;
    auto alloc = allocators_.find(name);
    if (alloc != allocators_.end() && alloc->second) {
      auto cur = addresses_.find(name);
      dst = alloc->second->Reallocate(name, cur == addresses_.end() ? nullptr : cur->second, t.nbytes());
      if (!dst && t.nbytes())
        return Internal("the OutputAllocator of '" + name + "' returned no memory for " + std::to_string(t.nbytes()) +
                        " bytes");
      addresses_[name] = dst;
      alloc->second->NotifyShape(name, t.dims());
    } else {
      auto addr = addresses_.find(name);
      if (addr == addresses_.end() || !addr->second) {
        if (t.nbytes()) return InvalidArgument("output '" + name + "' has no address (Context::SetTensorAddress)");
      } else {
        dst = addr->second;
      }
    }
    if (t.nbytes()) std::memcpy(dst, t.raw(), t.nbytes());
    last_run_dims_[name] = t.dims();
    return Status::Ok();
  }

  std::shared_ptr<const CpuEngine> engine_;
  std::map<std::string, std::vector<int64_t>> input_shapes_;
  std::map<std::string, Tensor> input_values_;
  std::map<std::string, void*> addresses_;
  std::map<std::string, OutputAllocator*> allocators_;
  std::unique_ptr<Model> shapes_model_;  // the IR at the current input shapes (reset when they change)
  std::map<std::string, std::vector<int64_t>> last_run_dims_;
};

}  // namespace

std::shared_ptr<CpuEngine> CpuEngine::Create(std::unique_ptr<Model> model, EngineConfig config) {
  std::shared_ptr<CpuEngine> e(new CpuEngine());
  e->model_ = std::move(model);
  e->config_ = std::move(config);
  return e;
}

Expected<std::string> CpuEngine::Serialize() const {
  PlanFile plan;
  plan.header.kiln_version = KILN_VERSION;
  plan.header.gpu_name = kCpuPlanDevice;
  plan.header.compute_capability = 0;
  WritePlanGraph(*model_, &plan);
  plan.sections["config"] = ConfigToJson(config_);
  return SerializePlan(plan);
}

Status CpuEngine::Save(const std::string& path) const {
  KILN_ASSIGN_OR_RETURN(std::string bytes, Serialize());
  KILN_ASSIGN_OR_RETURN(PlanFile plan, ParsePlan(bytes.data(), bytes.size()));
  return WritePlanFile(plan, path);
}

Expected<std::unique_ptr<Context>> CpuEngine::CreateContext() const {
  return std::unique_ptr<Context>(new CpuContext(shared_from_this()));
}

std::vector<TensorInfo> CpuEngine::Inputs() const { return DescribeInputs(*model_->graph); }

std::vector<TensorInfo> CpuEngine::Outputs() const { return DescribeOutputs(*model_->graph); }

std::string CpuEngine::Describe() const {
  std::ostringstream s;
  s << "cpu (reference executor), fp32, " << model_->graph->num_nodes() << " nodes";
  return s.str();
}

Expected<std::shared_ptr<Engine>> DeserializeCpuEngine(const PlanFile& plan) {
  KILN_RETURN_IF_ERROR(CheckPlanCompatible(plan.header, KILN_VERSION, kCpuPlanDevice, 0));
  auto config = plan.sections.find("config");
  if (config == plan.sections.end()) return InvalidArgument("corrupted plan: no 'config' section");
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, ParsePlanGraph(plan));
  // The reference executor works on inferred shapes (and sym_data, which plans do not store).
  KILN_RETURN_IF_ERROR(InferShapes(*model).WithPrefix("plan graph"));
  KILN_ASSIGN_OR_RETURN(EngineConfig cfg, ConfigFromJson(config->second));
  return std::shared_ptr<Engine>(CpuEngine::Create(std::move(model), std::move(cfg)));
}

}  // namespace kiln::cpu
