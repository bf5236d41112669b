// Context: concrete shapes, memory plan, GpuOp preparation and launch (see
// gpu_engine.h for the split of work between Engine and Context).
#include <cublasLt.h>
#include <cudnn.h>

#include <unordered_set>

#include "backend/cuda/cuda_op_table.h"
#include "backend/gpu_caps.h"
#include "ir/clone.h"
#include "passes/shape_inference.h"
#include "runtime/gpu/gpu_engine.h"
#include "runtime/memory_plan.h"

namespace kiln::cuda {
namespace {

// Shape tensors are small; fold anything up to this many elements on the host.
constexpr int64_t kHostFoldElements = 1 << 16;

class GpuContext final : public Context {
 public:
  explicit GpuContext(std::shared_ptr<const GpuEngine> engine) : engine_(std::move(engine)) {}
  ~GpuContext() override {
    if (graph_exec_) cudaGraphExecDestroy(graph_exec_);
    if (res_.cublaslt) cublasLtDestroy(static_cast<cublasLtHandle_t>(res_.cublaslt));
    if (res_.cudnn) cudnnDestroy(static_cast<cudnnHandle_t>(res_.cudnn));
  }

  Status Init() {
    const EngineConfig& cfg = engine_->config();
    res_.workspace_limit = cfg.workspace_bytes;
    res_.allow_tf32 = cfg.tf32;
    res_.tactics = engine_->tactics();
    int dev = 0;
    KILN_CUDA_RETURN_IF_ERROR(cudaGetDevice(&dev));
    KILN_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&res_.sm_count, cudaDevAttrMultiProcessorCount, dev));
    cublasLtHandle_t lt = nullptr;
    if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) return Internal("cublasLtCreate failed");
    res_.cublaslt = lt;
    cudnnHandle_t dnn = nullptr;
    if (cudnnCreate(&dnn) != CUDNN_STATUS_SUCCESS) return Internal("cudnnCreate failed");
    res_.cudnn = dnn;
    const Graph& g = *engine_->model().graph;
    for (const Value* v : g.inputs) {
      if (v->data) continue;
      auto dims = v->type.shape.concrete();
      if (dims) input_shapes_[v->name()] = *dims;  // static inputs need no SetInputShape
    }
    return Status::Ok();
  }

  Status SetInputShape(const std::string& name, const std::vector<int64_t>& dims) override {
    const Graph& g = *engine_->model().graph;
    const Value* in = nullptr;
    for (const Value* v : g.inputs)
      if (v->name() == name && !v->data) in = v;
    if (!in) return InvalidArgument("SetInputShape: the engine has no input named '" + name + "'");
    const Shape& decl = in->type.shape;
    if (decl.rank_known() && decl.rank() != static_cast<int>(dims.size()))
      return InvalidArgument("input '" + name + "': shape " + DimsToString(dims) + " has rank " +
                             std::to_string(dims.size()) + ", the model expects " + decl.ToString());
    for (size_t i = 0; i < dims.size(); ++i) {
      if (dims[i] < 0) return InvalidArgument("input '" + name + "': negative dim in " + DimsToString(dims));
      if (decl.rank_known() && decl[i].known() && decl[i].value() != dims[i])
        return InvalidArgument("input '" + name + "': dim " + std::to_string(i) + " must be " +
                               decl[i].ToString() + ", got " + DimsToString(dims));
    }
    auto prof = engine_->config().profiles.find(name);
    if (prof != engine_->config().profiles.end()) {
      const ShapeRange& r = prof->second;
      bool inside = r.min.size() == dims.size() && r.max.size() == dims.size();
      for (size_t i = 0; inside && i < dims.size(); ++i) inside = r.min[i] <= dims[i] && dims[i] <= r.max[i];
      if (!inside)
        return OutOfRange("input '" + name + "': shape " + DimsToString(dims) + " is outside the engine's profile [" +
                          DimsToString(r.min) + " .. " + DimsToString(r.max) + "]; rebuild with a wider range");
    }
    auto& cur = input_shapes_[name];
    if (cur != dims) {
      cur = dims;
      prepared_ = false;
    }
    return Status::Ok();
  }

  Expected<std::vector<int64_t>> GetOutputShape(const std::string& name) const override {
    if (!prepared_) KILN_RETURN_IF_ERROR(const_cast<GpuContext*>(this)->Prepare());
    auto it = value_index_.find(name);
    if (it == value_index_.end()) return InvalidArgument("the engine has no tensor named '" + name + "'");
    return tensors_[it->second].dims;
  }

  Status SetTensorAddress(const std::string& name, void* ptr) override {
    const Graph& g = *engine_->model().graph;
    bool io = false;
    for (const Value* v : g.inputs) io |= v->name() == name;
    for (const Value* v : g.outputs) io |= v->name() == name;
    if (!io) return InvalidArgument("SetTensorAddress: '" + name + "' is not an input or output of the engine");
    auto& slot = bindings_[name];
    if (slot != ptr) graph_ready_ = false;
    slot = ptr;
    return Status::Ok();
  }

  Status Enqueue(void* stream_ptr) override {
    auto stream = static_cast<cudaStream_t>(stream_ptr);
    if (!prepared_) {
      // Allocation happens here only when shapes changed since the last run.
      KILN_RETURN_IF_ERROR(Prepare());
    }
    KILN_RETURN_IF_ERROR(BindIo());
    if (graph_ready_) return CudaStatus(cudaGraphLaunch(graph_exec_, stream), "cudaGraphLaunch");
    if (eager_runs_ == 0) {
      ++eager_runs_;
      return RunSteps(stream);
    }
    // Second run at this shape: capture the launches into a CUDA graph.
    KILN_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    Status run = RunSteps(stream);
    cudaGraph_t graph = nullptr;
    cudaError_t end = cudaStreamEndCapture(stream, &graph);
    if (!run.ok()) {
      if (graph) cudaGraphDestroy(graph);
      return run;
    }
    KILN_RETURN_IF_ERROR(CudaStatus(end, "cudaStreamEndCapture"));
    if (graph_exec_) cudaGraphExecDestroy(graph_exec_);
    graph_exec_ = nullptr;
    cudaError_t inst = cudaGraphInstantiate(&graph_exec_, graph, 0);
    cudaGraphDestroy(graph);
    KILN_RETURN_IF_ERROR(CudaStatus(inst, "cudaGraphInstantiate"));
    graph_ready_ = true;
    return CudaStatus(cudaGraphLaunch(graph_exec_, stream), "cudaGraphLaunch");
  }

  size_t ActivationBytes() const override { return arena_bytes_; }

 private:
  struct Step {
    const Node* node = nullptr;  // in the engine's model
    GpuOp* op = nullptr;         // nullptr for alias steps
    std::vector<int> inputs;     // value indices (-1: omitted)
    std::vector<int> outputs;
    bool copy_alias = false;  // alias whose output is a graph output: copy instead
  };

  Status Prepare() {
    const Model& em = engine_->model();
    const Graph& eg = *em.graph;
    for (const Value* v : eg.inputs)
      if (!v->data && !input_shapes_.count(v->name()))
        return InvalidArgument("input '" + v->name() + "' (" + v->type.ToString() +
                               ") has dynamic dims: call SetInputShape (or pass --shapes) first");
    // Concrete shapes on a private copy of the IR.
    std::unique_ptr<Model> m = CloneModel(em);
    ShapeInferenceOptions opt;
    opt.max_fold_elements = kHostFoldElements;
    for (const auto& [name, dims] : input_shapes_) opt.input_shapes[name] = Shape::Of(dims);
    KILN_RETURN_IF_ERROR(InferShapes(*m, opt).WithPrefix("shape inference at the given input shapes"));

    // Index the clone's values by name; map engine nodes to clone nodes by order.
    std::vector<Node*> cnodes = m->graph->nodes();
    std::vector<Node*> enodes = eg.nodes();
    if (cnodes.size() != enodes.size()) return Internal("clone changed the node count");
    value_index_.clear();
    tensors_.clear();
    std::vector<const Value*> cvalues;
    auto index_of = [&](const Value* v) -> int {
      if (!v) return -1;
      auto it = value_index_.find(v->name());
      if (it != value_index_.end()) return it->second;
      int id = static_cast<int>(tensors_.size());
      value_index_[v->name()] = id;
      DevTensor t;
      t.dtype = v->type.dtype;
      if (auto dims = v->type.shape.concrete()) t.dims = *dims;
      if (v->data) t.host = &*v->data;  // lives in shapes_model_ (kept with the prepared state)
      tensors_.push_back(t);
      cvalues.push_back(v);
      return id;
    };
    for (const Value* v : m->graph->inputs) index_of(v);
    steps_.clear();
    for (size_t i = 0; i < cnodes.size(); ++i) {
      const Node* cn = cnodes[i];
      bool folded = true;
      for (const Value* o : cn->outputs())
        if (o && !o->data) folded = false;
      for (const Value* o : cn->outputs()) index_of(o);
      if (folded && cn->num_outputs() > 0) continue;  // host-evaluated shape arithmetic
      Step s;
      s.node = enodes[i];
      for (const Value* v : cn->inputs()) s.inputs.push_back(index_of(v));
      for (const Value* v : cn->outputs()) s.outputs.push_back(index_of(v));
      if (!IsGpuAliasOp(*cn)) {
        KILN_ASSIGN_OR_RETURN(s.op, OpFor(i, *enodes[i]));
      }
      steps_.push_back(std::move(s));
    }
    for (const Value* v : m->graph->outputs) index_of(v);
    for (size_t id = 0; id < cvalues.size(); ++id) {
      const Value* v = cvalues[id];
      if (v->type.kind != ValueKind::kTensor || !v->type.shape.concrete())
        return InvalidArgument("cannot run on the GPU: the shape of '" + v->name() + "' (" + v->type.ToString() +
                               ") is not known at these input shapes" +
                               (v->producer() ? " (produced by " + v->producer()->Label() + ")" : ""));
    }
    KILN_RETURN_IF_ERROR(PlaceTensors(*m, cvalues));
    // Algorithms and workspace per op at these shapes.
    size_t ws = 0;
    for (Step& s : steps_) {
      if (!s.op) continue;
      std::vector<DevTensor> in, out;
      Gather(s, &in, &out);
      KILN_RETURN_IF_ERROR(s.op->Prepare(in, out, res_).WithPrefix(s.node->Label()));
      ws = std::max(ws, s.op->WorkspaceBytes());
    }
    if (ws > engine_->config().workspace_bytes)
      return InvalidArgument("ops need " + std::to_string(ws >> 20) + " MiB of workspace, over the limit of " +
                             std::to_string(engine_->config().workspace_bytes >> 20) + " MiB (--memPoolSize)");
    KILN_RETURN_IF_ERROR(workspace_.Reserve(ws));
    shapes_model_ = std::move(m);
    prepared_ = true;
    graph_ready_ = false;
    eager_runs_ = 0;
    return Status::Ok();
  }

  Expected<GpuOp*> OpFor(size_t node_index, const Node& n) {
    auto it = ops_.find(node_index);
    if (it != ops_.end()) return it->second.get();
    GpuOpFactory f = FindGpuOp(n.domain, n.op_type);
    if (!f) return Unsupported(n.Label() + ": no CUDA kernel for this op");
    GpuOpInfo info{&n, engine_->model().OpsetOf(n.domain), engine_->config().fp16};
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<GpuOp> op, f(info));
    GpuOp* raw = op.get();
    ops_[node_index] = std::move(op);
    return raw;
  }

  // Decides where each value lives: user bindings (graph IO), engine constants,
  // per-shape host-folded constants, or the planned activation arena.
  Status PlaceTensors(const Model& m, const std::vector<const Value*>& cvalues) {
    const Graph& g = *m.graph;
    std::unordered_set<std::string> io;
    for (const Value* v : g.inputs) io.insert(v->name());
    for (const Value* v : g.outputs) io.insert(v->name());
    // Alias chains: an alias output shares its source's storage.
    std::vector<int> alias_of(tensors_.size(), -1);
    for (Step& s : steps_)
      if (!s.op && !s.inputs.empty() && s.inputs[0] >= 0 && !s.outputs.empty()) {
        if (io.count(cvalues[s.outputs[0]]->name())) {
          s.copy_alias = true;
          continue;
        }
        alias_of[s.outputs[0]] = s.inputs[0];
      }
    auto root = [&](int id) {
      while (alias_of[id] >= 0) id = alias_of[id];
      return id;
    };
    // Lifetimes (in step indices) of arena values, extended through aliases.
    std::vector<int> first(tensors_.size(), -1), last(tensors_.size(), -1);
    for (int si = 0; si < static_cast<int>(steps_.size()); ++si) {
      for (int id : steps_[si].outputs)
        if (id >= 0 && first[root(id)] < 0) first[root(id)] = si;
      for (int id : steps_[si].inputs)
        if (id >= 0) last[root(id)] = std::max(last[root(id)], si);
    }
    host_constants_.clear();
    std::vector<BufferLifetime> lifetimes;
    std::vector<int> arena_ids;
    size_t const_bytes = 0;
    std::vector<std::pair<int, size_t>> const_offsets;
    for (size_t id = 0; id < tensors_.size(); ++id) {
      const Value* v = cvalues[id];
      DevTensor& t = tensors_[id];
      size_t bytes = static_cast<size_t>(t.numel()) * ElementSize(t.dtype);
      if (alias_of[id] >= 0 || io.count(v->name())) continue;
      if (v->data) {
        if (const void* p = engine_->ConstantOnDevice(v->name())) {
          t.data = const_cast<void*>(p);
        } else {
          const_offsets.emplace_back(static_cast<int>(id), const_bytes);
          const_bytes += (bytes + 255) & ~size_t{255};
        }
        continue;
      }
      if (first[id] < 0) continue;  // never produced on the GPU (unused)
      lifetimes.push_back({bytes, first[id], std::max(first[id], last[id])});
      arena_ids.push_back(static_cast<int>(id));
    }
    MemoryPlan plan = PlanMemory(lifetimes);
    KILN_RETURN_IF_ERROR(arena_.Reserve(plan.arena_bytes));
    arena_bytes_ = plan.arena_bytes;
    for (size_t k = 0; k < arena_ids.size(); ++k)
      tensors_[arena_ids[k]].data = static_cast<char*>(arena_.get()) + plan.offsets[k];
    KILN_RETURN_IF_ERROR(consts_.Reserve(const_bytes));
    for (const auto& [id, off] : const_offsets) {
      DevTensor& t = tensors_[id];
      t.data = static_cast<char*>(consts_.get()) + off;
      const Tensor& host = *cvalues[id]->data;
      if (host.dtype() == DataType::kString) return Unsupported("string constant '" + cvalues[id]->name() + "' on the GPU");
      KILN_CUDA_RETURN_IF_ERROR(cudaMemcpy(t.data, host.raw(), host.nbytes(), cudaMemcpyHostToDevice));
    }
    // Graph outputs whose value is known before the run (a Shape/Size folded at
    // these shapes, a constant): copied from device memory into the user's
    // buffer on every run.
    output_fills_.clear();
    for (const Value* out : g.outputs) {
      int id = value_index_.at(out->name());
      const Value* v = cvalues[id];
      if (!v->data || v->data->nbytes() == 0) continue;
      if (v->data->dtype() == DataType::kString) return Unsupported("string output '" + v->name() + "' on the GPU");
      output_fills_.push_back({id, v->data->nbytes(), nullptr});
    }
    size_t fill_bytes = 0;
    for (const OutputFill& f : output_fills_) fill_bytes += (f.bytes + 255) & ~size_t{255};
    KILN_RETURN_IF_ERROR(fills_.Reserve(fill_bytes));
    size_t fill_off = 0;
    for (OutputFill& f : output_fills_) {
      f.src = static_cast<char*>(fills_.get()) + fill_off;
      fill_off += (f.bytes + 255) & ~size_t{255};
      KILN_CUDA_RETURN_IF_ERROR(cudaMemcpy(f.src, cvalues[f.id]->data->raw(), f.bytes, cudaMemcpyHostToDevice));
    }
    alias_of_ = std::move(alias_of);
    return Status::Ok();
  }

  Status BindIo() {
    const Graph& g = *engine_->model().graph;
    for (const auto* list : {&g.inputs, &g.outputs})
      for (const Value* v : *list) {
        if (v->data && list == &g.inputs) continue;
        auto it = bindings_.find(v->name());
        if (it == bindings_.end() || !it->second)
          return InvalidArgument("no device address bound for '" + v->name() + "' (SetTensorAddress)");
        tensors_[value_index_.at(v->name())].data = it->second;
      }
    // Alias outputs follow their (possibly rebound) sources.
    for (const Step& s : steps_)
      if (!s.op && !s.copy_alias && !s.inputs.empty() && s.inputs[0] >= 0)
        for (int id : s.outputs)
          if (id >= 0) tensors_[id].data = tensors_[s.inputs[0]].data;
    return Status::Ok();
  }

  void Gather(const Step& s, std::vector<DevTensor>* in, std::vector<DevTensor>* out) const {
    for (int id : s.inputs) in->push_back(id >= 0 ? tensors_[id] : DevTensor{});
    for (int id : s.outputs) out->push_back(id >= 0 ? tensors_[id] : DevTensor{});
  }

  Expected<std::vector<std::pair<std::string, float>>> ProfileLayers(void* stream_ptr) override {
    auto stream = static_cast<cudaStream_t>(stream_ptr);
    if (!prepared_) KILN_RETURN_IF_ERROR(Prepare());
    KILN_RETURN_IF_ERROR(BindIo());
    std::vector<cudaEvent_t> events(steps_.size() + 1);
    for (auto& e : events) KILN_CUDA_RETURN_IF_ERROR(cudaEventCreate(&e));
    Status run = Status::Ok();
    KILN_CUDA_RETURN_IF_ERROR(cudaEventRecord(events[0], stream));
    for (size_t i = 0; i < steps_.size() && run.ok(); ++i) {
      run = RunSteps(stream, i, i + 1);
      if (run.ok()) run = CudaStatus(cudaEventRecord(events[i + 1], stream), "cudaEventRecord");
    }
    if (run.ok()) run = CudaStatus(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    std::vector<std::pair<std::string, float>> out;
    for (size_t i = 0; run.ok() && i < steps_.size(); ++i) {
      float ms = 0;
      cudaEventElapsedTime(&ms, events[i], events[i + 1]);
      out.emplace_back(steps_[i].node->Label(), ms);
    }
    for (auto& e : events) cudaEventDestroy(e);
    if (!run.ok()) return run;
    return out;
  }

  Status RunSteps(cudaStream_t stream) {
    for (const OutputFill& f : output_fills_)
      KILN_CUDA_RETURN_IF_ERROR(
          cudaMemcpyAsync(tensors_[f.id].data, f.src, f.bytes, cudaMemcpyDeviceToDevice, stream));
    return RunSteps(stream, 0, steps_.size());
  }

  Status RunSteps(cudaStream_t stream, size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      const Step& s = steps_[i];
      if (!s.op) {
        if (s.copy_alias) {
          const DevTensor& src = tensors_[s.inputs[0]];
          const DevTensor& dst = tensors_[s.outputs[0]];
          size_t bytes = static_cast<size_t>(dst.numel()) * ElementSize(dst.dtype);
          if (bytes && dst.data != src.data)
            KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst.data, src.data, bytes, cudaMemcpyDeviceToDevice, stream));
        }
        continue;
      }
      std::vector<DevTensor> in, out;
      Gather(s, &in, &out);
      KILN_RETURN_IF_ERROR(s.op->Enqueue(in, out, workspace_.get(), res_, stream).WithPrefix(s.node->Label()));
    }
    return Status::Ok();
  }

  std::shared_ptr<const GpuEngine> engine_;
  GpuResources res_;
  std::map<std::string, std::vector<int64_t>> input_shapes_;
  std::map<std::string, void*> bindings_;
  std::unique_ptr<Model> shapes_model_;
  std::unordered_map<std::string, int> value_index_;
  std::vector<DevTensor> tensors_;
  std::vector<int> alias_of_;
  std::vector<Step> steps_;
  std::map<size_t, std::unique_ptr<GpuOp>> ops_;
  std::vector<int> host_constants_;
  struct OutputFill {
    int id = 0;          // the graph output's value index
    size_t bytes = 0;
    void* src = nullptr;  // in fills_
  };
  std::vector<OutputFill> output_fills_;
  DeviceBuffer fills_;
  DeviceBuffer arena_, workspace_, consts_;
  size_t arena_bytes_ = 0;
  bool prepared_ = false;
  bool graph_ready_ = false;
  int eager_runs_ = 0;
  cudaGraphExec_t graph_exec_ = nullptr;
};

}  // namespace

Expected<std::unique_ptr<Context>> GpuEngine::CreateContext() const {
  auto ctx = std::make_unique<GpuContext>(shared_from_this());
  KILN_RETURN_IF_ERROR(ctx->Init());
  return std::unique_ptr<Context>(std::move(ctx));
}

}  // namespace kiln::cuda
