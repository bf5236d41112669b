// kiln.Attention on the GPU (see attention.h): cuDNN's fused flash attention
// through cudnn-frontend's SDPA graph when kiln was built with its headers
// (KILN_HAS_CUDNN_FRONTEND) and cuDNN supports the geometry (float16 /
// bfloat16, head sizes multiples of 8 up to 128, ...); our kernel otherwise.
// The cuDNN graph is built in Prepare for the concrete shapes and strides,
// then kept in the context's plan cache, so the layers of one model (which
// share a geometry) and repeated shape changes build it once.
// Short sequences (at most 64 keys, head size 32 or 64: windowed attention)
// have a third candidate, attention.cu's short-sequence kernel, timed at
// Prepare against the other (a tactic, kept in the plan).
#include "backend/cuda/attention.h"

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_op_table.h"
#include "backend/cuda/timing.h"
#include "core/shape.h"

#if KILN_HAS_CUDNN_FRONTEND
#include <cudnn_frontend.h>
#endif

namespace kiln::cuda {
namespace {

#if KILN_HAS_CUDNN_FRONTEND
namespace fe = cudnn_frontend;

enum Uid : int64_t { kQ = 1, kK, kV, kBias, kY };

// [B, heads, seq, dim] and its strides; K and V take g.kv_heads (grouped-query
// attention: cuDNN's SDPA reads K/V head h / (H / H_kv) for query head h).
std::vector<int64_t> Dims4(const AttentionShape& g, int64_t heads, int64_t seq, int64_t dim) {
  return {g.batch, heads, seq, dim};
}
std::vector<int64_t> Strides4(const AttentionStrides& s, int64_t heads, int64_t seq, int64_t dim) {
  // A 3-D tensor has B = 1: give its batch axis the full extent as stride.
  return {s.b != 0 ? s.b : heads * seq * dim, s.h, s.s, 1};
}

// The SDPA graph for `a`, or an error saying why cuDNN cannot run it.
Expected<std::shared_ptr<fe::graph::Graph>> BuildSdpa(const AttentionArgs& a, DataType dt, bool has_bias,
                                                      const std::vector<int64_t>& bias_dims,
                                                      cudnnHandle_t handle, size_t workspace_limit) {
  auto graph = std::make_shared<fe::graph::Graph>();
  graph->set_io_data_type(dt == DataType::kBFloat16 ? fe::DataType_t::BFLOAT16 : fe::DataType_t::HALF)
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  const AttentionShape& g = a.g;
  auto tensor = [&](const char* name, int64_t uid, const AttentionStrides& s, int64_t heads, int64_t seq,
                    int64_t dim) {
    return graph->tensor(fe::graph::Tensor_attributes()
                             .set_name(name)
                             .set_uid(uid)
                             .set_dim(Dims4(g, heads, seq, dim))
                             .set_stride(Strides4(s, heads, seq, dim)));
  };
  auto q = tensor("Q", kQ, a.q, g.heads, g.q_seq, g.head_dim);
  auto k = tensor("K", kK, a.k, g.kv_heads, g.kv_seq, g.head_dim);
  auto v = tensor("V", kV, a.v, g.kv_heads, g.kv_seq, g.v_head_dim);
  auto opts = fe::graph::SDPA_attributes().set_name("attention").set_generate_stats(false).set_attn_scale(a.scale);
  if (has_bias) {
    // bias_dims: the logical [B|1, H|1, Sq|1, Skv|1] extents with a.bias's strides.
    auto bias = graph->tensor(fe::graph::Tensor_attributes()
                                  .set_name("bias")
                                  .set_uid(kBias)
                                  .set_dim(bias_dims)
                                  .set_stride({a.bias.b, a.bias.h, a.bias.q, a.bias.k}));
    opts.set_bias(bias);
  }
  auto [y, stats] = graph->sdpa(q, k, v, opts);
  (void)stats;
  y->set_output(true)
      .set_uid(kY)
      .set_dim(Dims4(g, g.heads, g.q_seq, g.v_head_dim))
      .set_stride(Strides4(a.y, g.heads, g.q_seq, g.v_head_dim));
  auto check = [](fe::error_t e, const char* step) -> Status {
    if (e.is_good()) return Status::Ok();
    return Unsupported(std::string("cuDNN SDPA ") + step + ": " + e.get_message());
  };
  KILN_RETURN_IF_ERROR(check(graph->validate(), "validate"));
  KILN_RETURN_IF_ERROR(check(graph->build_operation_graph(handle), "operation graph"));
  KILN_RETURN_IF_ERROR(check(graph->create_execution_plans({fe::HeurMode_t::A}), "heuristics"));
  graph->deselect_workspace_greater_than(static_cast<int64_t>(workspace_limit));
  graph->deselect_numeric_notes({fe::NumericalNote_t::NONDETERMINISTIC});  // as conv_graph.cc
  KILN_RETURN_IF_ERROR(check(graph->check_support(), "support"));
  KILN_RETURN_IF_ERROR(check(graph->build_plans(fe::BuildPlanPolicy_t::HEURISTICS_CHOICE), "build"));
  return graph;
}

// The cuDNN handle's stream, put back on scope exit: timing runs on private streams that it then destroys,
// and the next cuDNN call of the build (a convolution's algorithm search) would run on a destroyed stream.
class KeepCudnnStream {
 public:
  explicit KeepCudnnStream(cudnnHandle_t h) : h_(h) { cudnnGetStream(h_, &prior_); }
  ~KeepCudnnStream() { cudnnSetStream(h_, prior_); }
  KeepCudnnStream(const KeepCudnnStream&) = delete;
  KeepCudnnStream& operator=(const KeepCudnnStream&) = delete;

