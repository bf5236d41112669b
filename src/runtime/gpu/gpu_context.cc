// Context: concrete shapes, memory plan, GpuOp preparation and launch (see
// gpu_engine.h for the split of work between Engine and Context).
//
// The prepared program is a list of segments: runs of steps that end at a
// sync point (a data-dependent op, GpuOp::OutputBounds) or at the end of the
// graph. Prepare(k) keeps segments [0, k) as they are (steps, memory, CUDA
// graphs) and builds segment k at the shapes known so far; Enqueue reads the
// extents a sync point wrote and prepares the next segment again only when
// they changed. Each segment owns the memory of the values it produces, so a
// rebuilt tail never moves what earlier segments computed.
#include <cublasLt.h>
#include <cudnn.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <set>
#include <unordered_set>

#include "backend/cuda/cuda_op_table.h"
#include "backend/gpu_caps.h"
#include "ir/clone.h"
#include "runtime/engine_io.h"
#include "runtime/gpu/gpu_engine.h"
#include "runtime/memory_plan.h"
#include "runtime/reference_support.h"

namespace kiln::cuda {
namespace {

// Shape tensors are small; fold anything up to this many elements on the host.
constexpr int64_t kHostFoldElements = 1 << 16;

size_t Align(size_t bytes) { return (bytes + 255) & ~size_t{255}; }

std::vector<int64_t> DimsOrMinusOne(const Shape& s) {
  std::vector<int64_t> d;
  for (const Dim& x : s.dims()) d.push_back(x.known() ? x.value() : -1);
  return d;
}

class GpuContext final : public Context {
 public:
  explicit GpuContext(std::shared_ptr<const GpuEngine> engine) : engine_(std::move(engine)) {}
  ~GpuContext() override {
    segments_.clear();
    if (res_.cublaslt) cublasLtDestroy(static_cast<cublasLtHandle_t>(res_.cublaslt));
    if (res_.cudnn) cudnnDestroy(static_cast<cudnnHandle_t>(res_.cudnn));
  }

  Status Init() {
    const EngineConfig& cfg = engine_->config();
    res_.workspace_limit = cfg.workspace_bytes;
    res_.allow_tf32 = cfg.tf32;
    res_.conv_tactics = cfg.conv_tactics;
    res_.cudnn_eng4 = cfg.cudnn_eng4;
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
    KILN_RETURN_IF_ERROR(CheckInputShape(*engine_->model().graph, engine_->config().profiles, name, dims));
    auto& cur = input_shapes_[name];
    if (cur != dims) {
      cur = dims;
      prepared_ = false;
    }
    PrepareWhenComplete();
    return Status::Ok();
  }

  Status SetInputValue(const std::string& name, const void* host_data, size_t bytes) override {
    if (!engine_->IsShapeTensorInput(name))
      return InvalidArgument("SetInputValue: '" + name + "' is not a shape-tensor input of the engine");
    KILN_ASSIGN_OR_RETURN(Tensor t,
                          InputValue(*engine_->model().graph, input_shapes_, name, host_data, bytes));
    auto it = input_values_.find(name);
    if (it == input_values_.end() || it->second.dims() != t.dims() ||
        std::memcmp(it->second.raw(), t.raw(), bytes) != 0) {
      input_values_[name] = std::move(t);
      prepared_ = false;
    }
    PrepareWhenComplete();
    return Status::Ok();
  }

  Expected<std::vector<int64_t>> GetOutputShape(const std::string& name) const override {
    if (!prepared_) KILN_RETURN_IF_ERROR(const_cast<GpuContext*>(this)->Prepare(0));
    const Value* v = shapes_model_->graph->FindValue(name);
    if (!v || !value_index_.count(name))
      return InvalidArgument("the engine has no tensor named '" + name + "'");
    return DimsOrMinusOne(v->type.shape);
  }

  Status SetTensorAddress(const std::string& name, void* ptr) override {
    KILN_RETURN_IF_ERROR(CheckIo(name, "SetTensorAddress"));
    auto& slot = bindings_[name];
    if (slot != ptr) DropGraphs();
    slot = ptr;
    return Status::Ok();
  }

  Status SetOutputAllocator(const std::string& name, OutputAllocator* allocator) override {
    KILN_RETURN_IF_ERROR(CheckIo(name, "SetOutputAllocator"));
    allocators_[name] = allocator;
    return Status::Ok();
  }

  Status Enqueue(void* stream_ptr) override {
    auto stream = static_cast<cudaStream_t>(stream_ptr);
    if (!prepared_) {
      // SetInputShape prepares once the input shapes agree; it did not, or it
      // failed. Preparing allocates, which a stream capture does not allow.
      KILN_ASSIGN_OR_RETURN(bool capturing, Capturing(stream));
      if (capturing)
        return InvalidArgument(
            "Enqueue inside a CUDA graph capture: the context is not prepared at these input "
            "shapes (" +
            (prepare_error_.empty() ? std::string("they disagree, or one is not set") : prepare_error_) +
            "); set consistent input shapes before the capture");
      KILN_RETURN_IF_ERROR(Prepare(0));
    }
    return RunProgram(stream, nullptr);
  }

  std::vector<std::string> SyncPoints() const override {
    std::vector<std::string> out;
    for (const Step& s : steps_)
      if (!s.bounds.empty()) out.push_back(s.node->Label());
    return out;
  }

