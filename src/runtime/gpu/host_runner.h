// Host-memory IO around a Context, the way deployment code does it: pinned
// host staging buffers, device buffers, and async H2D → enqueue → D2H on one
// stream, timed with CUDA events. Used by `kiln run --backend cuda` and
// `kiln bench`. Buffers grow when a larger shape arrives and are reused.
#pragma once

#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kiln/engine.h"

namespace kiln::cuda {

struct RunTiming {
  float h2d_ms = 0, compute_ms = 0, d2h_ms = 0;  // CUDA events
  double enqueue_us = 0;                        // host time inside Context::Enqueue
  double total_ms = 0;                          // host wall time of the whole run (synchronised)
};

class HostRunner : private OutputAllocator {
 public:
  static Expected<std::unique_ptr<HostRunner>> Create(std::shared_ptr<const Engine> engine);
  ~HostRunner();

  // Sets shapes from the tensors, grows buffers if needed, stages the data in
  // pinned memory. Dtypes must match the engine's inputs.
  Status SetInputs(const std::map<std::string, Tensor>& inputs);
  // One synchronous run: H2D, enqueue, D2H on the runner's stream.
  Status Run(RunTiming* timing = nullptr);
  // Per-kernel GPU times of one eager run (node label, ms).
  Expected<std::vector<std::pair<std::string, float>>> ProfileLayers() { return ctx_->ProfileLayers(stream_); }
  // Nodes after which a run syncs to read value-dependent shapes.
  std::vector<std::string> SyncPoints() const { return ctx_->SyncPoints(); }
  // Outputs of the last run (host copies).
  Expected<std::map<std::string, Tensor>> Outputs() const;

 private:
  HostRunner() = default;
  struct Buffer {
    DataType dtype = DataType::kUndefined;
    std::vector<int64_t> dims;
    size_t bytes = 0, capacity = 0;
    void* host = nullptr;    // pinned
    void* device = nullptr;
    bool shape_tensor = false;  // values also go to the context on the host
  };
  Status Grow(Buffer& b, size_t bytes);
  // Outputs whose shape depends on values grow here, during Enqueue.
  void* Reallocate(const std::string& name, void* current, size_t bytes) override;
  void NotifyShape(const std::string& name, const std::vector<int64_t>& dims) override;

  std::shared_ptr<const Engine> engine_;
  std::unique_ptr<Context> ctx_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ev_[4] = {nullptr, nullptr, nullptr, nullptr};
  std::map<std::string, Buffer> inputs_, outputs_;
  Status grow_error_;  // a failed Reallocate, reported after Enqueue
};

}  // namespace kiln::cuda
