// A NodeContext over a GPU op's node and its concrete input tensors, so CUDA
// ops can share the CPU reference's attribute readers and planners (Resize's
// taps, ...) and raise the same errors naming node, op and shapes.
#pragma once

#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gpu_op.h"
#include "ops/op_context.h"

namespace kiln::cuda {

class GpuNodeContext final : public NodeContext {
 public:
  GpuNodeContext(const Node& node, int64_t opset, const std::vector<DevTensor>* inputs = nullptr)
      : NodeContext(node, opset), inputs_(inputs) {}

 protected:
  std::string DescribeInput(size_t i) const override {
    const Value* v = node().input(i);
    std::string name = v ? v->name() : "<omitted>";
    if (inputs_ && i < inputs_->size() && Present((*inputs_)[i]))
      return name + " " + std::string(DataTypeName((*inputs_)[i].dtype)) + DimsToString((*inputs_)[i].dims);
    return v ? name + " " + v->type.ToString() : name;
  }
  size_t input_count() const override { return node().num_inputs(); }

 private:
  const std::vector<DevTensor>* inputs_;
};

// The host value of input i: known before the run (DevTensor::host), else a
// constant of the node; nullptr when omitted or not known.
inline const Tensor* HostInput(const Node& n, const std::vector<DevTensor>& in, size_t i) {
  if (i < in.size() && in[i].host) return in[i].host;
  const Value* v = i < n.num_inputs() ? n.input(i) : nullptr;
  return v && v->data ? &*v->data : nullptr;
}

// An element type the node's kernel does not instantiate.
inline Status UnsupportedType(const Node& n, DataType dt) {
  return Unsupported(n.Label() + ": " + std::string(DataTypeName(dt)) + " on the GPU");
}

// After a launch dispatched on `dt`: the unsupported type when no kernel took
// it (`launched` false), else the launch's status.
inline Status LaunchStatus(bool launched, const Node& n, DataType dt, const char* what) {
  if (!launched) return UnsupportedType(n, dt);
  return CudaStatus(cudaGetLastError(), what);
}

}  // namespace kiln::cuda
