// Einsum, every form the CPU reference takes (ops/einsum_plan.h plans both):
// one thread per output element walks the summed labels in the reference's
// loop order and accumulates the product of the operands (float for the float
// types, double for double). Correct for batched products, transposes,
// diagonals, reductions and broadcasting alike; lowering the two-operand
// GEMM-shaped forms to cuBLASLt is the later optimisation.
#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/node_context.h"
#include "ops/einsum_plan.h"

namespace kiln::cuda {
namespace {

constexpr int kEinsumOperands = 4, kEinsumLabels = 16;

struct EinsumArgs {
  int operands = 0, n_out = 0, n_loop = 0;
  int64_t inner_count = 1;
  int64_t loop_dims[kEinsumLabels];
  int64_t strides[kEinsumOperands][kEinsumLabels];
  const void* in[kEinsumOperands];
};

template <class T>
__global__ void EinsumKernel(T* __restrict__ y, int64_t out_count, EinsumArgs a) {
  using C = decltype(ToCompute(T{}));
  for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; o < out_count;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t base[kEinsumOperands] = {};
    int64_t r = o;
    for (int d = a.n_out - 1; d >= 0; --d) {
      const int64_t c = r % a.loop_dims[d];
      r /= a.loop_dims[d];
      for (int k = 0; k < a.operands; ++k) base[k] += c * a.strides[k][d];
    }
    C acc = C(0);
    for (int64_t j = 0; j < a.inner_count; ++j) {
      int64_t off[kEinsumOperands];
      for (int k = 0; k < a.operands; ++k) off[k] = base[k];
      int64_t s = j;
      for (int d = a.n_loop - 1; d >= a.n_out; --d) {
        const int64_t c = s % a.loop_dims[d];
        s /= a.loop_dims[d];
        for (int k = 0; k < a.operands; ++k) off[k] += c * a.strides[k][d];
      }
      C p = C(1);
      for (int k = 0; k < a.operands; ++k) p *= ToCompute(static_cast<const T*>(a.in[k])[off[k]]);
      acc += p;
    }
    y[o] = FromCompute<T>(acc);
  }
}

class EinsumOp final : public GpuOp {
 public:
  EinsumOp(const Node& n, int64_t opset) : node_(n), opset_(opset) {}

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>&, GpuResources&) override {
    GpuNodeContext ctx(node_, opset_, &in);
    std::vector<std::vector<int64_t>> dims;
    for (const DevTensor& t : in) {
      if (t.dtype != in[0].dtype) return ctx.Error("inputs have different element types");
      dims.push_back(t.dims);
    }
    ops::EinsumPlan plan;
    KILN_RETURN_IF_ERROR(ops::PlanEinsum(ctx, dims, &plan));
    if (in.size() > static_cast<size_t>(kEinsumOperands) || plan.order.size() > static_cast<size_t>(kEinsumLabels))
      return ctx.UnsupportedError("more than 4 operands or 16 labels on the GPU");
    a_ = EinsumArgs{};
    a_.operands = static_cast<int>(in.size());
    a_.n_out = static_cast<int>(plan.n_out);
    a_.n_loop = static_cast<int>(plan.order.size());
    a_.inner_count = plan.inner_count;
    std::copy(plan.loop_dims.begin(), plan.loop_dims.end(), a_.loop_dims);
    for (size_t k = 0; k < in.size(); ++k) std::copy(plan.strides[k].begin(), plan.strides[k].end(), a_.strides[k]);
    return Status::Ok();
  }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    const int64_t n = out[0].numel();
    if (n == 0) return Status::Ok();
    EinsumArgs a = a_;
    for (size_t k = 0; k < in.size(); ++k) a.in[k] = in[k].data;
    auto launch = [&](auto tag) {
      using T = decltype(tag);
      EinsumKernel<T><<<GridFor(n, 256), 256, 0, stream>>>(static_cast<T*>(out[0].data), n, a);
    };
    const bool ok = in[0].dtype == DataType::kDouble ? (launch(double{}), true) : DispatchFloatDevice(in[0].dtype, launch);
    return LaunchStatus(ok, node_, in[0].dtype, "einsum kernel");
  }

 private:
  const Node& node_;
  int64_t opset_;
  EinsumArgs a_;
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeEinsumOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(std::make_unique<EinsumOp>(*info.node, info.opset));
}

}  // namespace kiln::cuda