  size_t ActivationBytes() const override {
    size_t n = 0;
    for (const auto& seg : segments_) n += seg->arena_bytes;
    return n;
  }

  Expected<std::vector<std::pair<std::string, float>>> ProfileLayers(void* stream_ptr) override {
    auto stream = static_cast<cudaStream_t>(stream_ptr);
    if (!prepared_) KILN_RETURN_IF_ERROR(Prepare(0));
    std::vector<std::pair<std::string, float>> times;
    KILN_RETURN_IF_ERROR(RunProgram(stream, &times));
    return times;
  }

 private:
  struct Step {
    const Node* node = nullptr;  // in the engine's model (a branch node for inlined Ifs)
    GpuOp* op = nullptr;         // nullptr for alias steps
    std::vector<int> inputs;     // value indices (-1: omitted)
    std::vector<int> outputs;
    bool copy_alias = false;  // alias whose output is a graph output: copy instead
    size_t workspace = 0;
    // Data-dependent ops: each output's bound (its buffer's dims) and where
    // the op writes the real dims (mapped host memory, rank int64s each).
    std::vector<std::vector<int64_t>> bounds;
    MappedBuffer* extents = nullptr;
  };
  struct OutputFill {
    int id = 0;  // the graph output's value index
    size_t bytes = 0;
    void* src = nullptr;  // in Segment::fills
  };
  struct Segment {
    size_t begin = 0, end = 0;  // steps_[begin, end)
    bool sync = false;          // steps_[end - 1] is data-dependent
    size_t values_end = 0;      // tensors_ indexed by the end of this segment
    DeviceBuffer arena, consts, fills;
    size_t arena_bytes = 0;
    std::vector<OutputFill> fill_list;  // graph outputs known before the run
    std::vector<std::string> filled;    // their names
    std::vector<int> staged_copies;     // outputs of the previous sync point: arena → the caller's buffer
    std::vector<std::string> observed;  // outputs whose extents this segment's sync point reads
    cudaGraphExec_t graph = nullptr;
    int eager_runs = 0;
    ~Segment() {
      if (graph) cudaGraphExecDestroy(graph);
    }
  };

  // The Context contract: SetInputShape does the preparation, so Enqueue can
  // run inside a stream capture. Prepares once every dynamic input has a shape
  // that agrees with the others (and shape-tensor inputs have values); a
  // failure is kept for Enqueue, which prepares again and reports it.
  void PrepareWhenComplete() {
    prepare_error_.clear();
    if (prepared_ || !engine_->shape_program().BindInputs(input_shapes_).ok()) return;
    for (const auto& [name, dims] : input_shapes_) {
      if (!engine_->IsShapeTensorInput(name)) continue;
      auto it = input_values_.find(name);
      if (it == input_values_.end() || it->second.dims() != dims) return;
    }
    Status st = Prepare(0);
    if (!st.ok()) prepare_error_ = st.ToString();
  }

  static Expected<bool> Capturing(cudaStream_t stream) {
    cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
    KILN_CUDA_RETURN_IF_ERROR(cudaStreamIsCapturing(stream, &cap));
    return cap != cudaStreamCaptureStatusNone;
  }

  Status CheckIo(const std::string& name, const char* what) const {
    return CheckIoName(*engine_->model().graph, name, what);
  }

  void DropGraphs() {
    for (auto& seg : segments_)
      if (seg->graph) {
        cudaGraphExecDestroy(seg->graph);
        seg->graph = nullptr;
        seg->eager_runs = 0;
      }
  }

  // Clones the engine's IR and infers concrete shapes at the input shapes and
  // the extents observed at the kept sync points; Ifs whose condition folds
  // are inlined. `origin` maps each node of the clone to the engine's node it
  // stands for (the branch node an inlined copy comes from).
  Expected<std::unique_ptr<Model>> InferAtCurrentShapes(
      std::unordered_map<const Node*, const Node*>* origin) const {
    const Model& em = engine_->model();
    for (const Value* v : em.graph->inputs)
      if (!v->data && !input_shapes_.count(v->name()))
        return InvalidArgument("input '" + v->name() + "' (" + v->type.ToString() +
                               ") has dynamic dims: call SetInputShape (or pass --shapes) first");
    std::unique_ptr<Model> m = CloneModel(em);
    origin->clear();
    MapNodes(*em.graph, *m->graph, origin);
    if (ApplyShapeProgram(*m->graph)) return m;
    const ReferenceSupport* reference = engine_->reference();
    if (!reference) {
      // A complete program that did not evaluate: its error names the value (a negative dim at these
      // shapes, inputs that disagree); the builder's inference would have reported the same.
      const ShapeProgram& program = engine_->shape_program();
      if (program.complete() && observed_.empty() && input_values_.empty()) {
        Expected<ShapeProgram::Result> r = program.Evaluate(input_shapes_);
        if (!r.ok()) return r.status().WithPrefix("shapes at the given input shapes");
      }
      // Engine::Load refuses plans that need inference without the builder's support; here for the record.
      return Unsupported("the plan's shapes need shape inference at run time (" +
                         (program.complete() ? std::string("shape-tensor inputs or value-dependent shapes")
                                             : program.incomplete()) +
                         "), which the lean runtime does not link: load with kiln::BuilderLoadOptions()");
    }
    for (Value* v : m->graph->inputs) {
      if (!engine_->IsShapeTensorInput(v->name())) continue;
      auto it = input_values_.find(v->name());
      if (it == input_values_.end() || it->second.dims() != input_shapes_.at(v->name()))
        return InvalidArgument("input '" + v->name() +
                               "' is a shape tensor: the engine needs its values on the "
                               "host (Context::SetInputValue, after its shape)");
      v->data = it->second;
    }
    for (const auto& [name, dims] : observed_) {
      Value* v = m->graph->FindValue(name);
      if (!v) return Internal("observed value '" + name + "' is not in the graph");
      v->type.shape = Shape::Of(dims);
    }
    auto trace = [origin](const Node* copy, const Node* source) { (*origin)[copy] = origin->at(source); };
    KILN_RETURN_IF_ERROR(reference->InferAtShapes(*m, input_shapes_, kHostFoldElements, trace));
    return m;
  }

