// kiln._kiln: the C++ API (include/kiln/engine.h) for Python. numpy arrays in,
// numpy arrays out; the GIL is released while kiln builds or runs. A CPU
// engine reads and writes the arrays' memory directly; a CUDA engine stages
// them through device buffers on a stream of its own (torch CUDA tensors
// without a host copy are a later step: docs/PYTHON.md). Errors are
// kiln.Error subclasses, one per StatusCode, carrying kiln's message.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ir/verifier.h"
#include "kiln/engine.h"
#include "onnx/import.h"
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

// Value-dependent outputs: memory from the staging, dims kept for the copy.
class CollectingAllocator final : public OutputAllocator {
 public:
  explicit CollectingAllocator(Staging* staging) : staging_(staging) {}
  void* Reallocate(const std::string& name, void* current, size_t bytes) override {
    auto& r = results_[name];
    r.ptr = staging_->Allocate(bytes);
    r.bytes = bytes;
    return r.ptr;
  }
  void NotifyShape(const std::string& name, const std::vector<int64_t>& dims) override { results_[name].dims = dims; }
  struct Result {
    void* ptr = nullptr;
    size_t bytes = 0;
    std::vector<int64_t> dims;
  };
  const std::map<std::string, Result>& results() const { return results_; }

 private:
  Staging* staging_;
  std::map<std::string, Result> results_;
};

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
  for (auto item : feed) {
    std::string name = py::str(item.first);
    bool known = false;
    for (const TensorInfo& t : inputs) known = known || t.name == name;
    if (!known) Raise(InvalidArgument("run: the engine has no input named '" + name + "'"));
  }
  std::vector<py::array> keep;  // the contiguous inputs, alive until the run ends
  for (const TensorInfo& t : inputs) {
    if (!feed.contains(t.name)) Raise(InvalidArgument("run: input '" + t.name + "' is missing from the feed"));
    py::array a = np.attr("ascontiguousarray")(feed[py::str(t.name)], py::arg("dtype") = t.dtype);
    std::vector<int64_t> dims(a.shape(), a.shape() + a.ndim());
    Check(ctx.SetInputShape(t.name, dims));
    size_t bytes = static_cast<size_t>(a.nbytes());
    if (t.shape_tensor) Check(ctx.SetInputValue(t.name, a.data(), bytes));
    Check(ctx.SetTensorAddress(t.name, staging->Input(a.data(), bytes)));
    keep.push_back(std::move(a));
  }
  CollectingAllocator allocator(staging.get());
  py::dict result;
  for (const TensorInfo& t : outputs) {
    std::vector<int64_t> dims = Take(ctx.GetOutputShape(t.name));
    bool known = true;
    for (int64_t d : dims) known = known && d >= 0;
    if (known) {
      py::array a(py::dtype(t.dtype), std::vector<py::ssize_t>(dims.begin(), dims.end()));
      Check(ctx.SetTensorAddress(t.name, staging->Output(a.mutable_data(), static_cast<size_t>(a.nbytes()))));
      result[py::str(t.name)] = a;
    } else {
      Check(ctx.SetOutputAllocator(t.name, &allocator));
    }
  }
  Status st;
  {
    py::gil_scoped_release release;
    st = ctx.Enqueue(staging->Stream());
    if (st.ok()) st = staging->Finish();
  }
  Check(st);
  for (const auto& [name, r] : allocator.results()) {
    std::string dtype;
    for (const TensorInfo& t : outputs)
      if (t.name == name) dtype = t.dtype;
    py::array a(py::dtype(dtype), std::vector<py::ssize_t>(r.dims.begin(), r.dims.end()));
    Check(staging->CopyToHost(a.mutable_data(), r.ptr, r.bytes));
    result[py::str(name)] = a;
  }
  return result;
}

std::shared_ptr<Engine> Build(const std::string& path, const std::string& backend, bool fp16,
                              const std::map<std::string, std::vector<std::vector<int64_t>>>& profiles,
                              std::optional<size_t> workspace, py::dict report_out) {
  BuildOptions o;
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
  report_out["notes"] = report.notes;
  return engine;
}

// `kiln check`'s content: CheckModel's issues, then (on a structurally sound
// model, when asked) CheckShapes'.
py::dict CheckPath(const std::string& path, bool shapes) {
  LoadOptions load;
  load.strict = false;  // load what can be loaded so every problem gets listed
  std::unique_ptr<Model> model = Take(LoadModel(path, load));
  std::vector<Issue> issues = CheckModel(*model);
  bool errors = false;
  for (const Issue& i : issues) errors = errors || i.severity == Issue::Severity::kError;
  if (shapes && !errors) {
    std::vector<Issue> more = CheckShapes(*model);
    issues.insert(issues.end(), more.begin(), more.end());
  }
  py::list list;
  for (const Issue& i : issues) list.append(py::make_tuple(SeverityName(i.severity), i.node, i.message));
  py::dict d;
  d["issues"] = list;
  d["ir_version"] = model->ir_version;
  d["opset"] = model->OpsetOf("");
  d["num_nodes"] = model->graph ? model->graph->num_nodes() : 0;
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
      .def("run", [](PyContext& c, const py::dict& feed) { return Run(*c.engine, *c.ctx, feed); });

  py::class_<Engine, std::shared_ptr<Engine>>(m, "_Engine")
      .def_static("load", [](const std::string& path) { return Take(Engine::Load(path)); })
      .def_static("deserialize",
                  [](const py::bytes& b) {
                    std::string s = b;
                    return Take(Engine::Deserialize(s.data(), s.size()));
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

  m.def("check", &CheckPath, py::arg("path"), py::arg("shapes"));
  m.def("build", &Build, py::arg("path"), py::arg("backend"), py::arg("fp16"), py::arg("profiles"),
        py::arg("workspace"), py::arg("report"));
}