 private:
  cudnnHandle_t h_;
  cudaStream_t prior_ = nullptr;
};
#endif  // KILN_HAS_CUDNN_FRONTEND

// The geometry as a key (cuDNN graphs in the plan cache, the kernel tactic): everything BuildSdpa reads.
std::string SdpaKey(const AttentionArgs& a, DataType dt, bool has_bias, const std::vector<int64_t>& bias_dims) {
  auto s = [](const AttentionStrides& t) {
    return std::to_string(t.b) + "," + std::to_string(t.h) + "," + std::to_string(t.s) + ";";
  };
  const AttentionShape& g = a.g;
  std::string key = "sdpa:" + std::string(DataTypeName(dt)) + ":" +
                    DimsToString({g.batch, g.heads, g.kv_heads, g.q_seq, g.kv_seq, g.head_dim, g.v_head_dim}) + s(a.q) + s(a.k) +
                    s(a.v) + s(a.y) + std::to_string(a.scale);
  if (has_bias)
    key += ":bias" + DimsToString(bias_dims) + std::to_string(a.bias.b) + "," + std::to_string(a.bias.h) + "," +
           std::to_string(a.bias.q) + "," + std::to_string(a.bias.k);
  return key;
}

class AttentionOp final : public GpuOp {
 public:
  AttentionOp(const Node& n, AttentionLayouts layouts, AttentionHeadRanges ranges, float scale)
      : node_(n), layouts_(layouts), ranges_(ranges), scale_(scale) {}

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources& res) override {
    const DataType dt = in[0].dtype;
    for (size_t i = 1; i < in.size(); ++i)
      if (Present(in[i]) && in[i].dtype != dt)
        return InvalidArgument(node_.Label() + ": Q, K, V and the bias must have one type");
    const std::string dims = " (Q " + DimsToString(in[0].dims) + ", K " + DimsToString(in[1].dims) + ", V " +
                             DimsToString(in[2].dims) + ")";
    AttentionView views[3];
    const AttentionLayout in_layouts[3] = {layouts_.q, layouts_.k, layouts_.v};
    for (size_t i = 0; i < 3; ++i) {
      std::string err = AttentionViewOf(in_layouts[i], in[i].dims, ranges_[i], &views[i]);
      if (!err.empty()) return InvalidArgument(node_.Label() + ": " + err + dims);
      offsets_[i] = views[i].offset * static_cast<int64_t>(ElementSize(dt));
    }
    std::string err = AttentionGeometry(views[0].dims, views[1].dims, views[2].dims, layouts_, &args_.g);
    if (!err.empty()) return InvalidArgument(node_.Label() + ": " + err + dims);
    const AttentionShape& g = args_.g;
    args_.q = views[0].strides;
    args_.k = views[1].strides;
    args_.v = views[2].strides;
    args_.y = AttentionTensorStrides(layouts_.y, AttentionOutputDims(g));
    args_.scale = scale_;
    has_bias_ = in.size() > 3 && Present(in[3]);
    args_.bias = BiasStrides();
    if (has_bias_) {
      err = AttentionBiasStrides(g, in[3].dims, &args_.bias);
      if (!err.empty()) return InvalidArgument(node_.Label() + ": " + err + " (bias " + DimsToString(in[3].dims) + ")");
    }
    dtype_ = dt;
    workspace_ = 0;
#if KILN_HAS_CUDNN_FRONTEND
    sdpa_.reset();
    // cuDNN wants 16-byte aligned tensors: a head range must start on one (the buffers do).
    const bool aligned = offsets_[0] % 16 == 0 && offsets_[1] % 16 == 0 && offsets_[2] % 16 == 0;
    if ((dt == DataType::kFloat16 || dt == DataType::kBFloat16) && aligned &&
        g.batch * g.heads * g.q_seq > 0 && g.kv_seq > 0) {
      const std::vector<int64_t> bias_dims = BiasDims();
      const std::string key = SdpaKey(args_, dt, has_bias_, bias_dims);
      auto it = res.plans.find(key);
      if (it != res.plans.end()) {
        sdpa_ = std::static_pointer_cast<fe::graph::Graph>(it->second);
      } else {
        auto built = BuildSdpa(args_, dt, has_bias_, bias_dims, static_cast<cudnnHandle_t>(res.cudnn),
                               res.workspace_limit);
        // Unsupported geometry: our kernel runs it. Said once per geometry (the
        // miss is cached too).
        if (built.ok())
          sdpa_ = *built;
        else
          std::fprintf(stderr, "kiln: %s: cuDNN attention unavailable (%s); using kiln's kernel\n",
                       node_.Label().c_str(), built.status().message().c_str());
        res.plans[key] = sdpa_;
      }
      if (sdpa_) {
        int64_t ws = 0;
        if (sdpa_->get_workspace_size(ws).is_bad()) return Internal(node_.Label() + ": cuDNN SDPA workspace query failed");
        workspace_ = static_cast<size_t>(ws);
      }
    }
#endif
    use_small_ = false;
    if (SmallAttentionFits(dt, args_) && g.batch * g.heads * g.q_seq > 0) {
      KILN_ASSIGN_OR_RETURN(use_small_, PickSmall(in, out, res));
    }
    return Status::Ok();
  }

