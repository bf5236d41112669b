// MatMul and Gemm on cuBLASLt. Row-major C = A·B is computed as the
// column-major product Cᵀ = Bᵀ·Aᵀ (operands swapped), so no transposes move
// data. MatMul with 2-D weights folds A's batch dims into M (one GEMM);
// equal batch dims run strided-batched. Gemm's 1-D/row C becomes the BIAS
// epilogue; a full [M,N] C uses beta. kiln.FusedMatMul (act(A·B + bias + Z),
// made by passes/fuse_gpu.cc; GeluTanh by passes/gelu_epilogue.cc) runs as
// MatMul with the BIAS / RELU_BIAS / RELU / GELU_BIAS / GELU epilogue and its
// residual Z as C (beta 1). The algorithm is cuBLASLt's first
// heuristic choice. FP32 without TF32 unless --tf32; FP16 accumulates in FP32.
#include <cublasLt.h>

#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_op_table.h"
#include "backend/cuda/lt_gemm.h"

namespace kiln::cuda {
namespace {

// MatMul, or kiln.FusedMatMul (fused: inputs A, B, bias?, Z?; act: its epilogue's activation).
class MatMulOp final : public GpuOp {
 public:
  MatMulOp(const Node& n, bool fused, LtActivation act) : node_(n), fused_(fused), act_(act) {}
  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources& res) override {
    const auto& a = in[0].dims;
    const auto& b = in[1].dims;
    if (a.size() < 2 || b.size() < 2)
      return Unsupported(node_.Label() + ": MatMul with 1-D operands is not supported on the GPU yet");
    GemmShape s;
    s.k = a.back();
    s.n = b.back();
    int64_t a_batch = 1, b_batch = 1;
    for (size_t i = 0; i + 2 < a.size(); ++i) a_batch *= a[i];
    for (size_t i = 0; i + 2 < b.size(); ++i) b_batch *= b[i];
    if (b_batch == 1) {  // weights: fold A's batch into M
      s.m = a_batch * a[a.size() - 2];
    } else if (a_batch == b_batch && a.size() == b.size()) {
      s.m = a[a.size() - 2];
      s.batch = a_batch;
      s.stride_a = s.m * s.k;
      s.stride_b = s.k * s.n;
      s.stride_c = s.m * s.n;
    } else {
      return Unsupported(node_.Label() + ": MatMul batch broadcasting " + DimsToString(a) + " x " + DimsToString(b) +
                         " is not supported on the GPU yet");
    }
    has_bias_ = fused_ && in.size() > 2 && Present(in[2]);
    if (has_bias_) {
      // The epilogue adds one bias vector to every row of the (folded or batched) product.
      if (in[2].dims.size() != 1 || in[2].dims[0] != s.n)
        return Unsupported(node_.Label() + ": FusedMatMul bias " + DimsToString(in[2].dims) + " with " +
                           DimsToString(a) + " x " + DimsToString(b) + " is not supported on the GPU");
    }
    // Z (the residual) is cuBLASLt's C, added with beta = 1.
    has_z_ = fused_ && in.size() > 3 && Present(in[3]);
    if (has_z_ && in[3].dims != out[0].dims)
      return InvalidArgument(node_.Label() + ": FusedMatMul Z " + DimsToString(in[3].dims) +
                             " must have the product's shape " + DimsToString(out[0].dims));
    KILN_ASSIGN_OR_RETURN(cudaDataType_t dt, LtType(in[0].dtype, node_));
    return gemm_.Prepare(s, dt, res.allow_tf32, has_bias_, res, act_, node_.name).WithPrefix(node_.Label());
  }
  size_t WorkspaceBytes() const override { return kLtWorkspace; }
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void* ws, GpuResources& res,
                 cudaStream_t stream) override {
    if (out[0].numel() == 0) return Status::Ok();
    const void* bias = has_bias_ ? in[2].data : nullptr;
    const void* z = has_z_ ? in[3].data : nullptr;
    return gemm_.Run(in[0].data, in[1].data, z, bias, out[0].data, 1.f, z ? 1.f : 0.f, ws, res, stream);
  }

