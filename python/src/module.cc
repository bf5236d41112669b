// kiln._kiln: the C++ API (include/kiln/engine.h) for Python. numpy arrays in,
// numpy arrays out (Run): a CPU engine reads and writes the arrays' memory
// directly; a CUDA engine stages them through device buffers on a stream of
// its own. Tensors by address (BindInputs + EnqueueBound: torch tensors, the
// package's kiln/_torch.py) run without copies on the caller's stream. The GIL
// is released while kiln builds, checks or runs. Errors are kiln.Error
// subclasses, one per StatusCode, carrying kiln's message.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ir/clone.h"
#include "ir/verifier.h"
#include "kiln/engine.h"
#include "onnx/import.h"
#include "passes/pipeline.h"
#include "reference/equivalence.h"
#include "report/check.h"
#include "report/inspect.h"
#include "runtime/cpu/cpu_engine.h"
#ifdef KILN_HAS_CUDA
#include "backend/cuda/cuda_check.h"
#endif

namespace py = pybind11;

namespace kiln {
namespace {

std::map<StatusCode, py::object>& Errors() {
  static auto* errors = new std::map<StatusCode, py::object>();
  return *errors;
}

[[noreturn]] void Raise(const Status& st) {
  auto it = Errors().find(st.code());
  py::object type = it != Errors().end() ? it->second : Errors().at(StatusCode::kInternal);
  PyErr_SetString(type.ptr(), st.message().c_str());
  throw py::error_already_set();
}

void Check(const Status& st) {
  if (!st.ok()) Raise(st);
}

template <class T>
T Take(Expected<T> e) {
  if (!e.ok()) Raise(e.status());
  return std::move(*e);
}

// Dims as Python sees them: ints, the symbol's name for a named dynamic dim,
// None for an unnamed one.
py::list PyDims(const TensorInfo& t) {
  py::list dims;
  for (size_t i = 0; i < t.dims.size(); ++i) {
    if (t.dims[i] >= 0)
      dims.append(t.dims[i]);
    else if (i < t.names.size() && !t.names[i].empty())
      dims.append(t.names[i]);
    else
      dims.append(py::none());
  }
  return dims;
}

bool IsCpu(const Engine& e) { return dynamic_cast<const cpu::CpuEngine*>(&e) != nullptr; }

// Memory for the run's tensors: host (the arrays themselves) for a CPU engine,
// device buffers for a CUDA one.
class Staging {
 public:
  virtual ~Staging() = default;
  // Where kiln reads an input that lives in `host` (bytes long).
  virtual void* Input(const void* host, size_t bytes) = 0;
  // Where kiln writes an output the caller reads from `host` afterwards.
  virtual void* Output(void* host, size_t bytes) = 0;
  virtual void* Allocate(size_t bytes) = 0;  // for value-dependent outputs
  virtual void* Stream() = 0;
  // After Enqueue: waits for the stream and copies the outputs to the host.
  virtual Status Finish() = 0;
  virtual Status CopyToHost(void* host, const void* src, size_t bytes) = 0;
};

class HostStaging final : public Staging {
 public:
  void* Input(const void* host, size_t) override { return const_cast<void*>(host); }
  void* Output(void* host, size_t) override { return host; }
  void* Allocate(size_t bytes) override {
    buffers_.emplace_back(bytes);
    return buffers_.back().data();
  }
  void* Stream() override { return nullptr; }
  Status Finish() override { return Status::Ok(); }
  Status CopyToHost(void* host, const void* src, size_t bytes) override {
    if (bytes) std::memcpy(host, src, bytes);
    return Status::Ok();
  }

