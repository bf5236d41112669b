// kiln.Attention's own kernel (see attention.h).
#include <string>

#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/epilogue.cuh"
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

// Short sequences (SmallAttentionFits: at most kSmallMaxKv keys, Q·K and V head sizes both D = 32 or 64; the
// windows of Swin and MaxViT, 49 keys of 32 dims): a block of kSmallWarps warps per (batch, head) pair stages
// that head's K and V in shared memory as float, once, and each warp then takes kSmallRows query rows at a
// time: lanes own keys lane and lane + 32 for the scores (K rows read as 16-byte vectors, each serving the
// kSmallRows rows), then value dims lane (+ 32) for P·V, the probabilities read back from shared memory four
// keys at a time. The general kernel above re-reads K and V from global memory for every query row, one
// element per load, and cuDNN's flash attention pads 49 queries and keys to its 64/128-row tiles: on
// MaxViT-T at batch 32 its attention took 2.0 of 6.1 ms (H100). FP32 scores, softmax and accumulation.
// K, V and Q rows move as 16-byte chunks when every stride and pointer allows (`vec`), and each pass's bias
// entries are loaded before its scores: the first version read them element by element, K and V in a loop of
// 13 dependent 2-byte loads a thread, and ran MaxViT-T's 49-key windows at 0.13 ms for 51 MB (b32, H100).
constexpr int kSmallMaxKv = 64;
constexpr int kSmallRows = 4;
constexpr int kSmallWarps = 4;

// kVec elements of T from `src` as floats: one 16-byte load when `vec`, else element by element.
template <class T, int kVec>
__device__ inline void LoadChunk(const T* src, bool vec, float* dst) {
  if (vec) {
    const Pack<T, kVec> p = *reinterpret_cast<const Pack<T, kVec>*>(src);
#pragma unroll
    for (int t = 0; t < kVec; ++t) dst[t] = ToFloat(p.v[t]);
  } else {
#pragma unroll
    for (int t = 0; t < kVec; ++t) dst[t] = ToFloat(src[t]);
  }
}

// kVec floats (a multiple of 4) to 16-byte aligned shared memory, times `scale`.
template <int kVec>
__device__ inline void StoreChunk(float* dst, const float* v, float scale = 1.f) {
#pragma unroll
  for (int t = 0; t < kVec; t += 4)
    *reinterpret_cast<float4*>(dst + t) =
        make_float4(v[t] * scale, v[t + 1] * scale, v[t + 2] * scale, v[t + 3] * scale);
}

template <int D>
constexpr size_t SmallAttentionSmemFloats() {
  return kSmallMaxKv * (D + 4) + kSmallMaxKv * D + kSmallWarps * kSmallRows * (D + kSmallMaxKv);
}