 private:
  const Node& node_;
  const bool fused_;
  const LtActivation act_;
  bool has_bias_ = false;
  bool has_z_ = false;
  LtGemm gemm_;
};

class GemmOp final : public GpuOp {
 public:
  explicit GemmOp(const Node& n) : node_(n) {
    auto f = [&](const char* k, float d) { const Attribute* a = n.attr(k); return a ? a->f : d; };
    auto i = [&](const char* k) { const Attribute* a = n.attr(k); return a ? a->i != 0 : false; };
    alpha_ = f("alpha", 1.f);
    beta_ = f("beta", 1.f);
    trans_a_ = i("transA");
    trans_b_ = i("transB");
  }
  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources& res) override {
    const auto& a = in[0].dims;
    const auto& b = in[1].dims;
    if (a.size() != 2 || b.size() != 2) return InvalidArgument(node_.Label() + ": Gemm needs 2-D A and B");
    GemmShape s;
    s.trans_a = trans_a_;
    s.trans_b = trans_b_;
    s.m = trans_a_ ? a[1] : a[0];
    s.k = trans_a_ ? a[0] : a[1];
    s.n = trans_b_ ? b[0] : b[1];
    mode_ = CMode::kNone;
    if (in.size() > 2 && Present(in[2]) && beta_ != 0.f) {
      const auto& c = in[2].dims;
      int64_t cn = 1;
      for (int64_t d : c) cn *= d;
      bool row = (c.size() == 1 && c[0] == s.n) || (c.size() == 2 && c[0] == 1 && c[1] == s.n);
      bool full = c.size() == 2 && c[0] == s.m && c[1] == s.n;
      if (row && beta_ == 1.f) mode_ = CMode::kBias;
      else if (full) mode_ = CMode::kFull;
      else return Unsupported(node_.Label() + ": Gemm C of shape " + DimsToString(c) + " (beta " + std::to_string(beta_) +
                              ") is not supported on the GPU yet");
      (void)cn;
    }
    KILN_ASSIGN_OR_RETURN(cudaDataType_t dt, LtType(in[0].dtype, node_));
    return gemm_.Prepare(s, dt, res.allow_tf32, mode_ == CMode::kBias, res, LtActivation::kNone, node_.name)
        .WithPrefix(node_.Label());
  }
  size_t WorkspaceBytes() const override { return kLtWorkspace; }
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void* ws, GpuResources& res,
                 cudaStream_t stream) override {
    if (out[0].numel() == 0) return Status::Ok();
    const void* c = mode_ == CMode::kFull ? in[2].data : nullptr;
    const void* bias = mode_ == CMode::kBias ? in[2].data : nullptr;
    return gemm_.Run(in[0].data, in[1].data, c, bias, out[0].data, alpha_, mode_ == CMode::kFull ? beta_ : 0.f, ws,
                     res, stream);
  }

 private:
  enum class CMode { kNone, kBias, kFull };
  const Node& node_;
  LtGemm gemm_;
  float alpha_ = 1.f, beta_ = 1.f;
  bool trans_a_ = false, trans_b_ = false;
  CMode mode_ = CMode::kNone;
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeMatMulOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(new MatMulOp(*info.node, false, LtActivation::kNone));
}

Expected<std::unique_ptr<GpuOp>> MakeFusedMatMulOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  if (n.num_inputs() < 2 || n.num_inputs() > 4 || !n.input(0) || !n.input(1))
    return InvalidArgument(n.Label() + ": FusedMatMul needs A, B and an optional bias and Z");
  const Attribute* a = n.attr("activation");
  std::string act = a ? a->s : "";
  if (act != "" && act != "Relu" && act != "GeluTanh")
    return Unsupported(n.Label() + ": activation '" + act + "' is not supported on the GPU");
  return std::unique_ptr<GpuOp>(new MatMulOp(n, true,
                                             act == "Relu"       ? LtActivation::kRelu
                                             : act == "GeluTanh" ? LtActivation::kGeluTanh
                                                                 : LtActivation::kNone));
}

Expected<std::unique_ptr<GpuOp>> MakeGemmOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(new GemmOp(*info.node));
}

}  // namespace kiln::cuda
