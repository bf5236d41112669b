// ONNX's integer products on the GPU: MatMulInteger and ConvInteger (int8/uint8
// operands, zero points, int32 output), the ops onnxruntime's
// quantize_dynamic writes after DynamicQuantizeLinear. Their zero points may be
// computed on the device (DynamicQuantizeLinear's), so the kernels read them
// from device memory. Direct int32 kernels, one thread per output element, in
// exactly the CPU reference's integer arithmetic (bit-exact): correct, not
// tensor-core fast (the static INT8 path is kiln.QMatMul/QConv, qgemm.cu).
//   MatMulInteger  A [..., M, K] (batch dims broadcast), B [K, N]; a_zero_point
//                  scalar or one per row [M], b_zero_point scalar or one per
//                  column [N].
//   ConvInteger    2-D NCHW with groups, pads, strides, dilations; x_zero_point
//                  scalar, w_zero_point scalar or one per output channel.
#include <algorithm>
#include <cstdint>
#include <string>

#include "backend/cuda/conv2d_geom.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/node_context.h"
#include "core/dtype.h"

namespace kiln::cuda {
namespace {

constexpr int kThreads = 256;

int Blocks(int64_t n) {
  return static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, 65535 * 8));
}

// An int8/uint8 operand or zero-point vector on the device.
struct Q8 {
  const void* p = nullptr;
  bool is_signed = true;
  int64_t count = 0;  // zero points: 0 absent, 1 per tensor, else one per row/column/channel
  __device__ int32_t at(int64_t i) const {
    return is_signed ? static_cast<const int8_t*>(p)[i] : static_cast<const uint8_t*>(p)[i];
  }
  __device__ int32_t zero(int64_t i) const { return count == 0 ? 0 : at(count == 1 ? 0 : i); }
};

// y[r, j] = Σ_k (a[r, k] - a_zp[r % m]) · (b[k, j] - b_zp[j]); consecutive threads take consecutive j (b's
// reads coalesce, a's are shared by the warp).
__global__ void MatMulIntegerKernel(Q8 a, Q8 b, Q8 a_zp, Q8 b_zp, int32_t* __restrict__ y, int64_t rows,
                                    int64_t m, int64_t k, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < rows * n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / n, j = i % n;
    const int32_t az = a_zp.zero(r % m), bz = b_zp.zero(j);
    int32_t s = 0;
    for (int64_t kk = 0; kk < k; ++kk) s += (a.at(r * k + kk) - az) * (b.at(kk * n + j) - bz);
    y[i] = s;
  }
}

// y [N, M, OH, OW] = conv(x - x_zp, w - w_zp[m]); padding reads x_zp (zero after the shift).
__global__ void ConvIntegerKernel(Q8 x, Q8 w, Q8 x_zp, Q8 w_zp, int32_t* __restrict__ y, Conv2d g) {
  const int64_t total = g.n * g.m * g.oh * g.ow;
  const int64_t cg = g.c / g.group, mg = g.m / g.group;
  const int32_t xz = x_zp.zero(0);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ox = i % g.ow, oy = (i / g.ow) % g.oh, m = (i / (g.ow * g.oh)) % g.m,
                  b = i / (g.ow * g.oh * g.m);
    const int64_t grp = m / mg;
    const int32_t wz = w_zp.zero(m);
    int32_t s = 0;
    for (int64_t c = 0; c < cg; ++c)
      for (int64_t ki = 0; ki < g.kh; ++ki) {
        const int64_t iy = oy * g.sh - g.ph + ki * g.dh;
        if (iy < 0 || iy >= g.h) continue;
        for (int64_t kj = 0; kj < g.kw; ++kj) {
          const int64_t ix = ox * g.sw - g.pw + kj * g.dw;
          if (ix < 0 || ix >= g.w) continue;
          s += (x.at(((b * g.c + grp * cg + c) * g.h + iy) * g.w + ix) - xz) *
               (w.at(((m * cg + c) * g.kh + ki) * g.kw + kj) - wz);
        }
      }
    y[i] = s;
  }
}

// Operand `i` of `in` (an absent optional: count 0), checked against `what`'s type `like` and allowed counts.
Status Operand(const GpuNodeContext& ctx, const std::vector<DevTensor>& in, size_t i, const char* what, Q8* q,
               DataType like = DataType::kUndefined, int64_t per = 0) {
  *q = Q8{};
  if (i >= in.size() || !Present(in[i])) return Status::Ok();
  const DevTensor& t = in[i];
  if (!IsInt8Type(t.dtype)) return ctx.Error(std::string(what) + " must be int8 or uint8");
  if (like != DataType::kUndefined && t.dtype != like)
    return ctx.Error(std::string(what) + " must have its operand's type");
  if (like != DataType::kUndefined && t.numel() != 1 && (per == 0 || t.numel() != per || t.dims.size() != 1))
    return ctx.UnsupportedError(std::string(what) + " " + DimsToString(t.dims) + ": a scalar" +
                                (per ? " or one value per " + std::to_string(per) : std::string()) +
                                " is supported on the GPU");
  *q = Q8{t.data, t.dtype == DataType::kInt8, t.numel()};
  return Status::Ok();
}