  size_t WorkspaceBytes() const override { return workspace_; }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void* ws, GpuResources& res,
                 cudaStream_t stream) override {
    if (out[0].numel() == 0) return Status::Ok();
    void* qkv[3] = {in[0].data, in[1].data, in[2].data};
    return Run(use_small_, qkv, has_bias_ ? in[3].data : nullptr, out[0].data, ws, res, stream);
  }

 private:
  // One run on these operands (Q, K, V: the inputs' starts, before the head ranges' offsets): the
  // short-sequence kernel, cuDNN's graph when there is one, else the general kernel.
  Status Run(bool small, void* const inputs[3], const void* bias, void* y, void* ws, GpuResources& res,
             cudaStream_t stream) {
    void* qkv[3];
    for (size_t i = 0; i < 3; ++i) qkv[i] = static_cast<char*>(inputs[i]) + offsets_[i];
    if (small)
      return LaunchSmallAttention(dtype_, args_, qkv[0], qkv[1], qkv[2], bias, y, stream)
          .WithPrefix(node_.Label());
#if KILN_HAS_CUDNN_FRONTEND
    if (sdpa_) {
      auto handle = static_cast<cudnnHandle_t>(res.cudnn);
      if (cudnnSetStream(handle, stream) != CUDNN_STATUS_SUCCESS)
        return Internal(node_.Label() + ": cudnnSetStream failed");
      std::unordered_map<int64_t, void*> pack = {{kQ, qkv[0]}, {kK, qkv[1]}, {kV, qkv[2]}, { kY, y }};
      if (bias) pack[kBias] = const_cast<void*>(bias);
      fe::error_t e = sdpa_->execute(handle, pack, ws);
      if (e.is_bad()) return Internal(node_.Label() + ": cuDNN SDPA failed: " + e.get_message());
      return Status::Ok();
    }
#endif
    (void)res, (void)ws;
    return LaunchAttention(dtype_, args_, qkv[0], qkv[1], qkv[2], bias, y, stream).WithPrefix(node_.Label());
  }