  // The fast path of InferAtCurrentShapes: the engine's shape program gives
  // every value's dims and the host-computed shape arithmetic, with no shape
  // inference. False (the clone untouched) when the program is incomplete,
  // shapes depend on values, or it fails to evaluate (shape inference then
  // reports the error).
  bool ApplyShapeProgram(Graph& g) const {
    const ShapeProgram& program = engine_->shape_program();
    if (!program.complete() || !observed_.empty() || !input_values_.empty()) return false;
    Expected<ShapeProgram::Result> r = program.Evaluate(input_shapes_);
    if (!r.ok()) return false;
    for (Value* v : g.values()) {
      auto dims = r->dims.find(v->name());
      if (dims == r->dims.end()) continue;
      v->type.shape = Shape::Of(dims->second);
      v->sym_data.reset();
      auto data = r->data.find(v->name());
      if (data != r->data.end()) v->data = data->second;
    }
    return true;
  }

  // Pairs the nodes of a graph and its clone (subgraphs included).
  static void MapNodes(const Graph& engine, const Graph& clone,
                       std::unordered_map<const Node*, const Node*>* origin) {
    std::vector<Node*> en = engine.nodes(), cn = clone.nodes();
    for (size_t i = 0; i < en.size() && i < cn.size(); ++i) {
      (*origin)[cn[i]] = en[i];
      for (const auto& [name, a] : en[i]->attrs) {
        const Attribute* c = cn[i]->attr(name);
        if (!c) continue;
        if (a.g && c->g) MapNodes(*a.g, *c->g, origin);
        for (size_t k = 0; k < a.graphs.size() && k < c->graphs.size(); ++k)
          MapNodes(*a.graphs[k], *c->graphs[k], origin);
      }
    }
  }

  // Builds segment `keep` (and keeps [0, keep)).
  Status Prepare(size_t keep) {
    prepared_ = false;  // until this succeeds (a failed Prepare starts over at 0)
    if (keep == 0) {
      observed_.clear();
      segments_.clear();
      steps_.clear();
    }
    std::unordered_map<const Node*, const Node*> origin;
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<Model> m, InferAtCurrentShapes(&origin));
    std::vector<Node*> cnodes = m->graph->nodes();
    const size_t keep_steps = keep ? segments_[keep - 1]->end : 0;
    const size_t keep_values = keep ? segments_[keep - 1]->values_end : 0;
    std::vector<DevTensor> old_tensors = std::move(tensors_);
    std::vector<Step> old_steps = std::move(steps_);
    value_index_.clear();
    tensors_.clear();
    steps_.clear();
    cvalues_.clear();
    for (const Value* v : m->graph->inputs) IndexOf(v);
    bool sync = false;
    size_t last_node = cnodes.size();
    for (size_t i = 0; i < cnodes.size(); ++i) {
      const Node* cn = cnodes[i];
      bool folded = cn->num_outputs() > 0;
      for (const Value* o : cn->outputs())
        if (o && !o->data) folded = false;
      if (folded) {
        for (const Value* o : cn->outputs()) IndexOf(o);
        continue;  // host-evaluated shape arithmetic
      }
      const bool kept = steps_.size() < keep_steps;
      Step s;
      s.node = origin.at(cn);
      for (const Value* v : cn->inputs()) s.inputs.push_back(IndexOf(v));
      for (const Value* v : cn->outputs()) s.outputs.push_back(IndexOf(v));
      if (kept) {
        const Step& o = old_steps[steps_.size()];
        if (o.node != s.node) return Internal("the kept steps changed at " + cn->Label());
        s.op = o.op;
        s.copy_alias = o.copy_alias;
        s.workspace = o.workspace;
        s.bounds = o.bounds;
        s.extents = o.extents;
        steps_.push_back(std::move(s));
        continue;
      }
      for (int id : s.inputs)
        if (id >= 0 && !Concrete(id)) return NotKnown(id);
      if (!IsGpuAliasOp(*cn)) {
        KILN_ASSIGN_OR_RETURN(s.op, OpFor(*s.node));
      }
      KILN_RETURN_IF_ERROR(Bound(s));
      const bool dynamic = !s.bounds.empty();
      steps_.push_back(std::move(s));
      if (dynamic) {
        sync = true;
        last_node = i;
        break;  // what follows is prepared once the extents are read
      }
    }
    if (keep_steps > steps_.size() || tensors_.size() < keep_values)
      return Internal("the kept segments changed");
    for (size_t id = 0; id < keep_values; ++id) tensors_[id].data = old_tensors[id].data;
    auto seg = TakeSpareSegment(keep);
    seg->begin = keep_steps;
    seg->end = steps_.size();
    seg->sync = sync;
    seg->values_end = tensors_.size();
    if (sync)
      for (int id : steps_.back().outputs)
        if (id >= 0) seg->observed.push_back(cvalues_[id]->name());
    for (const Value* v : m->graph->outputs) IndexOf(v);
    if (keep == 0) FindDynamicOutputs();
    for (size_t k = 0; k < keep; ++k)
      for (const std::string& n : segments_[k]->filled) seg->filled.push_back(n);
    KILN_RETURN_IF_ERROR(Place(*seg, cnodes, keep_values, last_node));
    KILN_RETURN_IF_ERROR(BindLateOutputs(*seg, keep));
    // Algorithms and workspace per op at these shapes.
    size_t ws = 0;
    for (size_t si = 0; si < steps_.size(); ++si) {
      Step& s = steps_[si];
      if (s.op && si >= keep_steps) {
        std::vector<DevTensor> in, out;
        Gather(s, &in, &out);
        KILN_RETURN_IF_ERROR(s.op->Prepare(in, out, res_).WithPrefix(s.node->Label()));
        s.workspace = s.op->WorkspaceBytes();
      }
      ws = std::max(ws, s.workspace);
    }
    if (ws > engine_->config().workspace_bytes)
      return InvalidArgument(
          "ops need " + std::to_string(ws >> 20) + " MiB of workspace, over the limit of " +
          std::to_string(engine_->config().workspace_bytes >> 20) + " MiB (--memPoolSize)");
    void* before = workspace_.get();
    KILN_RETURN_IF_ERROR(workspace_.Reserve(ws).WithPrefix("the ops' workspace"));
    segments_.push_back(std::move(seg));
    if (workspace_.get() != before) DropGraphs();  // captured launches hold the old workspace
    shapes_model_ = std::move(m);
    prepared_ = true;
    return Status::Ok();
  }