// The four operands of both ops (names: theirs), zero points checked against their operands' types with
// one value each or one per `per_a` / `per_b` (0: a scalar only).
Status Operands(const GpuNodeContext& ctx, const std::vector<DevTensor>& in, const char* const (&names)[4],
                int64_t per_a, int64_t per_b, Q8 (&q)[4]) {
  KILN_RETURN_IF_ERROR(Operand(ctx, in, 0, names[0], &q[0]));
  KILN_RETURN_IF_ERROR(Operand(ctx, in, 1, names[1], &q[1]));
  KILN_RETURN_IF_ERROR(Operand(ctx, in, 2, names[2], &q[2], in[0].dtype, per_a));
  return Operand(ctx, in, 3, names[3], &q[3], in[1].dtype, per_b);
}

constexpr const char* kMatMulNames[4] = {"A", "B", "a_zero_point", "b_zero_point"};
constexpr const char* kConvNames[4] = {"x", "w", "x_zero_point", "w_zero_point"};

class MatMulIntegerOp final : public GpuOp {
 public:
  MatMulIntegerOp(const Node& n, int64_t opset) : node_(n), opset_(opset) {}
  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out,
                 GpuResources&) override {
    GpuNodeContext ctx(node_, opset_, &in);
    const auto& a = in[0].dims;
    const auto& b = in[1].dims;
    if (a.size() < 2 || b.size() != 2 || a.back() != b[0])
      return ctx.UnsupportedError("A [..., M, K] and B [K, N] (2-D) are supported on the GPU");
    m_ = a[a.size() - 2];
    k_ = b[0];
    n_ = b[1];
    rows_ = k_ > 0 ? in[0].numel() / k_ : 0;
    if (out[0].dtype != DataType::kInt32) return ctx.Error("Y must be int32");
    Q8 q[4];
    return Operands(ctx, in, kMatMulNames, m_, n_, q);
  }
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    if (out[0].numel() == 0) return Status::Ok();
    Q8 q[4];  // this run's pointers (the arena may move them)
    KILN_RETURN_IF_ERROR(Operands(GpuNodeContext(node_, opset_, &in), in, kMatMulNames, m_, n_, q));
    MatMulIntegerKernel<<<Blocks(rows_ * n_), kThreads, 0, stream>>>(
        q[0], q[1], q[2], q[3], static_cast<int32_t*>(out[0].data), rows_, m_, k_, n_);
    KILN_CUDA_CHECK_LAUNCH("MatMulIntegerKernel");
    return Status::Ok();
  }

 private:
  const Node& node_;
  int64_t opset_;
  int64_t m_ = 1, k_ = 0, n_ = 0, rows_ = 0;
};

class ConvIntegerOp final : public GpuOp {
 public:
  ConvIntegerOp(const Node& n, int64_t opset) : node_(n), opset_(opset) {}
  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out,
                 GpuResources&) override {
    GpuNodeContext ctx(node_, opset_, &in);
    if (in[0].dims.size() != 4)
      return ctx.UnsupportedError("only 2-D convolutions (NCHW) are supported on the GPU");
    if (out[0].dtype != DataType::kInt32) return ctx.Error("y must be int32");
    KILN_RETURN_IF_ERROR(Conv2dOf(ctx, in[0], in[1], &g_));
    Q8 q[4];
    return Operands(ctx, in, kConvNames, 0, g_.m, q);
  }
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    if (out[0].numel() == 0) return Status::Ok();
    Q8 q[4];
    KILN_RETURN_IF_ERROR(Operands(GpuNodeContext(node_, opset_, &in), in, kConvNames, 0, g_.m, q));
    ConvIntegerKernel<<<Blocks(out[0].numel()), kThreads, 0, stream>>>(
        q[0], q[1], q[2], q[3], static_cast<int32_t*>(out[0].data), g_);
    KILN_CUDA_CHECK_LAUNCH("ConvIntegerKernel");
    return Status::Ok();
  }

 private:
  const Node& node_;
  int64_t opset_;
  Conv2d g_{};
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeMatMulIntegerOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(new MatMulIntegerOp(*info.node, info.opset));
}

Expected<std::unique_ptr<GpuOp>> MakeConvIntegerOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(new ConvIntegerOp(*info.node, info.opset));
}

}  // namespace kiln::cuda
