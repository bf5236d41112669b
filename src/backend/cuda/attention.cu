// kiln.Attention's own kernel (see attention.h).
#include "backend/cuda/attention.h"

#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernel_util.cuh"

namespace kiln::cuda {
namespace {

constexpr int kRowsPerBlock = 4;  // warps per block, one query row each
constexpr unsigned kFullMask = 0xffffffffu;

// One warp per query row: lanes own keys for Q·K (chunks of 32 keys), then
// value dims (lane + 32·c) for P·V; running max m and sum l (online softmax).
template <class T, int kC>
__global__ void AttentionKernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                                const T* __restrict__ bias, T* __restrict__ y, AttentionArgs a,
                                int64_t row_blocks) {
  using Cv = Compute<T>;
  using C = typename Cv::type;
  extern __shared__ unsigned char smem_raw[];
  C* sq = reinterpret_cast<C*>(smem_raw) + threadIdx.y * a.g.head_dim;
  const int lane = threadIdx.x;
  int64_t blk = blockIdx.x;
  const int64_t i = (blk % row_blocks) * kRowsPerBlock + threadIdx.y;
  blk /= row_blocks;
  const int64_t h = blk % a.g.heads, b = blk / a.g.heads;
  if (i >= a.g.q_seq) return;  // whole warps only: no block-wide barrier below
  const T* qi = q + b * a.q.b + h * a.q.h + i * a.q.s;
  for (int64_t d = lane; d < a.g.head_dim; d += 32) sq[d] = Cv::From(qi[d]) * static_cast<C>(a.scale);
  __syncwarp();
  const int64_t kvh = h / (a.g.heads / a.g.kv_heads);  // grouped-query: AttentionShape::KvHead
  const T* kb = k + b * a.k.b + kvh * a.k.h;
  const T* vb = v + b * a.v.b + kvh * a.v.h;
  const T* bb = bias ? bias + b * a.bias.b + h * a.bias.h + i * a.bias.q : nullptr;
  const C kNegInf = -static_cast<C>(INFINITY);
  C m = kNegInf, l = 0;
  C acc[kC];
#pragma unroll
  for (int c = 0; c < kC; ++c) acc[c] = 0;
  for (int64_t j0 = 0; j0 < a.g.kv_seq; j0 += 32) {
    const int64_t j = j0 + lane;
    C s = kNegInf;
    if (j < a.g.kv_seq) {
      const T* kj = kb + j * a.k.s;
      C dot = 0;
      for (int64_t d = 0; d < a.g.head_dim; ++d) dot += sq[d] * Cv::From(kj[d]);
      s = dot;
      if (bb) s += Cv::From(bb[j * a.bias.k]);
    }
    const C mn = max(m, WarpMax(s));
    const C alpha = mn == kNegInf ? C(1) : Exp(m - mn);
    const C p = s == kNegInf ? C(0) : Exp(s - mn);
    l = l * alpha + WarpSum(p);
#pragma unroll
    for (int c = 0; c < kC; ++c) acc[c] *= alpha;
    const int n = a.g.kv_seq - j0 < 32 ? static_cast<int>(a.g.kv_seq - j0) : 32;
    for (int t = 0; t < n; ++t) {
      const C pt = __shfl_sync(kFullMask, p, t);
      const T* vj = vb + (j0 + t) * a.v.s;
#pragma unroll
      for (int c = 0; c < kC; ++c) {
        const int64_t d = lane + 32 * c;
        if (d < a.g.v_head_dim) acc[c] += pt * Cv::From(vj[d]);
      }
    }
    m = mn;
  }
  T* yi = y + b * a.y.b + h * a.y.h + i * a.y.s;
#pragma unroll
  for (int c = 0; c < kC; ++c) {
    const int64_t d = lane + 32 * c;
    // No keys: zeros (an empty product); all keys -inf: l == 0 gives NaN, as Softmax does.
    if (d < a.g.v_head_dim) yi[d] = Cv::To(a.g.kv_seq == 0 ? C(0) : acc[c] / l);
  }
}

template <class T>
Status Launch(const AttentionArgs& a, const void* q, const void* k, const void* v, const void* bias, void* y,
              cudaStream_t stream) {
  const int64_t row_blocks = (a.g.q_seq + kRowsPerBlock - 1) / kRowsPerBlock;
  const int64_t blocks = row_blocks * a.g.heads * a.g.batch;
  if (blocks == 0 || a.g.v_head_dim == 0) return Status::Ok();
  if (blocks > 0x7fffffffLL) return Unsupported("attention: too many query rows for one launch");
  using C = typename Compute<T>::type;
  const size_t smem = sizeof(C) * kRowsPerBlock * static_cast<size_t>(a.g.head_dim);
  const dim3 block(32, kRowsPerBlock);
  auto args = [&](auto kernel) {
    kernel<<<static_cast<unsigned>(blocks), block, smem, stream>>>(
        static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v),
        static_cast<const T*>(bias), static_cast<T*>(y), a, row_blocks);
  };
  const int64_t dv = a.g.v_head_dim;
  if (dv <= 32)
    args(AttentionKernel<T, 1>);
  else if (dv <= 64)
    args(AttentionKernel<T, 2>);
  else if (dv <= 128)
    args(AttentionKernel<T, 4>);
  else
    args(AttentionKernel<T, 8>);
  KILN_CUDA_CHECK_LAUNCH("attention kernel");
  return Status::Ok();
}

}  // namespace

Status LaunchAttention(DataType dt, const AttentionArgs& a, const void* q, const void* k, const void* v,
                       const void* bias, void* y, cudaStream_t stream) {
  if (a.g.head_dim > kAttentionKernelMaxHeadDim || a.g.v_head_dim > kAttentionKernelMaxHeadDim)
    return Unsupported("attention: head sizes above " + std::to_string(kAttentionKernelMaxHeadDim) +
                       " are not supported on the GPU");
  switch (dt) {
    case DataType::kFloat: return Launch<float>(a, q, k, v, bias, y, stream);
    case DataType::kDouble: return Launch<double>(a, q, k, v, bias, y, stream);
    case DataType::kFloat16: return Launch<__half>(a, q, k, v, bias, y, stream);
    case DataType::kBFloat16: return Launch<__nv_bfloat16>(a, q, k, v, bias, y, stream);
    default: return Unsupported("attention: type " + std::string(DataTypeName(dt)) + " is not supported on the GPU");
  }
}

}  // namespace kiln::cuda