  int IndexOf(const Value* v) {
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
    cvalues_.push_back(v);
    return id;
  }

  bool Concrete(int id) const {
    const Value* v = cvalues_[id];
    return v->type.kind == ValueKind::kTensor && v->type.shape.concrete().has_value();
  }

  Status NotKnown(int id) const {
    const Value* v = cvalues_[id];
    return InvalidArgument("cannot run on the GPU: the shape of '" + v->name() + "' (" + v->type.ToString() +
                           ") is not known at these input shapes" +
                           (v->producer() ? " (produced by " + v->producer()->Label() + ")" : ""));
  }

  // Asks the op for output bounds: a data-dependent step's outputs get
  // buffers at their bounds and a place for their extents. Any other step
  // must have concrete output shapes.
  Status Bound(Step& s) {
    std::vector<DevTensor> in;
    for (int id : s.inputs) in.push_back(id >= 0 ? tensors_[id] : DevTensor{});
    std::vector<std::vector<int64_t>> bounds;
    if (s.op) {
      auto b = s.op->OutputBounds(in);
      if (!b.ok()) return b.status().WithPrefix(s.node->Label());
      bounds = std::move(*b);
    }
    if (bounds.empty()) {
      for (int id : s.outputs)
        if (id >= 0 && !Concrete(id)) return NotKnown(id);
      return Status::Ok();
    }
    if (bounds.size() != s.outputs.size())
      return Internal(s.node->Label() + ": OutputBounds gave the wrong count");
    size_t ranks = 0;
    for (size_t j = 0; j < s.outputs.size(); ++j) {
      if (s.outputs[j] < 0) continue;
      tensors_[s.outputs[j]].dims = bounds[j];
      ranks += bounds[j].size();
    }
    s.bounds = std::move(bounds);
    auto& ext = extents_[s.node];
    if (!ext) ext = std::make_unique<MappedBuffer>();
    KILN_RETURN_IF_ERROR(ext->Reserve(std::max<size_t>(ranks, 1) * sizeof(int64_t)));
    s.extents = ext.get();
    return Status::Ok();
  }

  // Graph outputs whose shape depends on values (they need an OutputAllocator).
  void FindDynamicOutputs() {
    dynamic_outputs_.clear();
    for (const Value* out : engine_->model().graph->outputs)
      if (!Concrete(value_index_.at(out->name()))) dynamic_outputs_.insert(out->name());
  }

  // Names every value-dependent output without an allocator (in name order).
  Status CheckAllocators() const {
    std::vector<std::string> missing;
    for (const std::string& name : dynamic_outputs_) {
      auto it = allocators_.find(name);
      if (it == allocators_.end() || !it->second) missing.push_back("'" + name + "'");
    }
    if (missing.empty()) return Status::Ok();
    std::string list;
    for (size_t i = 0; i < missing.size(); ++i) list += (i ? ", " : "") + missing[i];
    return InvalidArgument(std::string(missing.size() == 1 ? "output " : "outputs ") + list +
                           (missing.size() == 1 ? " has a shape" : " have shapes") +
                           " that depend on input values: set an OutputAllocator for each "
                           "(Context::SetOutputAllocator)");
  }