  // Whether the short-sequence kernel runs (SmallAttentionFits): timed against cuDNN's graph, or without one
  // the general kernel, on scratch operands of the inputs' sizes; the verdict is a tactic (kept in the plan
  // and the timing cache).
  Expected<bool> PickSmall(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out,
                           GpuResources& res) {
    const size_t es = ElementSize(dtype_);
    DeviceBuffer scratch[5], ws;  // Q, K, V, bias, Y
    auto time = [&](bool small) -> Expected<float> {
      if (!scratch[4].get()) {
        for (size_t i = 0; i < 4; ++i)
          if (i < 3 || has_bias_)
            KILN_RETURN_IF_ERROR(scratch[i].Reserve(static_cast<size_t>(in[i].numel()) * es));
        KILN_RETURN_IF_ERROR(scratch[4].Reserve(static_cast<size_t>(out[0].numel()) * es));
        if (workspace_) KILN_RETURN_IF_ERROR(ws.Reserve(workspace_));
        KILN_RETURN_IF_ERROR(FillForTiming({&scratch[0], &scratch[1], &scratch[2], &scratch[3]}));
      }
      void* qkv[3] = {scratch[0].get(), scratch[1].get(), scratch[2].get()};
      return TimeOnPrivateStream(
          [&](cudaStream_t stream) {
            return Run(small, qkv, has_bias_ ? scratch[3].get() : nullptr, scratch[4].get(), ws.get(), res,
                       stream);
          },
          5);
    };
    const bool cudnn = HasCudnnGraph();
#if KILN_HAS_CUDNN_FRONTEND
    std::optional<KeepCudnnStream> keep;
    if (cudnn) keep.emplace(static_cast<cudnnHandle_t>(res.cudnn));
#endif
    const std::vector<int64_t> bias_dims = BiasDims();
    KILN_ASSIGN_OR_RETURN(
        size_t pick, FastestTactic(res, "attention:" + SdpaKey(args_, dtype_, has_bias_, bias_dims),
                                   {cudnn ? "cudnn" : "kernel", "small"},
                                   {[&] { return time(false); }, [&] { return time(true); }}, node_.name));
    return pick == 1;
  }

  bool HasCudnnGraph() const {
#if KILN_HAS_CUDNN_FRONTEND
    return sdpa_ != nullptr;
#else
    return false;
#endif
  }

  // The bias extents cuDNN sees: 1 on broadcast axes.
  std::vector<int64_t> BiasDims() const {
    const AttentionShape& g = args_.g;
    return {args_.bias.b ? g.batch : 1, args_.bias.h ? g.heads : 1, args_.bias.q ? g.q_seq : 1,
            args_.bias.k ? g.kv_seq : 1};
  }

  const Node& node_;
  const AttentionLayouts layouts_;
  const AttentionHeadRanges ranges_;
  const float scale_;
  int64_t offsets_[3] = {0, 0, 0};  // bytes from each input's start to its head range
  AttentionArgs args_;
  bool has_bias_ = false;
  bool use_small_ = false;  // the short-sequence kernel (PickSmall)
  DataType dtype_ = DataType::kUndefined;
  size_t workspace_ = 0;
#if KILN_HAS_CUDNN_FRONTEND
  std::shared_ptr<fe::graph::Graph> sdpa_;
#endif
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeAttentionOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  if (n.num_inputs() < 3 || n.num_inputs() > 4 || !n.input(0) || !n.input(1) || !n.input(2))
    return InvalidArgument(n.Label() + ": kiln.Attention needs Q, K, V and an optional bias");
  const Attribute* layout = n.attr("layout");
  const Attribute* layouts = n.attr("layouts");
  AttentionLayouts kind;
  std::string err = ParseAttentionLayouts(layout ? layout->s : "bhsd", layouts ? &layouts->strings : nullptr, &kind);
  if (!err.empty()) return InvalidArgument(n.Label() + ": " + err);
  const Attribute* scale = n.attr("scale");
  if (!scale) return InvalidArgument(n.Label() + ": kiln.Attention needs the attribute scale");
  AttentionHeadRanges ranges;
  if (const Attribute* hr = n.attr("head_ranges")) {
    err = ParseAttentionHeadRanges(hr->ints, &ranges);
    if (!err.empty()) return InvalidArgument(n.Label() + ": " + err);
  }
  for (size_t i : {size_t{0}, size_t{2}}) {
    const Shape& s = n.input(i)->shape();
    if (s.rank_known() && s.rank() > 0) {
      const Dim& d = s[static_cast<size_t>(s.rank() - 1)];
      if (d.known() && d.value() > kAttentionKernelMaxHeadDim)
        return Unsupported(n.Label() + ": head size " + std::to_string(d.value()) + " of " + n.input(i)->name() +
                           " is above the GPU kernel's " + std::to_string(kAttentionKernelMaxHeadDim));
    }
  }
  return std::unique_ptr<GpuOp>(new AttentionOp(n, kind, ranges, scale->f));
}

}  // namespace kiln::cuda
