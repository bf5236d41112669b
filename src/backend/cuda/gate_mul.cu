// kiln.GateMulNhwc on the GPU (src/ops/kiln_gate_mul.cc): Y[n, p, c] = X[n, p, c] · g[n, c] with the
// squeeze-and-excitation gate g[n, c] = act(Σ_r W[c, r] · H[n, r] + B[c]) computed in the same kernel. A
// block owns one image's slice of channels and a chunk of its pixels: its warps first compute the slice's
// gates (a warp per channel, lanes over r, FP32; each gate rounded to the storage type, as the
// convolution's output was), then its threads scale the chunk's pixels, 16-byte vectors of channels. The gate
// is recomputed by every pixel chunk of a slice, so slices shrink before chunks do when the grid needs more
// blocks. One launch where the pair took two: the gates were a kernel of their own on a 1x1 map.
#include <algorithm>
#include <memory>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/epilogue.cuh"
#include "backend/cuda/gpu_op.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/launch.h"
#include "backend/cuda/node_context.h"

namespace kiln::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kVectorsPerThread = 8;  // a block's chunk: at most this many 16-byte vectors a thread

struct Geometry {
  int pixels = 0, c = 0, r = 0;
  int slice = 0;  // channels of a block (a multiple of the vector)
  int chunk = 0;  // pixels of a block
};

template <class T, int VEC>
__global__ void __launch_bounds__(kThreads)
    GateMulKernel(const T* __restrict__ x, const T* __restrict__ h, const T* __restrict__ w,
                  const T* __restrict__ bias, T* __restrict__ y, Geometry g, ActivationSpec act) {
  WaitForPriorKernels();
  extern __shared__ float gates[];  // [slice]
  const int n = blockIdx.z, c_base = blockIdx.y * g.slice;
  const int width = min(g.slice, g.c - c_base);
  const int lane = threadIdx.x % 32;
  const T* hn = h + static_cast<int64_t>(n) * g.r;
  for (int j = threadIdx.x / 32; j < width; j += kThreads / 32) {
    const T* wc = w + static_cast<int64_t>(c_base + j) * g.r;
    float s = 0.f;
    for (int k = lane; k < g.r; k += 32) s += ToFloat(wc[k]) * ToFloat(hn[k]);
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) s += __shfl_xor_sync(0xffffffffu, s, offset);
    if (lane == 0) {
      if (bias) s += ToFloat(bias[c_base + j]);
      gates[j] = ToFloat(FromFloat<T>(Activate(act, s)));
    }
  }
  __syncthreads();
  const int vectors = width / VEC;
  const int p0 = blockIdx.x * g.chunk, count = min(g.pixels - p0, g.chunk);
  const int64_t base = (static_cast<int64_t>(n) * g.pixels + p0) * g.c + c_base;
  for (int i = threadIdx.x; i < count * vectors; i += kThreads) {
    const int p = i / vectors, v = i - p * vectors;
    const int64_t at = base + static_cast<int64_t>(p) * g.c + v * VEC;
    const Pack<T, VEC> in = *reinterpret_cast<const Pack<T, VEC>*>(x + at);
    Pack<T, VEC> out;
#pragma unroll
    for (int k = 0; k < VEC; ++k) out.v[k] = FromFloat<T>(ToFloat(in.v[k]) * gates[v * VEC + k]);
    *reinterpret_cast<Pack<T, VEC>*>(y + at) = out;
  }
}