  std::unique_ptr<Segment> TakeSpareSegment(size_t keep) {
    // Reuses the memory of the segment this one replaces (Reserve keeps it
    // when it is big enough): a changed extent does not reallocate each run.
    std::unique_ptr<Segment> seg = std::make_unique<Segment>();
    if (segments_.size() > keep) {
      Segment& old = *segments_[keep];
      seg->arena = std::move(old.arena);
      seg->consts = std::move(old.consts);
      seg->fills = std::move(old.fills);
    }
    segments_.resize(keep);
    return seg;
  }

  Expected<GpuOp*> OpFor(const Node& n) {
    auto it = ops_.find(&n);
    if (it != ops_.end()) return it->second.get();
    GpuOpFactory f = FindGpuOp(n.domain, n.op_type);
    if (!f) return Unsupported(n.Label() + ": no CUDA kernel for this op");
    GpuOpInfo info{&n, engine_->model().OpsetOf(n.domain), engine_->config().fp16};
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<GpuOp> op, f(info));
    GpuOp* raw = op.get();
    ops_[&n] = std::move(op);
    return raw;
  }

  bool IsDynamicOutput(const std::string& name) const { return dynamic_outputs_.count(name) > 0; }

  // Places the values first seen in `seg` (ids >= first_id): the caller's
  // bindings (graph IO), engine constants, per-shape host-folded constants,
  // or the segment's arena. Outputs of a sync point that are graph outputs
  // stay in the arena (at their bound) and are copied to the caller's buffer
  // by the next segment.
  Status Place(Segment& seg, const std::vector<Node*>& cnodes, size_t first_id, size_t last_node) {
    const Graph& g = *engine_->model().graph;
    std::unordered_set<std::string> io;
    for (const Value* v : g.inputs)
      if (!engine_->IsShapeTensorInput(v->name())) io.insert(v->name());  // those are constants here
    for (const Value* v : g.outputs) io.insert(v->name());
    // Sync outputs that are graph outputs (among this segment's values, only
    // its own sync step's outputs can be).
    staged_.clear();
    for (const Step& s : steps_)
      if (!s.bounds.empty())
        for (int id : s.outputs)
          if (id >= 0 && io.count(cvalues_[id]->name())) staged_.insert(id);
    // Alias chains over all steps: an alias output shares its source's storage.
    alias_of_.assign(tensors_.size(), -1);
    for (Step& s : steps_)
      if (!s.op && !s.inputs.empty() && s.inputs[0] >= 0 && !s.outputs.empty()) {
        if (io.count(cvalues_[s.outputs[0]]->name())) {
          s.copy_alias = true;
          continue;
        }
        alias_of_[s.outputs[0]] = s.inputs[0];
      }
    auto root = [&](int id) {
      while (alias_of_[id] >= 0) id = alias_of_[id];
      return id;
    };
    // Node positions in the clone: a value some later node reads outlives
    // the segment (the next segment's steps are not built yet).
    std::unordered_map<const Node*, size_t> pos;
    for (size_t i = 0; i < cnodes.size(); ++i) pos[cnodes[i]] = i;
    const int beyond = static_cast<int>(steps_.size()) + 1;
    std::vector<int> first(tensors_.size(), -1), last(tensors_.size(), -1);
    for (size_t si = seg.begin; si < seg.end; ++si) {
      for (int id : steps_[si].outputs)
        if (id >= 0 && first[root(id)] < 0) first[root(id)] = static_cast<int>(si);
      for (int id : steps_[si].inputs)
        if (id >= 0) last[root(id)] = std::max(last[root(id)], static_cast<int>(si));
    }
    for (size_t id = first_id; id < seg.values_end; ++id) {
      const Value* v = cvalues_[id];
      bool live_out = staged_.count(static_cast<int>(id)) > 0;
      for (const Node* u : v->uses()) {
        auto p = pos.find(u);
        live_out |= p == pos.end() || p->second > last_node;
      }
      if (live_out) last[root(static_cast<int>(id))] = beyond;
    }
    std::vector<BufferLifetime> lifetimes;
    std::vector<int> arena_ids;
    std::vector<std::pair<int, size_t>> const_offsets;
    size_t const_bytes = 0;
    for (size_t id = first_id; id < seg.values_end; ++id) {
      const Value* v = cvalues_[id];
      DevTensor& t = tensors_[id];
      size_t bytes = static_cast<size_t>(t.numel()) * ElementSize(t.dtype);
      if (alias_of_[id] >= 0 || (io.count(v->name()) && !staged_.count(static_cast<int>(id)))) continue;
      if (v->data) {
        if (const void* p = engine_->ConstantOnDevice(v->name())) {
          t.data = const_cast<void*>(p);
        } else {
          const_offsets.emplace_back(static_cast<int>(id), const_bytes);
          const_bytes += Align(bytes);
        }
        continue;
      }
      if (first[id] < 0) continue;  // never produced on the GPU (unused)
      lifetimes.push_back({bytes, first[id], std::max(first[id], last[id])});
      arena_ids.push_back(static_cast<int>(id));
    }
    MemoryPlan plan = PlanMemory(lifetimes);
    KILN_RETURN_IF_ERROR(
        seg.arena.Reserve(plan.arena_bytes).WithPrefix("the activation arena at these input shapes"));
    seg.arena_bytes = plan.arena_bytes;
    for (size_t k = 0; k < arena_ids.size(); ++k)
      tensors_[arena_ids[k]].data = static_cast<char*>(seg.arena.get()) + plan.offsets[k];
    KILN_RETURN_IF_ERROR(seg.consts.Reserve(const_bytes));
    for (const auto& [id, off] : const_offsets) {
      DevTensor& t = tensors_[id];
      t.data = static_cast<char*>(seg.consts.get()) + off;
      const Tensor& host = *cvalues_[id]->data;
      if (host.dtype() == DataType::kString)
        return Unsupported("string constant '" + cvalues_[id]->name() + "' on the GPU");
      KILN_CUDA_RETURN_IF_ERROR(cudaMemcpy(t.data, host.raw(), host.nbytes(), cudaMemcpyHostToDevice));
    }
    return PlaceFills(seg);
  }