template <class T, int D>
__global__ void __launch_bounds__(32 * kSmallWarps)
    SmallAttentionKernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                         const T* __restrict__ bias, T* __restrict__ y, AttentionArgs a, bool vec) {
  constexpr int kPad = D + 4;  // K's row stride: 16-byte rows, conflict-free 16-byte reads by 8 lanes
  constexpr int kDims = D / 32;
  constexpr int kVec = 16 / sizeof(T);  // elements of a 16-byte chunk
  constexpr int kChunks = D / kVec;     // chunks of a row
  extern __shared__ float4 smem4[];
  float* ks = reinterpret_cast<float*>(smem4);  // [kSmallMaxKv][kPad]
  float* vs = ks + kSmallMaxKv * kPad;          // [kSmallMaxKv][D]
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* wq = vs + kSmallMaxKv * D + warp * kSmallRows * (D + kSmallMaxKv);  // this warp's rows [R][D]
  float* wp = wq + kSmallRows * D;                                           // their probabilities [R][64]
  const int64_t h = blockIdx.x % a.g.heads, b = blockIdx.x / a.g.heads;
  const int64_t kvh = h / (a.g.heads / a.g.kv_heads);  // grouped-query: AttentionShape::KvHead
  const int kv = static_cast<int>(a.g.kv_seq), rows = static_cast<int>(a.g.q_seq);
  const T* kb = k + b * a.k.b + kvh * a.k.h;
  const T* vb = v + b * a.v.b + kvh * a.v.h;
  // V's rows up to the next multiple of 4 are zeros (P·V reads four keys at a time; their p is 0).
  const int kv4 = (kv + 3) / 4 * 4;
  for (int e = threadIdx.x; e < kv4 * kChunks; e += blockDim.x) {
    const int j = e / kChunks, d = (e % kChunks) * kVec;
    float kf[kVec] = {}, vf[kVec] = {};
    if (j < kv) {
      LoadChunk<T, kVec>(kb + j * a.k.s + d, vec, kf);
      LoadChunk<T, kVec>(vb + j * a.v.s + d, vec, vf);
    }
    StoreChunk<kVec>(ks + j * kPad + d, kf);
    StoreChunk<kVec>(vs + j * D + d, vf);
  }
  __syncthreads();
  const T* qb = q + b * a.q.b + h * a.q.h;
  const T* bb = bias ? bias + b * a.bias.b + h * a.bias.h : nullptr;
  for (int r0 = warp * kSmallRows; r0 < rows; r0 += kSmallWarps * kSmallRows) {
    for (int e = lane; e < kSmallRows * kChunks; e += 32) {
      const int r = e / kChunks, d = (e % kChunks) * kVec;
      float qf[kVec] = {};
      if (r0 + r < rows) LoadChunk<T, kVec>(qb + (r0 + r) * a.q.s + d, vec, qf);
      StoreChunk<kVec>(wq + r * D + d, qf, a.scale);
    }
    // This pass's bias entries, in flight while the scores are computed.
    float bv[kSmallRows][2] = {};
    if (bb) {
#pragma unroll
      for (int r = 0; r < kSmallRows; ++r) {
        const int i = r0 + r < rows ? r0 + r : rows - 1;  // (a row past the end: computed, not written)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int j = lane + 32 * c;
          if (j < kv) bv[r][c] = ToFloat(bb[i * a.bias.q + j * a.bias.k]);
        }
      }
    }
    __syncwarp();
    float s[kSmallRows][2] = {};
#pragma unroll
    for (int d = 0; d < D; d += 4) {
      const float4 k0 = *reinterpret_cast<const float4*>(ks + lane * kPad + d);
      const float4 k1 = *reinterpret_cast<const float4*>(ks + (lane + 32) * kPad + d);
#pragma unroll
      for (int r = 0; r < kSmallRows; ++r) {
        const float4 qv = *reinterpret_cast<const float4*>(wq + r * D + d);
        s[r][0] += qv.x * k0.x + qv.y * k0.y + qv.z * k0.z + qv.w * k0.w;
        s[r][1] += qv.x * k1.x + qv.y * k1.y + qv.z * k1.z + qv.w * k1.w;
      }
    }
    float l[kSmallRows];
#pragma unroll
    for (int r = 0; r < kSmallRows; ++r) {
      float p[2];
      for (int c = 0; c < 2; ++c) p[c] = lane + 32 * c < kv ? s[r][c] + bv[r][c] : -INFINITY;
      const float m = WarpMax(fmaxf(p[0], p[1]));
      for (int c = 0; c < 2; ++c) p[c] = p[c] == -INFINITY ? 0.f : Exp(p[c] - m);
      l[r] = WarpSum(p[0] + p[1]);
      wp[r * kSmallMaxKv + lane] = p[0];
      wp[r * kSmallMaxKv + lane + 32] = p[1];
    }
    __syncwarp();
    float acc[kSmallRows][kDims] = {};
    for (int j = 0; j < kv4; j += 4) {
      float vv[4][kDims];
#pragma unroll
      for (int t = 0; t < 4; ++t)
#pragma unroll
        for (int c = 0; c < kDims; ++c) vv[t][c] = vs[(j + t) * D + lane + 32 * c];
#pragma unroll
      for (int r = 0; r < kSmallRows; ++r) {
        const float4 pv = *reinterpret_cast<const float4*>(wp + r * kSmallMaxKv + j);
#pragma unroll
        for (int c = 0; c < kDims; ++c)
          acc[r][c] += pv.x * vv[0][c] + pv.y * vv[1][c] + pv.z * vv[2][c] + pv.w * vv[3][c];
      }
    }
#pragma unroll
    for (int r = 0; r < kSmallRows; ++r) {
      if (r0 + r >= rows) break;
      T* yi = y + b * a.y.b + h * a.y.h + (r0 + r) * a.y.s;
      // No keys: zeros; all keys -inf: l == 0 gives NaN, as the kernel above and Softmax do.
#pragma unroll
      for (int c = 0; c < kDims; ++c) yi[lane + 32 * c] = FromFloat<T>(kv == 0 ? 0.f : acc[r][c] / l[r]);
    }
    __syncwarp();  // before the next rows overwrite wq and wp
  }
}