 private:
  std::vector<std::vector<char>> buffers_;
};

#ifdef KILN_HAS_CUDA
class DeviceStaging final : public Staging {
 public:
  DeviceStaging() { status_ = cuda::CudaStatus(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate"); }
  ~DeviceStaging() override {
    if (stream_) (void)cudaStreamDestroy(stream_);
  }
  void* Input(const void* host, size_t bytes) override {
    void* d = Allocate(bytes);
    if (d && bytes) Note(cudaMemcpyAsync(d, host, bytes, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync");
    return d;
  }
  void* Output(void* host, size_t bytes) override {
    void* d = Allocate(bytes);
    outputs_.push_back({host, d, bytes});
    return d;
  }
  void* Allocate(size_t bytes) override {
    buffers_.emplace_back();
    Note(buffers_.back().Reserve(bytes ? bytes : 1));
    return buffers_.back().get();
  }
  void* Stream() override { return stream_; }
  Status Finish() override {
    for (const auto& o : outputs_)
      if (o.bytes) Note(cudaMemcpyAsync(o.host, o.device, o.bytes, cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync");
    Note(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    return status_;
  }
  Status CopyToHost(void* host, const void* src, size_t bytes) override {
    if (bytes) Note(cudaMemcpy(host, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy");
    return status_;
  }
  Status status() const { return status_; }

 private:
  struct Out {
    void* host;
    void* device;
    size_t bytes;
  };
  void Note(cudaError_t e, const char* what) { Note(cuda::CudaStatus(e, what)); }
  void Note(Status st) {
    if (status_.ok() && !st.ok()) status_ = std::move(st);
  }
  cudaStream_t stream_ = nullptr;
  std::vector<cuda::DeviceBuffer> buffers_;
  std::vector<Out> outputs_;
  Status status_;
};
#endif

// The outputs' memory: the buffers bound before the run (outputs whose shape
// the input shapes decide) and, for outputs whose shape depends on values,
// memory from `allocate` when the engine asks for it (a bound buffer of exactly
// the asked size is reused). Set on every output: the GPU runtime asks only for
// value-dependent outputs, the CPU one for every output with an allocator.
class RunAllocator final : public OutputAllocator {
 public:
  using AllocateFn = std::function<void*(const std::string& name, size_t bytes)>;
  explicit RunAllocator(AllocateFn allocate) : allocate_(std::move(allocate)) {}
  void Bind(const std::string& name, void* ptr, size_t bytes) { bound_[name] = {ptr, bytes}; }
  void* Reallocate(const std::string& name, void* current, size_t bytes) override {
    auto& r = results_[name];
    auto b = bound_.find(name);
    r.reused = b != bound_.end() && b->second.second == bytes;
    r.ptr = r.reused ? b->second.first : allocate_(name, bytes);
    r.bytes = bytes;
    return r.ptr;
  }
  void NotifyShape(const std::string& name, const std::vector<int64_t>& dims) override { results_[name].dims = dims; }
  struct Result {
    void* ptr = nullptr;
    size_t bytes = 0;
    bool reused = false;  // the bound buffer
    std::vector<int64_t> dims;
  };
  // The outputs the engine allocated through this run (value-dependent ones).
  const std::map<std::string, Result>& results() const { return results_; }

 private:
  AllocateFn allocate_;
  std::map<std::string, std::pair<void*, size_t>> bound_;
  std::map<std::string, Result> results_;
};

// Sets `allocator` on every output for one run and takes it off afterwards
// (a context outlives the run's allocator).
class AllocatorScope {
 public:
  AllocatorScope(Context& ctx, const std::vector<TensorInfo>& outputs, OutputAllocator* a) : ctx_(ctx), outputs_(outputs) {
    for (const TensorInfo& t : outputs_) Check(ctx_.SetOutputAllocator(t.name, a));
  }
  ~AllocatorScope() {
    for (const TensorInfo& t : outputs_) (void)ctx_.SetOutputAllocator(t.name, nullptr);
  }

 private:
  Context& ctx_;
  const std::vector<TensorInfo>& outputs_;
};

void CheckFeedNames(const std::vector<TensorInfo>& inputs, const py::dict& feed) {
  for (auto item : feed) {
    std::string name = py::str(item.first);
    bool known = false;
    for (const TensorInfo& t : inputs) known = known || t.name == name;
    if (!known) Raise(InvalidArgument("run: the engine has no input named '" + name + "'"));
  }
  for (const TensorInfo& t : inputs)
    if (!feed.contains(t.name)) Raise(InvalidArgument("run: input '" + t.name + "' is missing from the feed"));
}

py::dict Run(const Engine& engine, Context& ctx, const py::dict& feed) {
  py::module_ np = py::module_::import("numpy");
  std::unique_ptr<Staging> staging;
#ifdef KILN_HAS_CUDA
  if (!IsCpu(engine)) {
    auto d = std::make_unique<DeviceStaging>();
    Check(d->status());
    staging = std::move(d);
  }
#endif
  if (!staging) staging = std::make_unique<HostStaging>();

  std::vector<TensorInfo> inputs = engine.Inputs(), outputs = engine.Outputs();
  CheckFeedNames(inputs, feed);
  std::vector<py::array> keep;  // the contiguous inputs, alive until the run ends
  for (const TensorInfo& t : inputs) {
    py::array a = np.attr("ascontiguousarray")(feed[py::str(t.name)], py::arg("dtype") = t.dtype);
    std::vector<int64_t> dims(a.shape(), a.shape() + a.ndim());
    Check(ctx.SetInputShape(t.name, dims));
    size_t bytes = static_cast<size_t>(a.nbytes());
    if (t.shape_tensor) Check(ctx.SetInputValue(t.name, a.data(), bytes));
    Check(ctx.SetTensorAddress(t.name, staging->Input(a.data(), bytes)));
    keep.push_back(std::move(a));
  }
  Staging* st_ptr = staging.get();
  RunAllocator allocator([st_ptr](const std::string&, size_t bytes) { return st_ptr->Allocate(bytes); });
  AllocatorScope scope(ctx, outputs, &allocator);
  std::map<std::string, py::array> bound;
  for (const TensorInfo& t : outputs) {
    std::vector<int64_t> dims = Take(ctx.GetOutputShape(t.name));
    bool known = true;
    for (int64_t d : dims) known = known && d >= 0;
    if (!known) continue;
    py::array a(py::dtype(t.dtype), std::vector<py::ssize_t>(dims.begin(), dims.end()));
    size_t bytes = static_cast<size_t>(a.nbytes());
    void* p = staging->Output(a.mutable_data(), bytes);
    Check(ctx.SetTensorAddress(t.name, p));
    allocator.Bind(t.name, p, bytes);
    bound[t.name] = a;
  }
  Status st;
  {
    py::gil_scoped_release release;
    st = ctx.Enqueue(staging->Stream());
    if (st.ok()) st = staging->Finish();
  }
  Check(st);
  py::dict result;  // in the engine's output order
  for (const TensorInfo& t : outputs) {
    auto r = allocator.results().find(t.name);
    if (r == allocator.results().end()) {
      if (!bound.count(t.name)) Raise(Internal("run: output '" + t.name + "' was neither bound nor allocated"));
      result[py::str(t.name)] = bound.at(t.name);
    } else if (r->second.reused) {  // the bound array, at this run's dims (same size)
      result[py::str(t.name)] = bound.at(t.name).attr("reshape")(py::tuple(py::cast(r->second.dims)));
    } else {
      py::array a(py::dtype(t.dtype), std::vector<py::ssize_t>(r->second.dims.begin(), r->second.dims.end()));
      Check(staging->CopyToHost(a.mutable_data(), r->second.ptr, r->second.bytes));
      result[py::str(t.name)] = a;
    }
  }
  return result;
}

// Tensors given by address (torch tensors, on the GPU for a CUDA engine, on
// the host for a CPU one): no copies. `feed`: name → (address, dims, the
// values as bytes for a shape-tensor input or None).
void BindInputs(const Engine& engine, Context& ctx, const py::dict& feed) {
  std::vector<TensorInfo> inputs = engine.Inputs();
  CheckFeedNames(inputs, feed);
  struct In {
    std::string name;
    void* ptr;
    std::vector<int64_t> dims;
    std::optional<std::string> value;
  };
  std::vector<In> ins;
  for (const TensorInfo& t : inputs) {
    auto e = feed[py::str(t.name)].cast<py::tuple>();
    In in{t.name, reinterpret_cast<void*>(e[0].cast<uintptr_t>()), e[1].cast<std::vector<int64_t>>(), std::nullopt};
    if (!e[2].is_none()) in.value = e[2].cast<std::string>();
    ins.push_back(std::move(in));
  }
  Status st;
  {
    py::gil_scoped_release release;
    for (const In& in : ins) {
      if (st.ok()) st = ctx.SetInputShape(in.name, in.dims);
      if (st.ok() && in.value) st = ctx.SetInputValue(in.name, in.value->data(), in.value->size());
      if (st.ok()) st = ctx.SetTensorAddress(in.name, in.ptr);
    }
  }
  Check(st);
}

// Runs on `stream` (a cudaStream_t as an int; 0 for a CPU engine) with the
// inputs bound by BindInputs. `outputs`: name → (address, bytes) of the
// outputs the caller allocated (shapes known from the input shapes);
// `allocate(name, bytes) -> address` gives memory for value-dependent ones
// (called during the run, with the GIL taken back). Returns name → (dims,
// reused) for every output that went through `allocate` or reused its bound
// buffer at new dims; the caller keeps what `allocate` returned.
py::dict EnqueueBound(const Engine& engine, Context& ctx, const py::dict& outputs, uintptr_t stream,
                      const py::function& allocate) {
  std::vector<TensorInfo> infos = engine.Outputs();
  std::optional<py::error_already_set> failed;
  RunAllocator allocator([&](const std::string& name, size_t bytes) -> void* {
    py::gil_scoped_acquire gil;
    try {
      return reinterpret_cast<void*>(allocate(name, bytes).cast<uintptr_t>());
    } catch (py::error_already_set& e) {
      if (!failed) failed = std::move(e);
    } catch (const std::exception& e) {
      if (!failed) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
        failed = py::error_already_set();
      }
    }
    return nullptr;
  });
  AllocatorScope scope(ctx, infos, &allocator);
  for (auto item : outputs) {
    std::string name = py::str(item.first);
    auto e = item.second.cast<py::tuple>();
    void* ptr = reinterpret_cast<void*>(e[0].cast<uintptr_t>());
    Check(ctx.SetTensorAddress(name, ptr));
    allocator.Bind(name, ptr, e[1].cast<size_t>());
  }
  Status st;
  {
    py::gil_scoped_release release;
    st = ctx.Enqueue(reinterpret_cast<void*>(stream));
  }
  if (failed) throw std::move(*failed);
  Check(st);
  py::dict result;
  for (const auto& [name, r] : allocator.results()) result[py::str(name)] = py::make_tuple(r.dims, r.reused);
  return result;
}

// The builder's precision and fusion options from Python keywords (the
// wrappers in kiln/__init__.py name them as `kiln build` flags do) into `o`;
// an unknown key or value is an error, so a typo cannot pass silently.
void ApplyBuildFlags(const py::dict& options, BuildOptions* o) {
  for (const auto& [key, value] : options) {
    const std::string k = py::str(key);
    auto text = [&]() { return value.is_none() ? std::string() : value.cast<std::string>(); };
    if (k == "tf32") {
      o->tf32 = value.cast<bool>();
    } else if (k == "fp32_islands") {
      o->fp32_islands = value.cast<bool>();
    } else if (k == "fuse_pointwise") {
      o->fuse_pointwise = value.cast<bool>();
    } else if (k == "int8") {
      o->int8 = value.cast<bool>();
    } else if (k == "fp8") {
      o->fp8 = value.cast<bool>();
    } else if (k == "int8_fallback_rel_l2" || k == "int8_model_rel_l2" || k == "fp8_fallback_rel_l2" ||
               k == "fp8_model_rel_l2" || k == "calib_percentile") {
      const double v = value.cast<double>();
      const bool percentile = k == "calib_percentile";
      if (!(v >= 0) || (percentile && !(v > 0 && v <= 100)))
        Raise(InvalidArgument(k + (percentile ? " must be in (0, 100]" : " must be >= 0 (0: off)") + ", got " +
                              std::to_string(v)));
      (k == "int8_fallback_rel_l2" ? o->int8_fallback_rel_l2
       : k == "int8_model_rel_l2"  ? o->int8_model_rel_l2
       : k == "fp8_fallback_rel_l2" ? o->fp8_fallback_rel_l2
       : k == "fp8_model_rel_l2"   ? o->fp8_model_rel_l2
                                   : o->calib_percentile) = v;
    } else if (k == "calib_cache") {
      o->calib_cache = text();
    } else if (k == "calib_inputs") {
      o->calib_inputs = text();
    } else if (k == "calib") {
      o->calib = text();
    } else if (k == "calib_method") {
      o->calib_method = text();
      if (o->calib_method != "entropy" && o->calib_method != "percentile" && o->calib_method != "max")
        Raise(InvalidArgument("calib_method must be 'entropy', 'percentile' or 'max', got '" + o->calib_method + "'"));
    } else if (k == "layout") {
      const std::string l = text();
      if (l != "auto" && l != "nchw" && l != "nhwc")
        Raise(InvalidArgument("layout must be 'auto', 'nchw' or 'nhwc', got '" + l + "'"));
      o->layout = l == "nhwc" ? BuildOptions::Layout::kNhwc
                  : l == "nchw" ? BuildOptions::Layout::kNchw
                                : BuildOptions::Layout::kAuto;
    } else {
      Raise(InvalidArgument("unknown build option '" + k + "'"));
    }
  }
}

std::shared_ptr<Engine> Build(const std::string& path, const std::string& backend, bool fp16,
                              const std::map<std::string, std::vector<std::vector<int64_t>>>& profiles,
                              std::optional<size_t> workspace, py::dict report_out, const py::dict& options) {
  BuildOptions o;
  ApplyBuildFlags(options, &o);
  if (backend == "cpu")
    o.backend = BuildOptions::Backend::kCpu;
  else if (backend != "cuda")
    Raise(InvalidArgument("backend must be 'cuda' or 'cpu', got '" + backend + "'"));
  o.fp16 = fp16;
  if (workspace) o.workspace_bytes = *workspace;
  for (const auto& [name, r] : profiles) {
    if (r.size() != 3) Raise(InvalidArgument("profile for '" + name + "': give (min, opt, max) shapes"));
    o.profiles[name] = ShapeRange{r[0], r[1], r[2]};
  }
  BuildReport report;
  Expected<std::shared_ptr<Engine>> e = Internal("not built");
  {
    py::gil_scoped_release release;
    e = Engine::Build(path, o, &report);
  }
  std::shared_ptr<Engine> engine = Take(std::move(e));
  report_out["build_seconds"] = report.build_seconds;
  report_out["weight_bytes"] = report.weight_bytes;
  report_out["activation_bytes"] = report.activation_bytes;
  report_out["num_nodes"] = report.num_nodes;
  report_out["num_kernels"] = report.num_kernels;
  report_out["peak_bytes"] = report.peak_bytes;
  report_out["notes"] = report.notes;
  report_out["precision"] = report.precision;
  return engine;
}

// `kiln check`'s content (report/check.h) as Python data.
py::dict CheckPath(const std::string& path, bool shapes, const std::string& backend, bool fp16,
                   const py::dict& options) {
  CheckOptions o;
  o.shapes = shapes;
  o.backend = backend;
  o.build.fp16 = fp16;
  ApplyBuildFlags(options, &o.build);
  Expected<CheckReport> e = Internal("not checked");
  {
    py::gil_scoped_release release;
    e = CheckModelFile(path, o);
  }
  CheckReport r = Take(std::move(e));
  py::list list;
  for (const Issue& i : r.issues) list.append(py::make_tuple(SeverityName(i.severity), i.node, i.message));
  py::dict d;
  d["issues"] = list;
  d["ir_version"] = r.ir_version;
  d["opset"] = r.opset;
  d["num_nodes"] = r.num_nodes;
  if (r.gpu.checked) {
    py::dict g;
    g["error"] = r.gpu.error;
    g["precision"] = r.gpu.precision;
    py::list gaps;
    for (const auto& gap : r.gpu.gaps) gaps.append(py::make_tuple(gap.node, gap.reason));
    g["gaps"] = gaps;
    g["sync_points"] = r.gpu.sync_points;
    g["num_nodes"] = r.gpu.num_nodes;
    g["op_counts"] = r.gpu.op_counts;
    g["probed"] = r.gpu.probed;
    d["gpu"] = g;
  } else {
    d["gpu"] = py::none();
  }
  return d;
}

// `kiln inspect`'s content (report/inspect.h): (the --json document as a
// string, the text report).
py::tuple InspectPath(const std::string& path, const std::map<std::string, std::vector<int64_t>>& shapes, bool ir,
                      bool values) {
  InspectOptions o;
  o.shapes = shapes;
  o.ir = ir;
  o.values = values;
  Expected<InspectReport> e = Internal("not inspected");
  {
    py::gil_scoped_release release;
    e = InspectModelFile(path, o);
  }
  InspectReport r = Take(std::move(e));
  return py::make_tuple(InspectJson(r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                        InspectText(r));
}

// `kiln simplify IN OUT`'s work (the simplifier pipeline, verified on the
// CPU reference against the original with random inputs unless told not to):
// returns {nodes_before, nodes_after, warnings, verified, vacuous}. A model
// with errors or a failed verification raises.
py::dict SimplifyPath(const std::string& in, const std::string& out, bool verify,
                      const std::map<std::string, std::vector<int64_t>>& input_dims) {
  py::dict d;
  Status st;
  size_t before = 0, after = 0;
  std::vector<std::string> warnings, vacuous;
  bool verified = false;
  {
    py::gil_scoped_release release;
    st = [&]() -> Status {
      KILN_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadModel(in));
      for (const Issue& i : CheckModel(*model))
        if (i.severity == Issue::Severity::kError) return InvalidArgument(in + " is not a valid model: " + i.message);
      std::unique_ptr<Model> original = CloneModel(*model);
      before = model->graph->num_nodes();
      PassContext ctx;
      KILN_RETURN_IF_ERROR(RunSimplify(*model, ctx));
      warnings = ctx.warnings;
      after = model->graph->num_nodes();
      if (verify) {
        EquivalenceOptions eo;
        eo.input_dims = input_dims;
        EquivalenceReport report;
        Status eq = CheckEquivalent(*original, *model, eo, &report);
        if (eq.code() == StatusCode::kUnsupported) {
          warnings.push_back("result not verified: " + eq.message());
        } else if (!eq.ok()) {
          return eq.WithPrefix("simplify: the simplified model differs from the original");
        } else {
          verified = true;
          vacuous = report.vacuous;
        }
      }
      return SaveModel(*model, out);
    }();
  }
  Check(st);
  d["nodes_before"] = before;
  d["nodes_after"] = after;
  d["warnings"] = warnings;
  d["verified"] = verified;
  d["vacuous"] = vacuous;
  return d;
}

void RegisterErrors(py::module_& m) {
  auto base = py::exception<std::runtime_error>(m, "Error", PyExc_RuntimeError);
  Errors()[StatusCode::kInternal] = base;
  const std::pair<StatusCode, const char*> kinds[] = {
      {StatusCode::kInvalidArgument, "InvalidArgumentError"}, {StatusCode::kUnsupported, "UnsupportedError"},
      {StatusCode::kNotFound, "NotFoundError"},               {StatusCode::kOutOfRange, "OutOfRangeError"},
      {StatusCode::kIoError, "IoError"},                      {StatusCode::kParseError, "ParseError"},
      {StatusCode::kInternal, "InternalError"}};
  for (const auto& [code, name] : kinds) {
    py::object type = py::reinterpret_steal<py::object>(
        PyErr_NewException((std::string("kiln.") + name).c_str(), base.ptr(), nullptr));
    m.attr(name) = type;
    Errors()[code] = type;
  }
  base.attr("__module__") = "kiln";
}

}  // namespace
}  // namespace kiln

PYBIND11_MODULE(_kiln, m) {
  using namespace kiln;
  m.doc() = "kiln's C++ API (include/kiln/engine.h); use the kiln package";
  m.attr("__version__") = KILN_PY_VERSION;
#ifdef KILN_HAS_CUDA
  m.attr("has_cuda") = true;
#else
  m.attr("has_cuda") = false;
#endif
  RegisterErrors(m);

  py::class_<TensorInfo>(m, "TensorInfo")
      .def_readonly("name", &TensorInfo::name)
      .def_readonly("dtype", &TensorInfo::dtype)
      .def_property_readonly("dims", &PyDims)
      .def_readonly("shape_tensor", &TensorInfo::shape_tensor)
      .def("__repr__", [](const TensorInfo& t) {
        return "TensorInfo(name=" + py::repr(py::str(t.name)).cast<std::string>() + ", dtype='" + t.dtype +
               "', dims=" + py::repr(PyDims(t)).cast<std::string>() + ")";
      });

  // A Context keeps its Engine alive (the C++ Context refers to it).
  struct PyContext {
    std::shared_ptr<Engine> engine;
    std::unique_ptr<Context> ctx;
  };
  py::class_<PyContext>(m, "_Context")
      .def("set_input_shape",
           [](PyContext& c, const std::string& name, const std::vector<int64_t>& dims) {
             Check(c.ctx->SetInputShape(name, dims));
           })
      .def("get_output_shape",
           [](const PyContext& c, const std::string& name) { return Take(c.ctx->GetOutputShape(name)); })
      .def("run", [](PyContext& c, const py::dict& feed) { return Run(*c.engine, *c.ctx, feed); })
      .def("bind_inputs", [](PyContext& c, const py::dict& feed) { BindInputs(*c.engine, *c.ctx, feed); })
      .def("enqueue", [](PyContext& c, const py::dict& outputs, uintptr_t stream, const py::function& allocate) {
        return EnqueueBound(*c.engine, *c.ctx, outputs, stream, allocate);
      });

  py::class_<Engine, std::shared_ptr<Engine>>(m, "_Engine")
      .def_static("load",
                  [](const std::string& path) { return Take(Engine::Load(path, BuilderLoadOptions())); })
      .def_static("deserialize",
                  [](const py::bytes& b) {
                    std::string s = b;
                    return Take(Engine::Deserialize(s.data(), s.size(), BuilderLoadOptions()));
                  })
      .def("serialize", [](const Engine& e) { return py::bytes(Take(e.Serialize())); })
      .def("save", [](const Engine& e, const std::string& path) { Check(e.Save(path)); })
      .def_property_readonly("inputs", &Engine::Inputs)
      .def_property_readonly("outputs", &Engine::Outputs)
      .def_property_readonly("backend", [](const Engine& e) { return IsCpu(e) ? "cpu" : "cuda"; })
      .def_property_readonly("profiles",
                             [](const Engine& e) {
                               py::dict d;
                               for (const auto& [name, r] : e.Profiles())
                                 d[py::str(name)] = py::make_tuple(r.min, r.opt, r.max);
                               return d;
                             })
      .def("describe", &Engine::Describe)
      .def("create_context", [](const std::shared_ptr<Engine>& e) {
        return PyContext{e, Take(e->CreateContext())};
      });

  m.def("check", &CheckPath, py::arg("path"), py::arg("shapes"), py::arg("backend"), py::arg("fp16"),
        py::arg("options") = py::dict());
  m.def("simplify", &SimplifyPath, py::arg("input"), py::arg("output"), py::arg("verify"), py::arg("input_dims"));
  m.def("inspect", &InspectPath, py::arg("path"), py::arg("shapes"), py::arg("ir"), py::arg("values"));
  m.def("build", &Build, py::arg("path"), py::arg("backend"), py::arg("fp16"), py::arg("profiles"),
        py::arg("workspace"), py::arg("report"), py::arg("options") = py::dict());
}