  // Graph outputs whose value is known before the run (a Shape/Size folded at
  // these shapes, a constant): copied from device memory into the caller's
  // buffer on every run, by the first segment that knows them.
  Status PlaceFills(Segment& seg) {
    seg.fill_list.clear();
    for (const Value* out : engine_->model().graph->outputs) {
      int id = value_index_.at(out->name());
      const Value* v = cvalues_[id];
      if (!v->data || v->data->nbytes() == 0) continue;
      if (std::find(seg.filled.begin(), seg.filled.end(), out->name()) != seg.filled.end()) continue;
      if (v->data->dtype() == DataType::kString)
        return Unsupported("string output '" + v->name() + "' on the GPU");
      seg.fill_list.push_back({id, v->data->nbytes(), nullptr});
      seg.filled.push_back(out->name());
    }
    size_t fill_bytes = 0;
    for (const OutputFill& f : seg.fill_list) fill_bytes += Align(f.bytes);
    KILN_RETURN_IF_ERROR(seg.fills.Reserve(fill_bytes));
    size_t off = 0;
    for (OutputFill& f : seg.fill_list) {
      f.src = static_cast<char*>(seg.fills.get()) + off;
      off += Align(f.bytes);
      KILN_CUDA_RETURN_IF_ERROR(
          cudaMemcpy(f.src, cvalues_[f.id]->data->raw(), f.bytes, cudaMemcpyHostToDevice));
    }
    return Status::Ok();
  }

  // Graph outputs this segment knows the shape of, which an earlier Prepare
  // could not place: value-dependent outputs get storage from their
  // OutputAllocator; outputs of the previous sync point are copied from
  // their arena slot into the caller's buffer (whose size must then match
  // the shape the model declared for them).
  Status BindLateOutputs(Segment& seg, size_t keep) {
    const Graph& g = *engine_->model().graph;
    std::set<std::string> io;
    for (const Value* v : g.outputs) io.insert(v->name());
    seg.staged_copies.clear();
    if (keep > 0 && segments_[keep - 1]->sync)
      for (int id : steps_[segments_[keep - 1]->end - 1].outputs)
        if (id >= 0 && io.count(cvalues_[id]->name())) seg.staged_copies.push_back(id);
    std::set<std::string> now;
    for (int id : seg.staged_copies) now.insert(cvalues_[id]->name());
    for (const OutputFill& f : seg.fill_list) now.insert(cvalues_[f.id]->name());
    for (size_t si = seg.begin; si < seg.end; ++si)
      for (int id : steps_[si].outputs)
        if (id >= 0 && !(seg.sync && si + 1 == seg.end)) now.insert(cvalues_[id]->name());
    for (const std::string& name : now) {
      if (!io.count(name)) continue;
      int id = value_index_.at(name);
      const DevTensor& t = tensors_[id];
      if (!IsDynamicOutput(name)) {
        const Value* declared = g.FindValue(name);
        auto dims = declared ? declared->type.shape.concrete() : std::nullopt;
        if (dims && *dims != t.dims)
          return InvalidArgument("output '" + name + "': the model declares " + DimsToString(*dims) +
                                 ", this run computed " + DimsToString(t.dims));
        continue;
      }
      size_t bytes = static_cast<size_t>(t.numel()) * ElementSize(t.dtype);
      OutputAllocator* a = allocators_.at(name);
      void* p = a->Reallocate(name, dynamic_ptrs_[name], bytes);
      if (!p && bytes)
        return Internal("the OutputAllocator of '" + name + "' returned no memory for " +
                        std::to_string(bytes) + " bytes");
      dynamic_ptrs_[name] = p;
      a->NotifyShape(name, t.dims);
    }
    return Status::Ok();
  }

  // Where graph output `name` goes this run.
  void* OutputAddress(const std::string& name) const {
    const auto& m = IsDynamicOutput(name) ? dynamic_ptrs_ : bindings_;
    auto it = m.find(name);
    return it == m.end() ? nullptr : it->second;
  }