class GateMulOp final : public GpuOp {
 public:
  GateMulOp(const Node& n, int64_t opset, ActivationSpec act) : node_(n), opset_(opset), act_(act) {}

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out,
                 GpuResources& res) override {
    GpuNodeContext ctx(node_, opset_, &in);
    const auto& xd = in[0].dims;
    const auto& hd = in[1].dims;
    const auto& wd = in[2].dims;
    if (xd.size() != 4 || hd.size() != 4 || wd.size() != 4 || hd[0] != xd[0] || hd[1] != 1 || hd[2] != 1 ||
        wd[0] != xd[3] || wd[1] != 1 || wd[2] != 1 || wd[3] != hd[3] || out[0].dims != xd)
      return ctx.Error("wants X [N,H,W,C], H [N,1,1,R], W [C,1,1,R] and Y of X's dims");
    const bool has_bias = in.size() > 3 && Present(in[3]);
    if (has_bias && in[3].dims != std::vector<int64_t>{xd[3]}) return ctx.Error("B must be [C]");
    dt_ = in[0].dtype;
    for (size_t i = 1; i < in.size(); ++i)
      if (Present(in[i]) && in[i].dtype != dt_) return ctx.Error("X, H, W and B must be of one type");
    if (out[0].dtype != dt_) return ctx.Error("Y must be of X's type");
    if (dt_ != DataType::kFloat && dt_ != DataType::kFloat16 && dt_ != DataType::kBFloat16)
      return UnsupportedType(node_, dt_);
    n_ = xd[0];
    const int64_t pixels = xd[1] * xd[2], c = xd[3], r = hd[3];
    if (n_ * pixels * c >= (int64_t{1} << 31) || n_ >= 65536 || r * c >= (int64_t{1} << 31))
      return ctx.UnsupportedError("tensors of 2^31 elements or more, or 65536 images or more");
    g_.pixels = static_cast<int>(pixels), g_.c = static_cast<int>(c), g_.r = static_cast<int>(r);
    sms_ = res.sm_count > 0 ? res.sm_count : 132;
    return Status::Ok();
  }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    if (n_ == 0 || g_.pixels == 0 || g_.c == 0) return Status::Ok();
    const void* b = in.size() > 3 && Present(in[3]) ? in[3].data : nullptr;
    bool launched = false;
    switch (dt_) {
      case DataType::kFloat:
        launched = Launch<float>(in[0].data, in[1].data, in[2].data, b, out[0].data, stream);
        break;
      case DataType::kFloat16:
        launched = Launch<__half>(in[0].data, in[1].data, in[2].data, b, out[0].data, stream);
        break;
      case DataType::kBFloat16:
        launched = Launch<__nv_bfloat16>(in[0].data, in[1].data, in[2].data, b, out[0].data, stream);
        break;
      default:
        break;
    }
    return LaunchStatus(launched, node_, dt_, "GateMulKernel");
  }

 private:
  // The 16-byte kernel where C and the pointers allow it, else scalars.
  template <class T>
  bool Launch(const void* x, const void* h, const void* w, const void* b, void* y, cudaStream_t stream) {
    constexpr int kWide = 16 / sizeof(T);
    const auto* xt = static_cast<const T*>(x);
    const auto* ht = static_cast<const T*>(h);
    const auto* wt = static_cast<const T*>(w);
    const auto* bt = static_cast<const T*>(b);
    auto* yt = static_cast<T*>(y);
    if (g_.c % kWide == 0 && Aligned16(x) && Aligned16(y))
      LaunchVec<T, kWide>(xt, ht, wt, bt, yt, stream);
    else
      LaunchVec<T, 1>(xt, ht, wt, bt, yt, stream);
    return true;
  }

  // Slices of 8 vectors (128 bytes of a pixel), halved (down to one vector) while the grid has fewer than two
  // blocks per SM; then the pixels split into chunks, each a thread's kVectorsPerThread vectors at most.
  template <class T, int VEC>
  void LaunchVec(const T* x, const T* h, const T* w, const T* b, T* y, cudaStream_t stream) {
    Geometry g = g_;
    const int64_t want = 2 * static_cast<int64_t>(sms_);
    g.slice = std::min(g.c, 8 * VEC);
    auto slices = [&] { return (g.c + g.slice - 1) / g.slice; };
    while (g.slice > VEC && n_ * slices() < want) g.slice = std::max(VEC, g.slice / 2 / VEC * VEC);
    g.chunk = std::max(1, kVectorsPerThread * kThreads / (g.slice / VEC));
    if (n_ * slices() < want) {
      const int64_t split = (want + n_ * slices() - 1) / (n_ * slices());
      g.chunk =
          static_cast<int>(std::min<int64_t>(g.chunk, std::max<int64_t>(32, (g.pixels + split - 1) / split)));
    }
    g.chunk = std::min(g.chunk, g.pixels);
    const dim3 grid(static_cast<unsigned>((g.pixels + g.chunk - 1) / g.chunk),
                    static_cast<unsigned>(slices()), static_cast<unsigned>(n_));
    LaunchKernel(GateMulKernel<T, VEC>, grid, kThreads, static_cast<size_t>(g.slice) * sizeof(float), stream,
                 x, h, w, b, y, g, act_);
  }

  const Node& node_;
  const int64_t opset_;
  const ActivationSpec act_;
  DataType dt_ = DataType::kFloat;
  int64_t n_ = 0;
  Geometry g_;
  int sms_ = 132;
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeGateMulNhwcOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  if (n.num_inputs() < 3 || n.num_inputs() > 4 || !n.input(0) || !n.input(1) || !n.input(2))
    return InvalidArgument(n.Label() + ": GateMulNhwc needs X, H, W and an optional B");
  KILN_ASSIGN_OR_RETURN(ActivationSpec act, ReadFusedActivation(n));
  return std::unique_ptr<GpuOp>(new GateMulOp(n, info.opset, act));
}

}  // namespace kiln::cuda
