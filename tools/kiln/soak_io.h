// A context's inputs and outputs for `kiln soak`: host memory for the CPU
// engine, device memory and a stream of its own for the CUDA engine. Buffers
// grow when a larger shape arrives and are reused otherwise, so a steady run
// allocates nothing. Outputs whose shape depends on values grow through the
// OutputAllocator interface during Enqueue.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kiln/engine.h"

namespace kiln::cli {

class SoakIo : private OutputAllocator {
 public:
  // `cuda`: device buffers and a non-blocking stream (fails without a GPU).
  static Expected<std::unique_ptr<SoakIo>> Create(bool cuda);
  ~SoakIo() override;
  SoakIo(const SoakIo&) = delete;
  SoakIo& operator=(const SoakIo&) = delete;

  // Sets `ctx`'s input shapes, copies the inputs in, sizes the outputs and
  // binds every address.
  Status Bind(Context& ctx, const std::map<std::string, Tensor>& inputs, const std::vector<TensorInfo>& outputs);
  // One Enqueue, synchronised.
  Status Run(Context& ctx);
  // The outputs of the last run, copied to `out` (reused between calls).
  Status Fetch(std::map<std::string, Tensor>* out);

 private:
  struct Buffer {
    void* ptr = nullptr;
    size_t capacity = 0;
    size_t bytes = 0;
    DataType dtype = DataType::kUndefined;
    std::vector<int64_t> dims;
  };
  explicit SoakIo(bool cuda) : cuda_(cuda) {}
  Status Grow(Buffer& b, size_t bytes);
  void Free(Buffer& b);
  void* Reallocate(const std::string& name, void* current, size_t bytes) override;
  void NotifyShape(const std::string& name, const std::vector<int64_t>& dims) override;

  bool cuda_;
  void* stream_ = nullptr;  // cudaStream_t
  std::map<std::string, Buffer> inputs_, outputs_;
  Status grow_error_;
};

// Host resident set size and, when `cuda`, device memory in use (total -
// free), in bytes.
struct MemoryUse {
  size_t host_rss = 0;
  size_t device_used = 0;
};
MemoryUse MeasureMemory(bool cuda);

}  // namespace kiln::cli