  Status BindIo() {
    const Graph& g = *engine_->model().graph;
    for (const auto* list : {&g.inputs, &g.outputs})
      for (const Value* v : *list) {
        if (list == &g.inputs && (v->data || engine_->IsShapeTensorInput(v->name()))) continue;
        int id = value_index_.at(v->name());
        if (staged_.count(id)) continue;  // a sync point's output: it stays in its arena slot
        if (IsDynamicOutput(v->name())) {
          tensors_[id].data = OutputAddress(v->name());  // null until its segment is prepared
          continue;
        }
        auto it = bindings_.find(v->name());
        if (it == bindings_.end() || !it->second)
          return InvalidArgument("no device address bound for '" + v->name() + "' (SetTensorAddress)");
        tensors_[id].data = it->second;
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
    size_t rank_off = 0;
    for (size_t j = 0; j < s.outputs.size(); ++j) {
      DevTensor t = s.outputs[j] >= 0 ? tensors_[s.outputs[j]] : DevTensor{};
      if (!s.bounds.empty() && s.outputs[j] >= 0) {
        t.dims = s.bounds[j];
        t.extent = s.extents->device<int64_t>() + rank_off;
        rank_off += s.bounds[j].size();
      }
      out->push_back(t);
    }
  }

  // Runs every segment; after a sync point, reads the extents and prepares
  // the next segment again when they changed. `times` (profiling): one eager
  // run with an event pair around each step.
  Status RunProgram(cudaStream_t stream, std::vector<std::pair<std::string, float>>* times) {
    KILN_RETURN_IF_ERROR(CheckAllocators());
    KILN_ASSIGN_OR_RETURN(const bool capturing, Capturing(stream));
    if (capturing && (segments_.size() > 1 || segments_[0]->sync))
      return InvalidArgument("this engine has value-dependent shapes (sync points after " +
                             steps_[segments_[0]->end - 1].node->Label() +
                             "): it cannot be enqueued inside a CUDA graph capture");
    for (size_t k = 0;; ++k) {
      KILN_RETURN_IF_ERROR(BindIo());
      Segment& seg = *segments_[k];
      // Inside the caller's capture the steps are launched into it directly
      // (a capture cannot begin inside another).
      KILN_RETURN_IF_ERROR(times       ? RunTimed(seg, stream, times)
                           : capturing ? RunSteps(seg, stream, nullptr)
                                       : RunSegment(seg, stream));
      if (!seg.sync) return Status::Ok();
      KILN_RETURN_IF_ERROR(ReadExtents(k, stream));
    }
  }

  Status ReadExtents(size_t k, cudaStream_t stream) {
    KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    const Step& s = steps_[segments_[k]->end - 1];
    const int64_t* ext = s.extents->host<int64_t>();
    bool changed = segments_.size() == k + 1;
    std::map<std::string, std::vector<int64_t>> seen;
    for (size_t j = 0; j < s.outputs.size(); ++j) {
      if (s.outputs[j] < 0) continue;
      std::vector<int64_t> dims(ext, ext + s.bounds[j].size());
      ext += s.bounds[j].size();
      for (size_t d = 0; d < dims.size(); ++d)
        if (dims[d] < 0 || dims[d] > s.bounds[j][d])
          return Internal(s.node->Label() + ": output " + std::to_string(j) + " extents " +
                          DimsToString(dims) + " exceed its bound " + DimsToString(s.bounds[j]));
      const std::string& name = cvalues_[s.outputs[j]]->name();
      auto it = observed_.find(name);
      changed |= it == observed_.end() || it->second != dims;
      seen[name] = std::move(dims);
    }
    if (!changed) return Status::Ok();
    for (size_t later = k; later < segments_.size(); ++later)
      for (const std::string& n : segments_[later]->observed) observed_.erase(n);
    for (auto& [name, dims] : seen) observed_[name] = dims;
    return Prepare(k + 1);
  }

  // The first run of a segment is eager; later runs replay a CUDA graph of it.
  Status RunSegment(Segment& seg, cudaStream_t stream) {
    if (seg.graph) return CudaStatus(cudaGraphLaunch(seg.graph, stream), "cudaGraphLaunch");
    if (seg.eager_runs == 0) {
      ++seg.eager_runs;
      return RunSteps(seg, stream, nullptr);
    }
    KILN_RETURN_IF_ERROR(CaptureSteps(seg, stream, nullptr, &seg.graph));
    return CudaStatus(cudaGraphLaunch(seg.graph, stream), "cudaGraphLaunch");
  }

  // The segment's steps (with `events` recorded around each, when given) as an instantiated CUDA graph.
  Status CaptureSteps(Segment& seg, cudaStream_t stream, std::vector<cudaEvent_t>* events,
                      cudaGraphExec_t* exec) {
    KILN_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    Status run = RunSteps(seg, stream, events);
    cudaGraph_t graph = nullptr;
    cudaError_t end = cudaStreamEndCapture(stream, &graph);
    if (!run.ok()) {
      if (graph) cudaGraphDestroy(graph);
      return run;
    }
    KILN_RETURN_IF_ERROR(CudaStatus(end, "cudaStreamEndCapture"));
    cudaError_t inst = cudaGraphInstantiate(exec, graph, 0);
    cudaGraphDestroy(graph);
    if (inst != cudaSuccess) *exec = nullptr;
    return CudaStatus(inst, "cudaGraphInstantiate");
  }

  // Per step, the time between events recorded around it. In a replayed CUDA graph (event nodes between
  // the kernels), as Enqueue runs: an eager run's launch gaps, several microseconds a kernel, would count in
  // every small kernel's time. An eager run when the graph cannot be had.
  Status RunTimed(Segment& seg, cudaStream_t stream, std::vector<std::pair<std::string, float>>* times) {
    std::vector<float> ms;
    Status run = TimedRun(seg, stream, /*graph=*/true, &ms);
    if (!run.ok()) {
      cudaGetLastError();
      run = TimedRun(seg, stream, /*graph=*/false, &ms);
    }
    for (size_t k = 0; run.ok() && k < ms.size(); ++k)
      times->emplace_back(steps_[seg.begin + k].node->Label(), ms[k]);
    return run;
  }

  // One run of the segment with an event pair around each step, captured and replayed (`graph`; the first
  // launch uploads the graph, the second is timed) or eager; `ms`: each step's time.
  Status TimedRun(Segment& seg, cudaStream_t stream, bool graph, std::vector<float>* ms) {
    std::vector<cudaEvent_t> events;
    cudaGraphExec_t exec = nullptr;
    Status run = graph ? CaptureSteps(seg, stream, &events, &exec) : RunSteps(seg, stream, &events);
    for (int launch = 0; graph && run.ok() && launch < 2; ++launch)
      run = CudaStatus(cudaGraphLaunch(exec, stream), "cudaGraphLaunch (profile)");
    if (run.ok()) run = CudaStatus(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    if (exec) cudaGraphExecDestroy(exec);
    ms->assign(events.size() / 2, 0.f);
    for (size_t i = 0; run.ok() && i + 1 < events.size(); i += 2) {
      cudaError_t e = cudaEventElapsedTime(&(*ms)[i / 2], events[i], events[i + 1]);
      if (graph) run = CudaStatus(e, "cudaEventElapsedTime");  // eager: a failed reading stays 0, as before
    }
    for (cudaEvent_t e : events) cudaEventDestroy(e);
    return run;
  }

  Status Record(std::vector<cudaEvent_t>* events, cudaStream_t stream) {
    if (!events) return Status::Ok();
    cudaEvent_t e = nullptr;
    KILN_CUDA_RETURN_IF_ERROR(cudaEventCreate(&e));
    events->push_back(e);
    return CudaStatus(cudaEventRecord(e, stream), "cudaEventRecord");
  }

  Status RunSteps(Segment& seg, cudaStream_t stream, std::vector<cudaEvent_t>* events) {
    for (int id : seg.staged_copies) {
      const DevTensor& t = tensors_[id];
      size_t bytes = static_cast<size_t>(t.numel()) * ElementSize(t.dtype);
      void* dst = OutputAddress(cvalues_[id]->name());
      if (bytes)
        KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, t.data, bytes, cudaMemcpyDeviceToDevice, stream));
    }
    for (const OutputFill& f : seg.fill_list)
      KILN_CUDA_RETURN_IF_ERROR(
          cudaMemcpyAsync(tensors_[f.id].data, f.src, f.bytes, cudaMemcpyDeviceToDevice, stream));
    for (size_t i = seg.begin; i < seg.end; ++i) {
      const Step& s = steps_[i];
      KILN_RETURN_IF_ERROR(Record(events, stream));
      if (!s.op) {
        if (s.copy_alias) {
          const DevTensor& src = tensors_[s.inputs[0]];
          const DevTensor& dst = tensors_[s.outputs[0]];
          size_t bytes = static_cast<size_t>(dst.numel()) * ElementSize(dst.dtype);
          if (bytes && dst.data != src.data)
            KILN_CUDA_RETURN_IF_ERROR(
                cudaMemcpyAsync(dst.data, src.data, bytes, cudaMemcpyDeviceToDevice, stream));
        }
      } else {
        std::vector<DevTensor> in, out;
        Gather(s, &in, &out);
        KILN_RETURN_IF_ERROR(
            s.op->Enqueue(in, out, workspace_.get(), res_, stream).WithPrefix(s.node->Label()));
      }
      KILN_RETURN_IF_ERROR(Record(events, stream));
    }
    return Status::Ok();
  }

