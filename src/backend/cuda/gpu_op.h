// The CUDA backend's per-node interface. The builder creates one GpuOp per
// node from the CUDA op table (cuda_ops.def); the runtime calls Prepare when
// input shapes change (outside any CUDA graph capture: it may query cuDNN /
// cuBLASLt, pick algorithms, compute workspace) and Enqueue on every run
// (inside capture: no allocation, no synchronisation, no host reads of device
// data, every launch on `stream`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <cuda_runtime.h>

#include "core/dtype.h"
#include "ir/graph.h"
#include "kiln/engine.h"
#include "kiln/status.h"

namespace kiln::cuda {

// A device tensor view: the runtime owns the memory.
struct DevTensor {
  void* data = nullptr;
  DataType dtype = DataType::kUndefined;
  std::vector<int64_t> dims;
  // The value on the host when it is known before the run (a constant, or
  // folded from the input shapes): what Prepare reads for Slice starts,
  // Resize scales and the like. nullptr otherwise; never read in Enqueue.
  const Tensor* host = nullptr;
  // Outputs of data-dependent ops only (GpuOp::OutputBounds): device memory of
  // rank int64s where Enqueue writes the output's real dims. nullptr otherwise.
  int64_t* extent = nullptr;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return n;
  }
};

// True for a given (not omitted) input/output. Use this in Prepare: data
// pointers of graph inputs/outputs are bound only at Enqueue.
inline bool Present(const DevTensor& t) { return t.dtype != DataType::kUndefined; }

// Tactics timed once and shared by every context of an engine, keyed by what
// was timed (descriptors, types, workspace limit) with the choice serialized
// as text: a geometry seen before, in another layer or at a shape timed
// earlier, is not timed again, and the plan stores the entries so that
// loading it does not time anything it recorded. Thread-safe.
class TacticCache {
 public:
  std::optional<std::string> Find(const std::string& key) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    return it->second;
  }
  void Put(const std::string& key, std::string value) {
    std::lock_guard<std::mutex> lock(mu_);
    entries_[key] = std::move(value);
  }
  // Keeps the first value put for `key` and returns it: contexts that time one
  // choice at once all take the same one.
  std::string Insert(const std::string& key, std::string value) {
    std::lock_guard<std::mutex> lock(mu_);
    return entries_.emplace(key, std::move(value)).first->second;
  }
  // A timed choice, and the one that stands: with `stale` (the recorded entry
  // no longer runs here, e.g. a plan from another cuDNN or cuBLAS) it replaces
  // the entry; otherwise as Insert.
  std::string Keep(const std::string& key, std::string value, bool stale) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stale) return entries_[key] = std::move(value);
    return entries_.emplace(key, std::move(value)).first->second;
  }
  std::map<std::string, std::string> Entries() const {
    std::lock_guard<std::mutex> lock(mu_);
    return entries_;
  }
  void Load(const std::map<std::string, std::string>& entries) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [k, v] : entries) entries_[k] = v;
  }
  // Which entry a node used, at the shapes it was last prepared at (the
  // build prepares at the opt shapes last): the plan's 'tactic_nodes'
  // section, which `kiln inspect PLAN` reads.
  void Use(const std::string& node, const std::string& key) {
    if (node.empty()) return;
    std::lock_guard<std::mutex> lock(mu_);
    uses_[node] = key;
  }
  std::map<std::string, std::string> Uses() const {
    std::lock_guard<std::mutex> lock(mu_);
    return uses_;
  }
  void LoadUses(const std::map<std::string, std::string>& uses) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [k, v] : uses) uses_[k] = v;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string> entries_;  // ordered: plans serialize deterministically
  std::map<std::string, std::string> uses_;     // node name → key
};

// Library handles and limits shared by the ops of one Context (per stream).
struct GpuResources {
  void* cublaslt = nullptr;  // cublasLtHandle_t
  void* cudnn = nullptr;     // cudnnHandle_t
  size_t workspace_limit = 256u << 20;
  bool allow_tf32 = false;
  BuildOptions::ConvTactics conv_tactics = BuildOptions::ConvTactics::kAuto;
  bool cudnn_eng4 = false;  // BuildOptions::cudnn_eng4
  int sm_count = 0;
  // Library plans the ops share, keyed by what they compute (the layers of a
  // transformer share one cuDNN attention graph). Filled in Prepare.
  std::unordered_map<std::string, std::shared_ptr<void>> plans;
  // The engine's tactic cache (shared by its contexts); may be null.
  std::shared_ptr<TacticCache> tactics;
};

class GpuOp {
 public:
  virtual ~GpuOp() = default;
  // Shapes of inputs/outputs are known (concrete). Chooses algorithms and
  // sets WorkspaceBytes(). Called once per new input-shape set.
  virtual Status Prepare(const std::vector<DevTensor>& inputs, const std::vector<DevTensor>& outputs,
                         GpuResources& res) {
    return Status::Ok();
  }
  virtual size_t WorkspaceBytes() const { return 0; }
  // Data-dependent ops (NonZero, NonMaxSuppression, TopK whose K is computed
  // on the device, Compress, Unique): output extents depend on input values.
  // The runtime asks every op at Prepare time; an op whose shapes follow from
  // its input shapes returns no bounds (the default). A data-dependent op
  // returns, from the input dims, the largest dims each output can have: the
  // runtime sizes the output buffers at these bounds and Prepare sees them as
  // the outputs' dims, whatever dims the model declared. Enqueue then writes
  // each output packed at its real dims (row-major over the real extents,
  // from the start of the buffer) and the real dims into outputs[i].extent.
  // The runtime reads the extents back at one sync point after the op
  // (TensorRT's IOutputAllocator) and prepares the rest of the graph at the
  // real shapes.
  virtual Expected<std::vector<std::vector<int64_t>>> OutputBounds(const std::vector<DevTensor>& inputs) const {
    return std::vector<std::vector<int64_t>>{};
  }
  // Launches the op. Omitted optional inputs/outputs have data == nullptr.
  virtual Status Enqueue(const std::vector<DevTensor>& inputs, const std::vector<DevTensor>& outputs,
                         void* workspace, GpuResources& res, cudaStream_t stream) = 0;
};

// What a factory sees at build/load time: the node (attributes, constant
// inputs via Value::data), its opset, and whether FP16 was asked for.
struct GpuOpInfo {
  const Node* node = nullptr;
  int64_t opset = 0;
  bool fp16 = false;
};

// Returns the op, or an Unsupported error naming node/op/shapes when this
// node cannot run on the GPU (the build then fails: no silent CPU fallback).
using GpuOpFactory = Expected<std::unique_ptr<GpuOp>> (*)(const GpuOpInfo&);

}  // namespace kiln::cuda
