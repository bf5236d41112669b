// Variadic Sum, Mean, Max, Min with numpy broadcasting over every input (two-
// input Max/Min take the vectorised binary kernel in elementwise.cu). One
// thread per output element folds up to kFoldInputs inputs in order, as the
// reference does: 16-bit floats round after every step, integers wrap, Max/Min
// propagate NaN, Mean divides once at the end. More inputs chain launches that
// fold the output so far with the next inputs.
#include <algorithm>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/node_context.h"
#include "ops/op_util.h"

namespace kiln::cuda {
namespace {

constexpr int kFoldInputs = 8;

enum class Fold { kMax, kMin, kSum, kMean };

struct FoldArgs {
  int rank = 0, count = 0;
  int64_t out_strides[kMaxRank];
  int64_t in_strides[kFoldInputs][kMaxRank];  // 0 on broadcast dims
  const void* in[kFoldInputs];
};

template <class C>
__device__ inline C Combine(Fold op, C acc, C x) {
  if (op == Fold::kMax || op == Fold::kMin) {
    if (IsNan(acc) || IsNan(x)) return IsNan(acc) ? acc : x;
    return (op == Fold::kMax ? x > acc : x < acc) ? x : acc;
  }
  if constexpr (std::is_integral<C>::value) {
    using U = std::make_unsigned_t<C>;
    return static_cast<C>(static_cast<U>(static_cast<U>(acc) + static_cast<U>(x)));
  } else {
    return acc + x;
  }
}

// divisor > 0: divide the folded value once (Mean's last launch).
template <class T>
__global__ void FoldKernel(T* y, int64_t n, FoldArgs a, Fold op, int divisor) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t off[kFoldInputs] = {};
    int64_t r = i;
    for (int d = 0; d < a.rank; ++d) {
      const int64_t q = r / a.out_strides[d];
      r -= q * a.out_strides[d];
      for (int k = 0; k < a.count; ++k) off[k] += q * a.in_strides[k][d];
    }
    auto acc = ToCompute(static_cast<const T*>(a.in[0])[off[0]]);
    for (int k = 1; k < a.count; ++k)
      acc = ToCompute(FromCompute<T>(Combine(op, acc, ToCompute(static_cast<const T*>(a.in[k])[off[k]]))));
    if (divisor > 0) acc = acc / static_cast<decltype(acc)>(divisor);
    y[i] = FromCompute<T>(acc);
  }
}

class FoldOp final : public GpuOp {
 public:
  FoldOp(const Node& n, int64_t opset, Fold op) : node_(n), opset_(opset), op_(op) {}

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources&) override {
    GpuNodeContext ctx(node_, opset_, &in);
    if (out[0].dims.size() > static_cast<size_t>(kMaxRank)) return ctx.UnsupportedError("rank over 8 on the GPU");
    if (in.empty()) return ctx.Error("expects at least one input");
    strides_.clear();
    for (const DevTensor& t : in) {
      if (!Present(t)) return ctx.Error("every input must be given");
      if (t.dtype != in[0].dtype) return ctx.Error("every input must have the same element type");
      strides_.push_back(BroadcastStrides(t.dims, out[0].dims));
    }
    out_strides_ = Strides(out[0].dims);
    return Status::Ok();
  }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    const int64_t n = out[0].numel();
    if (n == 0) return Status::Ok();
    FoldArgs a{};
    a.rank = static_cast<int>(out_strides_.size());
    std::copy(out_strides_.begin(), out_strides_.end(), a.out_strides);
    bool ok = true;
    // Launch l folds inputs [next, next + count) into the output, after the output so far (l > 0).
    for (size_t next = 0; next < in.size() && ok;) {
      a.count = 0;
      if (next > 0) {
        std::copy(out_strides_.begin(), out_strides_.end(), a.in_strides[0]);
        a.in[a.count++] = out[0].data;
      }
      for (; next < in.size() && a.count < kFoldInputs; ++next) {
        std::copy(strides_[next].begin(), strides_[next].end(), a.in_strides[a.count]);
        a.in[a.count++] = in[next].data;
      }
      const int divisor = op_ == Fold::kMean && next == in.size() ? static_cast<int>(in.size()) : 0;
      ok = DispatchDevice(out[0].dtype, [&](auto tag) {
        using T = decltype(tag);
        if constexpr (!std::is_same<T, bool>::value)
          FoldKernel<T><<<GridFor(n, 256), 256, 0, stream>>>(static_cast<T*>(out[0].data), n, a, op_, divisor);
      });
    }
    if (!ok || out[0].dtype == DataType::kBool)
      return UnsupportedType(node_, out[0].dtype);
    return CudaStatus(cudaGetLastError(), "fold kernel");
  }

 private:
  const Node& node_;
  int64_t opset_;
  Fold op_;
  std::vector<std::vector<int64_t>> strides_;
  std::vector<int64_t> out_strides_;
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeFoldOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  const Fold op = n.op_type == "Max" ? Fold::kMax : n.op_type == "Min" ? Fold::kMin : n.op_type == "Sum" ? Fold::kSum
                                                                                                         : Fold::kMean;
  return std::unique_ptr<GpuOp>(std::make_unique<FoldOp>(n, info.opset, op));
}

}  // namespace kiln::cuda