template <class T, int D>
Status LaunchSmall(const AttentionArgs& a, const void* q, const void* k, const void* v, const void* bias,
                   void* y, cudaStream_t stream) {
  const int64_t blocks = a.g.batch * a.g.heads;
  if (blocks == 0 || a.g.q_seq == 0) return Status::Ok();
  if (blocks > 0x7fffffffLL) return Unsupported("attention: too many heads for one launch");
  // 16-byte chunks when every row start of Q, K and V is 16-byte aligned.
  constexpr int64_t kVec = 16 / static_cast<int64_t>(sizeof(T));
  bool vec = Aligned16(q) && Aligned16(k) && Aligned16(v);
  for (const AttentionStrides* st : {&a.q, &a.k, &a.v})
    vec = vec && st->b % kVec == 0 && st->h % kVec == 0 && st->s % kVec == 0;
  SmallAttentionKernel<T, D>
      <<<static_cast<unsigned>(blocks), 32 * kSmallWarps, SmallAttentionSmemFloats<D>() * sizeof(float),
         stream>>>(static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v),
                   static_cast<const T*>(bias), static_cast<T*>(y), a, vec);
  KILN_CUDA_CHECK_LAUNCH("small attention kernel");
  return Status::Ok();
}

template <class T>
Status LaunchSmallOf(const AttentionArgs& a, const void* q, const void* k, const void* v, const void* bias,
                     void* y, cudaStream_t stream) {
  return a.g.head_dim == 32 ? LaunchSmall<T, 32>(a, q, k, v, bias, y, stream)
                            : LaunchSmall<T, 64>(a, q, k, v, bias, y, stream);
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

bool SmallAttentionFits(DataType dt, const AttentionArgs& a) {
  const bool type = dt == DataType::kFloat || dt == DataType::kFloat16 || dt == DataType::kBFloat16;
  return type && a.g.kv_seq <= kSmallMaxKv && a.g.head_dim == a.g.v_head_dim &&
         (a.g.head_dim == 32 || a.g.head_dim == 64) && a.g.kv_heads > 0 && a.g.heads % a.g.kv_heads == 0 &&
         a.g.q_seq < (1 << 30);
}

Status LaunchSmallAttention(DataType dt, const AttentionArgs& a, const void* q, const void* k, const void* v,
                            const void* bias, void* y, cudaStream_t stream) {
  if (!SmallAttentionFits(dt, a))
    return Internal("attention: the short-sequence kernel does not fit this geometry");
  switch (dt) {
    case DataType::kFloat:
      return LaunchSmallOf<float>(a, q, k, v, bias, y, stream);
    case DataType::kFloat16:
      return LaunchSmallOf<__half>(a, q, k, v, bias, y, stream);
    default:
      return LaunchSmallOf<__nv_bfloat16>(a, q, k, v, bias, y, stream);
  }
}

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
