// See conv_graph.h.
#include "backend/cuda/conv_graph.h"

#include <cudnn.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <unordered_map>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/timing.h"
#include "core/shape.h"

#if KILN_HAS_CUDNN_FRONTEND
#include <cudnn_frontend.h>
#endif

namespace kiln::cuda {

#if KILN_HAS_CUDNN_FRONTEND
namespace fe = cudnn_frontend;

namespace {

enum Uid : int64_t { kX = 1, kW, kBias, kZ, kY, kScale, kZScale };

// Engines timed per geometry: the heuristics' first few are nearly always
// the fastest, and each runtime-fused engine compiles a kernel when built.
constexpr int64_t kMaxTimed = 4;
constexpr int kTimedRuns = 5;

// Strides of a logical N,C,H,W tensor stored N,H,W,C.
std::vector<int64_t> NhwcStrides(const std::vector<int64_t>& d) { return {d[1] * d[2] * d[3], 1, d[3] * d[1], d[1]}; }

Status FeStatus(fe::error_t e, const char* step) {
  if (e.is_good()) return Status::Ok();
  return Unsupported(std::string("cuDNN graph conv ") + step + ": " + e.get_message());
}

std::string ShapeKey(const ConvGraphShape& s, size_t workspace_limit, bool eng4) {
  std::string key = "conv_graph:" + std::string(DataTypeName(s.dtype)) + ":x" + DimsToString(s.x) + "w" +
                    DimsToString(s.w) + "y" + DimsToString(s.y) + "p" + DimsToString(s.pads) + "s" +
                    DimsToString(s.strides) + "d" + DimsToString(s.dilations);
  if (s.bias) key += ":bias";
  if (s.z) key += s.z_after_act ? ":zpost" : ":z";
  key += ":act" + std::to_string(static_cast<int>(s.act.kind));
  if (s.act.kind == Activation::kClip) key += "[" + std::to_string(s.act.lo) + "," + std::to_string(s.act.hi) + "]";
  if (s.act.kind == Activation::kLeakyRelu) key += "[" + std::to_string(s.act.alpha) + "]";
  if (eng4) key += ":eng4";  // another engine list, another recorded choice
  return key + ":ws" + std::to_string(workspace_limit);
}

// Heuristics, support check and the engine filters shared by both forms.
Status Finalize(fe::graph::Graph& graph, cudnnHandle_t handle, size_t workspace_limit, bool eng4) {
  KILN_RETURN_IF_ERROR(FeStatus(graph.validate(), "validate"));
  KILN_RETURN_IF_ERROR(FeStatus(graph.build_operation_graph(handle), "operation graph"));
  KILN_RETURN_IF_ERROR(FeStatus(graph.create_execution_plans({fe::HeurMode_t::A}), "heuristics"));
  graph.deselect_workspace_greater_than(static_cast<int64_t>(workspace_limit));
  // Bit-identical runs whatever else shares the GPU (engines that reduce with atomics do not).
  graph.deselect_numeric_notes({fe::NumericalNote_t::NONDETERMINISTIC});
  // cuDNN's eng4 (9.19, H100, 2026-12-06) gives wrong results when contexts run it concurrently: resnet18
  // FP16 under 8 contexts had 693 of 16 000 runs differ from one context, rel L2 up to 1.7 (not rounding);
  // with eng4 deselected, 0 (eng41 or eng10 deselected instead: 32 and 193). It carries no NONDETERMINISTIC
  // note, and one context alone is bit-identical run to run. "eng4_" matches eng4's knob variants, not eng41.
  // BuildOptions::cudnn_eng4 (--cudnn-eng4) keeps it: the fastest INT8 engine on Hopper (0.67 ms against 1.09
  // over ResNet-50's convolutions at batch 32, H100), as unsound under concurrency in INT8 (2026-12-07:
  // resnet18 64x64 b4 INT8 under 8 contexts, 9458 of 16000 runs wrong).
  if (!eng4) graph.deselect_engines({"eng4_"});
  return FeStatus(graph.check_support(), "support");
}

using TensorPtr = std::shared_ptr<fe::graph::Tensor_attributes>;

TensorPtr NewTensor(fe::graph::Graph& graph, const char* name, int64_t uid, const std::vector<int64_t>& dims,
                    const std::vector<int64_t>& strides) {
  return graph.tensor(
      fe::graph::Tensor_attributes().set_name(name).set_uid(uid).set_dim(dims).set_stride(strides));
}

// X and W channels-last and their convolution (int32 accumulation for the INT8 form).
TensorPtr Convolution(fe::graph::Graph& graph, const ConvGraphShape& s) {
  auto attrs = fe::graph::Conv_fprop_attributes()
                   .set_name("conv")
                   .set_padding(s.pads)
                   .set_stride(s.strides)
                   .set_dilation(s.dilations);
  if (s.dtype == DataType::kInt8) attrs.set_compute_data_type(fe::DataType_t::INT32);
  TensorPtr y = graph.conv_fprop(NewTensor(graph, "X", kX, s.x, NhwcStrides(s.x)),
                                 NewTensor(graph, "W", kW, s.w, NhwcStrides(s.w)), attrs);
  if (s.dtype == DataType::kInt8) y->set_data_type(fe::DataType_t::INT32);
  return y;
}

// The INT8 form: conv (int32) → · scale → + bias [→ + z · z_scale] [→ ReLU] → int8.
Expected<std::shared_ptr<fe::graph::Graph>> BuildInt8Graph(const ConvGraphShape& s, cudnnHandle_t handle,
                                                           size_t workspace_limit, bool eng4) {
  if (s.act.kind != Activation::kNone && s.act.kind != Activation::kRelu && s.act.kind != Activation::kSwish)
    return Unsupported("cuDNN graph conv: INT8 takes ReLU, SiLU or no activation");
  auto graph = std::make_shared<fe::graph::Graph>();
  graph->set_io_data_type(fe::DataType_t::INT8)
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  auto float_tensor = [&](const char* name, int64_t uid, const std::vector<int64_t>& dims) {
    auto t = NewTensor(*graph, name, uid, dims, {dims[1], 1, dims[1], dims[1]});
    t->set_data_type(fe::DataType_t::FLOAT);
    return t;
  };
  auto pw = [](const char* name, fe::PointwiseMode_t mode) {
    return fe::graph::Pointwise_attributes().set_name(name).set_mode(mode).set_compute_data_type(
        fe::DataType_t::FLOAT);
  };
  const int64_t k = s.w[0];
  TensorPtr y = Convolution(*graph, s);
  y = graph->pointwise(y, float_tensor("S", kScale, {1, k, 1, 1}), pw("scale", fe::PointwiseMode_t::MUL));
  y = graph->pointwise(y, float_tensor("B", kBias, {1, k, 1, 1}), pw("bias", fe::PointwiseMode_t::ADD));
  if (s.z) {
    auto zf =
        graph->pointwise(NewTensor(*graph, "Z", kZ, s.y, NhwcStrides(s.y)),
                         float_tensor("ZS", kZScale, {1, 1, 1, 1}), pw("zscale", fe::PointwiseMode_t::MUL));
    y = graph->pointwise(y, zf, pw("residual", fe::PointwiseMode_t::ADD));
  }
  if (s.act.kind == Activation::kRelu)
    y = graph->pointwise(y, pw("activation", fe::PointwiseMode_t::RELU_FWD));
  if (s.act.kind == Activation::kSwish)
    y = graph->pointwise(y, pw("activation", fe::PointwiseMode_t::SWISH_FWD).set_swish_beta(1.f));
  y->set_output(true)
      .set_uid(kY)
      .set_dim(s.y)
      .set_stride(NhwcStrides(s.y))
      .set_data_type(fe::DataType_t::INT8);
  KILN_RETURN_IF_ERROR(Finalize(*graph, handle, workspace_limit, eng4));
  return graph;
}

// The operation graph, before any engine is chosen.
Expected<std::shared_ptr<fe::graph::Graph>> BuildGraph(const ConvGraphShape& s, cudnnHandle_t handle,
                                                       size_t workspace_limit, bool eng4) {
  if (s.dtype == DataType::kInt8) return BuildInt8Graph(s, handle, workspace_limit, eng4);
  if (s.act.kind == Activation::kClip && (!std::isfinite(s.act.lo) || !std::isfinite(s.act.hi)))
    return Unsupported("cuDNN graph conv: a Clip without both bounds");
  auto graph = std::make_shared<fe::graph::Graph>();
  graph->set_io_data_type(s.dtype == DataType::kBFloat16 ? fe::DataType_t::BFLOAT16 : fe::DataType_t::HALF)
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  TensorPtr y = Convolution(*graph, s);
  auto add = [&](TensorPtr a, TensorPtr b, const char* name) {
    return graph->pointwise(a, b, fe::graph::Pointwise_attributes().set_name(name).set_mode(fe::PointwiseMode_t::ADD));
  };
  if (s.bias) {
    const int64_t k = s.w[0];
    y = add(y, NewTensor(*graph, "B", kBias, {1, k, 1, 1}, {k, 1, k, k}), "bias");
  }
  if (s.z && !s.z_after_act) y = add(y, NewTensor(*graph, "Z", kZ, s.y, NhwcStrides(s.y)), "residual");
  auto act = fe::graph::Pointwise_attributes().set_name("activation");
  switch (s.act.kind) {
    case Activation::kNone:
      break;
    case Activation::kRelu:
      y = graph->pointwise(y, act.set_mode(fe::PointwiseMode_t::RELU_FWD));
      break;
    case Activation::kClip:
      y = graph->pointwise(
          y, act.set_mode(fe::PointwiseMode_t::RELU_FWD).set_relu_lower_clip(s.act.lo).set_relu_upper_clip(s.act.hi));
      break;
    case Activation::kSigmoid:
      y = graph->pointwise(y, act.set_mode(fe::PointwiseMode_t::SIGMOID_FWD));
      break;
    case Activation::kSwish:
      y = graph->pointwise(y, act.set_mode(fe::PointwiseMode_t::SWISH_FWD).set_swish_beta(1.f));
      break;
    case Activation::kGelu:  // erf form, as the Gelu kernel
      y = graph->pointwise(y, act.set_mode(fe::PointwiseMode_t::GELU_FWD));
      break;
    case Activation::kLeakyRelu:
      y = graph->pointwise(
          y, act.set_mode(fe::PointwiseMode_t::RELU_FWD).set_relu_lower_clip_slope(s.act.alpha));
      break;
    case Activation::kHardSwish:
    case Activation::kHardSigmoid:  // no such pointwise mode: the legacy call and a pass run it
      return Unsupported("cuDNN graph conv: no hard activations in the graph API");
  }
  if (s.z && s.z_after_act) y = add(y, NewTensor(*graph, "Z", kZ, s.y, NhwcStrides(s.y)), "residual");
  y->set_output(true).set_uid(kY).set_dim(s.y).set_stride(NhwcStrides(s.y)).set_data_type(
      s.dtype == DataType::kBFloat16 ? fe::DataType_t::BFLOAT16 : fe::DataType_t::HALF);
  KILN_RETURN_IF_ERROR(Finalize(*graph, handle, workspace_limit, eng4));
  return graph;
}

size_t Bytes(const std::vector<int64_t>& d, DataType dt) {
  size_t n = ElementSize(dt);
  for (int64_t v : d) n *= static_cast<size_t>(v);
  return n;
}

}  // namespace

// One built graph and its engine, shared by the layers of one geometry
// (GpuResources::plans).
struct ConvGraph::Impl {
  std::shared_ptr<fe::graph::Graph> graph;
  int64_t plan = -1;
  float time_ms = 0.f;
  int64_t workspace = 0;
  std::string name;  // cuDNN's engine name with its knobs ("eng4_k2=1_..."), for `kiln inspect`
};

namespace {

// The tactic entry of a chosen engine: "PLAN MS [NAME]" (readers take the first two fields; the name is for
// people).
std::string RecordOf(const ConvGraph::Impl& g) {
  return std::to_string(g.plan) + " " + std::to_string(g.time_ms) + (g.name.empty() ? "" : " " + g.name);
}

// Takes a recorded choice without timing; false when it does not parse or its engine no longer builds.
bool UseRecorded(const std::string& value, ConvGraph::Impl* g) {
  long long plan = -1;
  float ms = 0.f;
  int64_t workspace = 0;
  if (std::sscanf(value.c_str(), "%lld %f", &plan, &ms) != 2 || plan < 0 ||
      plan >= g->graph->get_execution_plan_count() || g->graph->build_plan_at_index(plan).is_bad() ||
      g->graph->get_workspace_size_plan_at_index(plan, workspace).is_bad())
    return false;
  g->plan = plan;
  g->time_ms = ms;
  g->workspace = workspace;
  if (g->graph->get_plan_name_at_index(plan, g->name).is_bad()) g->name.clear();
  return true;
}

// Times the first kMaxTimed engines that build; the fastest's index.
Status TimeEngines(const ConvGraphShape& s, ConvGraph::Impl* g, cudnnHandle_t handle) {
  const int64_t count = g->graph->get_execution_plan_count();
  const bool int8 = s.dtype == DataType::kInt8;
  const DataType vec = int8 ? DataType::kFloat : s.dtype;  // scale, bias, z_scale
  DeviceBuffer x, w, b, z, y, ws, scale, zs;
  KILN_RETURN_IF_ERROR(x.Reserve(Bytes(s.x, s.dtype)));
  KILN_RETURN_IF_ERROR(w.Reserve(Bytes(s.w, s.dtype)));
  KILN_RETURN_IF_ERROR(b.Reserve(Bytes({s.w[0]}, vec)));
  KILN_RETURN_IF_ERROR(z.Reserve(Bytes(s.y, s.dtype)));
  KILN_RETURN_IF_ERROR(y.Reserve(Bytes(s.y, s.dtype)));
  if (int8) {
    KILN_RETURN_IF_ERROR(scale.Reserve(Bytes({s.w[0]}, vec)));
    KILN_RETURN_IF_ERROR(zs.Reserve(Bytes({1}, vec)));
  }
  KILN_RETURN_IF_ERROR(FillForTiming({&x, &w, &b, &z, &scale, &zs}));
  std::unordered_map<int64_t, void*> pack = {{kX, x.get()}, {kW, w.get()}, {kY, y.get()}};
  if (s.bias || int8) pack[kBias] = b.get();
  if (int8) pack[kScale] = scale.get();
  if (s.z) pack[kZ] = z.get();
  if (s.z && int8) pack[kZScale] = zs.get();
  cudaStream_t prior = nullptr;
  cudnnGetStream(handle, &prior);
  // Deselected engines (deselect_engines above) fail to build: they do not count.
  for (int64_t i = 0, timed = 0; i < count && timed < kMaxTimed; ++i) {
    int64_t bytes = 0;
    if (g->graph->build_plan_at_index(i).is_bad() || g->graph->get_workspace_size_plan_at_index(i, bytes).is_bad())
      continue;
    if (static_cast<size_t>(bytes) > ws.bytes() && !ws.Reserve(static_cast<size_t>(bytes)).ok()) continue;
    ++timed;
    Expected<float> ms = TimeOnPrivateStream(
        [&](cudaStream_t stream) -> Status {
          if (cudnnSetStream(handle, stream) != CUDNN_STATUS_SUCCESS) return Internal("cudnnSetStream failed");
          return FeStatus(g->graph->execute_plan_at_index(handle, pack, ws.get(), i), "execute");
        },
        kTimedRuns);
    if (ms.ok() && (g->plan < 0 || *ms < g->time_ms)) {
      g->plan = i;
      g->time_ms = *ms;
      g->workspace = bytes;
      if (g->graph->get_plan_name_at_index(i, g->name).is_bad()) g->name.clear();
    }
  }
  cudnnSetStream(handle, prior);
  cudaGetLastError();  // an engine that failed to launch must not fail the next kernel's check
  if (g->plan < 0) return Unsupported("cuDNN graph conv: none of the heuristics' engines ran");
  return Status::Ok();
}

}  // namespace

ConvGraph::ConvGraph() = default;
ConvGraph::~ConvGraph() = default;

Status ConvGraph::Prepare(const ConvGraphShape& s, GpuResources& res, float* time_ms) {
  impl_.reset();
  workspace_ = 0;
  if (s.dtype != DataType::kFloat16 && s.dtype != DataType::kBFloat16 && s.dtype != DataType::kInt8)
    return Unsupported("cuDNN graph conv: float16/bfloat16/int8 only");
  key_ = ShapeKey(s, res.workspace_limit, res.cudnn_eng4);
  const std::string& key = key_;
  auto shared = res.plans.find(key);
  if (shared != res.plans.end()) {
    impl_ = std::static_pointer_cast<Impl>(shared->second);
    if (!impl_) return Unsupported("cuDNN graph conv: no engine for this geometry (found before)");
  } else {
    auto handle = static_cast<cudnnHandle_t>(res.cudnn);
    auto built = BuildGraph(s, handle, res.workspace_limit, res.cudnn_eng4);
    auto g = std::make_shared<Impl>();
    Status st = built.status();
    if (built.ok()) {
      g->graph = *built;
      // A recorded choice ("PLAN MS [NAME]" or "none") is built without timing.
      std::optional<std::string> hit = res.tactics ? res.tactics->Find(key) : std::nullopt;
      if (hit && *hit == "none") {
        st = Unsupported("cuDNN graph conv: no engine for this geometry (recorded in the plan)");
      } else if (!(hit && UseRecorded(*hit, g.get()))) {
        st = TimeEngines(s, g.get(), handle);
        if (st.ok() && res.tactics) {
          // Another context may have timed the same geometry meanwhile: the first choice stands for all,
          // so every context runs the same engine (bit-identical outputs across contexts). A recorded
          // choice that no longer builds here (`hit`) is replaced.
          const std::string mine = RecordOf(*g);
          const std::string kept = res.tactics->Keep(key, mine, hit.has_value());
          if (kept == "none")
            st = Unsupported("cuDNN graph conv: no engine for this geometry (found by another context)");
          else if (kept != mine)
            UseRecorded(kept, g.get());  // the first's engine, if it builds here; else this one's
        }
      }
    }
    if (!st.ok()) {
      if (res.tactics && st.code() == StatusCode::kUnsupported) res.tactics->Insert(key, "none");
      res.plans[key] = nullptr;
      return st;
    }
    res.plans[key] = g;
    impl_ = g;
  }
  workspace_ = static_cast<size_t>(impl_->workspace);
  if (time_ms) *time_ms = impl_->time_ms;
  return Status::Ok();
}

Status ConvGraph::Run(const void* x, const void* w, const void* bias, const void* z, void* y, void* workspace,
                      GpuResources& res, cudaStream_t stream) const {
  if (!impl_) return Internal("cuDNN graph conv: run before a successful Prepare");
  auto handle = static_cast<cudnnHandle_t>(res.cudnn);
  if (cudnnSetStream(handle, stream) != CUDNN_STATUS_SUCCESS) return Internal("cudnnSetStream failed");
  std::unordered_map<int64_t, void*> pack = {
      {kX, const_cast<void*>(x)}, {kW, const_cast<void*>(w)}, {kY, y}};
  if (bias) pack[kBias] = const_cast<void*>(bias);
  if (z) pack[kZ] = const_cast<void*>(z);
  return FeStatus(impl_->graph->execute_plan_at_index(handle, pack, workspace, impl_->plan), "execute");
}

Status ConvGraph::RunInt8(const void* x, const void* w, const float* scale, const float* bias, const void* z,
                          const float* z_scale, void* y, void* workspace, GpuResources& res,
                          cudaStream_t stream) const {
  if (!impl_) return Internal("cuDNN graph conv: run before a successful Prepare");
  auto handle = static_cast<cudnnHandle_t>(res.cudnn);
  if (cudnnSetStream(handle, stream) != CUDNN_STATUS_SUCCESS) return Internal("cudnnSetStream failed");
  std::unordered_map<int64_t, void*> pack = {{kX, const_cast<void*>(x)},
                                             {kW, const_cast<void*>(w)},
                                             {kScale, const_cast<float*>(scale)},
                                             {kBias, const_cast<float*>(bias)},
                                             {kY, y}};
  if (z) {
    pack[kZ] = const_cast<void*>(z);
    pack[kZScale] = const_cast<float*>(z_scale);
  }
  return FeStatus(impl_->graph->execute_plan_at_index(handle, pack, workspace, impl_->plan), "execute");
}

#else  // !KILN_HAS_CUDNN_FRONTEND

struct ConvGraph::Impl {};
ConvGraph::ConvGraph() = default;
ConvGraph::~ConvGraph() = default;
Status ConvGraph::Prepare(const ConvGraphShape&, GpuResources&, float*) {
  return Unsupported("cuDNN graph conv: kiln was built without cudnn-frontend's headers");
}
Status ConvGraph::Run(const void*, const void*, const void*, const void*, void*, void*, GpuResources&,
                      cudaStream_t) const {
  return Internal("cuDNN graph conv: kiln was built without cudnn-frontend's headers");
}
Status ConvGraph::RunInt8(const void*, const void*, const float*, const float*, const void*, const float*,
                          void*, void*, GpuResources&, cudaStream_t) const {
  return Internal("cuDNN graph conv: kiln was built without cudnn-frontend's headers");
}

#endif  // KILN_HAS_CUDNN_FRONTEND

}  // namespace kiln::cuda