  std::shared_ptr<const GpuEngine> engine_;
  GpuResources res_;
  std::map<std::string, std::vector<int64_t>> input_shapes_;
  std::map<std::string, void*> bindings_;
  std::map<std::string, Tensor> input_values_;  // shape-tensor inputs
  std::map<std::string, OutputAllocator*> allocators_;
  std::set<std::string> dynamic_outputs_;      // graph outputs with value-dependent shapes
  std::map<std::string, void*> dynamic_ptrs_;  // their storage, from their allocators
  std::set<int> staged_;  // graph outputs of sync points: in the arena, copied out by the next segment
  std::map<std::string, std::vector<int64_t>> observed_;  // extents read at the kept sync points
  std::unique_ptr<Model> shapes_model_;
  std::unordered_map<std::string, int> value_index_;
  std::vector<DevTensor> tensors_;
  std::vector<const Value*> cvalues_;  // in the clone being prepared / shapes_model_
  std::vector<int> alias_of_;
  std::vector<Step> steps_;
  std::vector<std::unique_ptr<Segment>> segments_;
  std::map<const Node*, std::unique_ptr<GpuOp>> ops_;             // by engine node
  std::map<const Node*, std::unique_ptr<MappedBuffer>> extents_;  // by engine node
  DeviceBuffer workspace_;
  bool prepared_ = false;
  std::string prepare_error_;  // why the last PrepareWhenComplete failed
};

}  // namespace

Expected<std::unique_ptr<Context>> GpuEngine::CreateContext() const {
  auto ctx = std::make_unique<GpuContext>(shared_from_this());
  KILN_RETURN_IF_ERROR(ctx->Init());
  return std::unique_ptr<Context>(std::move(ctx));
}

}  // namespace kiln::cuda
