// ONNX Attention (opset 23+) on the GPU: the standard op the exporters emit
// (semantics: src/ops/linalg_attention.cc, the CPU reference). kiln.Attention
// (attention.cu) is what fuse_attention makes of MatMul/Softmax chains and has
// no heads grouping, masks or caches; this kernel follows its scheme (one warp
// per query row, keys in chunks of 32, online softmax, FP32 scores and
// accumulation) and adds what the standard op carries:
//   - 3-D inputs [B, S, H*D] (q_num_heads / kv_num_heads) or 4-D [B, H, S, D];
//   - grouped-query attention (Hq a multiple of Hkv; query head h reads K/V
//     head h / (Hq / Hkv));
//   - attn_mask bool (false = -inf) or additive of Q's type, broadcast
//     right-aligned to [B, Hq, Sq, L]; a mask shorter than L masks the rest;
//   - is_causal, left/right_window_size, nonpad_kv_seqlen (read on the
//     device), with the offset of a KV cache;
//   - past_key/past_value: present_key/present_value are written first (to
//     the outputs, or the workspace when the graph does not use them) and the
//     attention reads the concatenation;
//   - scale (default 1/sqrt(D)), softcap (tanh(s/c)·c before the mask);
//   - qk_matmul_output in every mode (0/1 raw scores, 2 with the mask,
//     3 the softmax: a second pass over the keys).
// A fully masked row gives zeros, as the reference. softmax_precision is
// accepted: the kernel's softmax is FP32 (FP64 for double inputs) whatever it
// asks, at least as precise as every precision it names but double.
// Head sizes up to 256 (the factory refuses larger ones when they are known
// at build time, Prepare when they appear at run time).
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/node_context.h"

namespace kiln::cuda {
namespace {

constexpr int kRows = 4;  // warps per block, one query row each
constexpr unsigned kFull = 0xffffffffu;
constexpr int64_t kMaxHead = 256;

__device__ inline float TanhC(float v) { return tanhf(v); }
__device__ inline double TanhC(double v) { return tanh(v); }

struct Strides3 {
  int64_t b = 0, h = 0, s = 0;
};

struct OnnxAttnArgs {
  int64_t batch = 0, q_heads = 0, group = 1, q_seq = 0, kv_len = 0, head = 0, v_head = 0, past = 0;
  Strides3 q, k, v, y;
  int mask_kind = 0;  // 0 none, 1 bool, 2 additive (Q's type)
  int64_t mb = 0, mh = 0, mq = 0, mk = 0, mask_len = 0;
  bool causal = false, nonpad = false;
  int64_t left = -1, right = -1;
  double scale = 1.0, softcap = 0.0;
  int mode = 0;  // qk_matmul_output_mode
};

// Mask, causal/window and padding bias of one (b, h, i, j): 0 or -inf, or the
// additive mask's value.
template <class T, class C>
__device__ inline C BiasAt(const OnnxAttnArgs& a, const void* mask, const int64_t* nonpad, int64_t b, int64_t h,
                           int64_t i, int64_t j) {
  const C ninf = -static_cast<C>(INFINITY);
  const int64_t offset = a.past > 0 ? a.past : (a.nonpad ? nonpad[b] - a.q_seq : 0);
  C bias = 0;
  if (a.mask_kind != 0) {
    if (j >= a.mask_len) {
      bias = ninf;
    } else {
      const int64_t at = b * a.mb + h * a.mh + i * a.mq + j * a.mk;
      if (a.mask_kind == 1) bias = static_cast<const bool*>(mask)[at] ? C(0) : ninf;
      else bias = Compute<T>::From(static_cast<const T*>(mask)[at]);
    }
  }
  if (a.causal && j > i + offset) bias = ninf;
  if (a.left >= 0 || a.right >= 0) {
    const int64_t diff = i + offset - j;
    if ((a.left >= 0 && diff > a.left) || (a.right >= 0 && -diff > a.right)) bias = ninf;
  }
  if (a.nonpad && j >= nonpad[b]) bias = ninf;
  return bias;
}

template <class T, int kC>
__global__ void OnnxAttentionKernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                                    const void* __restrict__ mask, const int64_t* __restrict__ nonpad,
                                    T* __restrict__ y, T* __restrict__ qk, OnnxAttnArgs a, int64_t row_blocks) {
  using Cv = Compute<T>;
  using C = typename Cv::type;
  extern __shared__ unsigned char smem_raw[];
  C* sq = reinterpret_cast<C*>(smem_raw) + threadIdx.y * a.head;
  const int lane = threadIdx.x;
  int64_t blk = blockIdx.x;
  const int64_t i = (blk % row_blocks) * kRows + threadIdx.y;
  blk /= row_blocks;
  const int64_t h = blk % a.q_heads, b = blk / a.q_heads;
  if (i >= a.q_seq) return;  // whole warps only: no block-wide barrier below
  const int64_t hk = h / a.group;
  const T* qi = q + b * a.q.b + h * a.q.h + i * a.q.s;
  for (int64_t d = lane; d < a.head; d += 32) sq[d] = Cv::From(qi[d]);
  __syncwarp();
  const T* kb = k + b * a.k.b + hk * a.k.h;
  const T* vb = v + b * a.v.b + hk * a.v.h;
  T* qk_row = qk ? qk + ((b * a.q_heads + h) * a.q_seq + i) * a.kv_len : nullptr;
  const C ninf = -static_cast<C>(INFINITY);
  const C scale = static_cast<C>(a.scale), cap = static_cast<C>(a.softcap);
  // Score (with the bias) of key j; *raw gets it before the bias.
  auto score = [&](int64_t j, C* raw) {
    const T* kj = kb + j * a.k.s;
    C dot = 0;
    for (int64_t d = 0; d < a.head; ++d) dot += sq[d] * Cv::From(kj[d]);
    C s = dot * scale;
    if (cap > C(0)) s = TanhC(s / cap) * cap;
    *raw = s;
    return s + BiasAt<T, C>(a, mask, nonpad, b, h, i, j);
  };
  C m = ninf, l = 0;
  C acc[kC];
#pragma unroll
  for (int c = 0; c < kC; ++c) acc[c] = 0;
  for (int64_t j0 = 0; j0 < a.kv_len; j0 += 32) {
    const int64_t j = j0 + lane;
    C s = ninf;
    if (j < a.kv_len) {
      C raw;
      s = score(j, &raw);
      if (qk_row && a.mode <= 2) qk_row[j] = Cv::To(a.mode == 2 ? s : raw);
    }
    const C mn = max(m, WarpMax(s));
    const C alpha = mn == ninf ? C(1) : Exp(m - mn);
    const C p = s == ninf ? C(0) : Exp(s - mn);
    l = l * alpha + WarpSum(p);
#pragma unroll
    for (int c = 0; c < kC; ++c) acc[c] *= alpha;
    const int n = a.kv_len - j0 < 32 ? static_cast<int>(a.kv_len - j0) : 32;
    for (int t = 0; t < n; ++t) {
      const C pt = __shfl_sync(kFull, p, t);
      if (pt == C(0)) continue;  // uniform across the warp
      const T* vj = vb + (j0 + t) * a.v.s;
#pragma unroll
      for (int c = 0; c < kC; ++c) {
        const int64_t d = lane + 32 * c;
        if (d < a.v_head) acc[c] += pt * Cv::From(vj[d]);
      }
    }
    m = mn;
  }
  const bool masked = m == ninf;  // every key masked (or none): zeros, as the reference
  if (qk_row && a.mode == 3)
    for (int64_t j = lane; j < a.kv_len; j += 32) {
      C raw;
      const C s = score(j, &raw);
      qk_row[j] = Cv::To(masked || s == ninf ? C(0) : Exp(s - m) / l);
    }
  T* yi = y + b * a.y.b + h * a.y.h + i * a.y.s;
#pragma unroll
  for (int c = 0; c < kC; ++c) {
    const int64_t d = lane + 32 * c;
    if (d < a.v_head) yi[d] = Cv::To(masked ? C(0) : acc[c] / l);
  }
}

// present[b, h, t, d] = t < past ? past[b, h, t, d] : cur(b, h, t - past, d),
// cur read through its strides (3-D packed or 4-D).
template <class W>
__global__ void PresentKernel(const W* __restrict__ past, const W* __restrict__ cur, W* __restrict__ present,
                              int64_t total, int64_t heads, int64_t len, int64_t dim, int64_t past_len,
                              Strides3 cs) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t d = e % dim, t = (e / dim) % len, h = (e / (dim * len)) % heads, b = e / (dim * len * heads);
    present[e] = t < past_len ? past[((b * heads + h) * past_len + t) * dim + d]
                              : cur[b * cs.b + h * cs.h + (t - past_len) * cs.s + d];
  }
}

// Strides of a [B, S, H*D] (packed) or [B, H, S, D] tensor.
Strides3 StridesOf(bool packed, int64_t heads, int64_t seq, int64_t dim) {
  return packed ? Strides3{seq * heads * dim, dim, heads * dim} : Strides3{heads * seq * dim, seq * dim, dim};
}

size_t AlignUp(size_t x) { return (x + 255) & ~size_t{255}; }

class OnnxAttentionOp final : public GpuOp {
 public:
  OnnxAttentionOp(const Node& n, int64_t opset) : node_(n), opset_(opset) {}

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources&) override {
    GpuNodeContext ctx(node_, opset_, &in);
    auto given = [&](size_t i) { return i < in.size() && Present(in[i]); };
    if (!given(0) || !given(1) || !given(2)) return ctx.Error("expects Q, K and V");
    const DevTensor &qt = in[0], &kt = in[1], &vt = in[2];
    dt_ = qt.dtype;
    if (kt.dtype != dt_ || vt.dtype != dt_) return ctx.Error("Q, K and V must have one type");
    const size_t r = qt.dims.size();
    if ((r != 3 && r != 4) || kt.dims.size() != r || vt.dims.size() != r)
      return ctx.Error("Q, K and V must all be 3-D or all 4-D");
    packed_ = r == 3;
    OnnxAttnArgs a;
    a.batch = qt.dims[0];
    if (kt.dims[0] != a.batch || vt.dims[0] != a.batch) return ctx.Error("Q, K and V batch sizes differ");
    int64_t hq, hkv, s;
    if (packed_) {
      hq = ctx.attr_int("q_num_heads", 0);
      hkv = ctx.attr_int("kv_num_heads", 0);
      if (hq <= 0 || hkv <= 0) return ctx.Error("3-D inputs need positive q_num_heads and kv_num_heads attributes");
      if (qt.dims[2] % hq || kt.dims[2] % hkv || vt.dims[2] % hkv)
        return ctx.Error("hidden sizes must be divisible by the head counts");
      a.q_seq = qt.dims[1];
      s = kt.dims[1];
      a.head = qt.dims[2] / hq;
      if (kt.dims[2] / hkv != a.head) return ctx.Error("Q and K head sizes differ");
      a.v_head = vt.dims[2] / hkv;
      if (vt.dims[1] != s) return ctx.Error("K and V sequence lengths differ");
    } else {
      hq = qt.dims[1];
      hkv = kt.dims[1];
      a.q_seq = qt.dims[2];
      s = kt.dims[2];
      a.head = qt.dims[3];
      a.v_head = vt.dims[3];
      if (kt.dims[3] != a.head) return ctx.Error("Q and K head sizes differ");
      if (vt.dims[1] != hkv || vt.dims[2] != s) return ctx.Error("K and V shapes disagree");
    }
    if (hkv <= 0 || hq % hkv != 0) return ctx.Error("q_num_heads must be a multiple of kv_num_heads");
    if (a.head > kMaxHead || a.v_head > kMaxHead)
      return ctx.UnsupportedError("head sizes above " + std::to_string(kMaxHead) + " on the GPU");
    a.q_heads = hq;
    a.group = hq / hkv;
    hkv_ = hkv;
    a.q = StridesOf(packed_, hq, a.q_seq, a.head);
    a.y = StridesOf(packed_, hq, a.q_seq, a.v_head);
    k_cur_ = StridesOf(packed_, hkv, s, a.head);
    v_cur_ = StridesOf(packed_, hkv, s, a.v_head);

    has_past_ = given(4);
    if (has_past_ != given(5)) return ctx.Error("past_key and past_value must be given together");
    a.past = 0;
    if (has_past_) {
      const DevTensor &pk = in[4], &pv = in[5];
      if (pk.dtype != dt_ || pv.dtype != dt_) return ctx.Error("past_key/past_value must have Q's type");
      if (pk.dims.size() != 4 || pv.dims.size() != 4 || pk.dims[0] != a.batch || pk.dims[1] != hkv ||
          pk.dims[3] != a.head || pv.dims[0] != a.batch || pv.dims[1] != hkv || pv.dims[3] != a.v_head ||
          pv.dims[2] != pk.dims[2])
        return ctx.Error("past_key/past_value shapes do not match K/V");
      a.past = pk.dims[2];
    }
    a.kv_len = a.past + s;
    a.nonpad = given(6);
    if (a.nonpad) {
      if (has_past_) return ctx.Error("nonpad_kv_seqlen cannot be combined with past_key/past_value");
      if (in[6].dtype != DataType::kInt64 || in[6].numel() != a.batch)
        return ctx.Error("nonpad_kv_seqlen must be int64 of shape [batch]");
    }
    a.mask_kind = 0;
    if (given(3)) {
      const DevTensor& m = in[3];
      if (m.dtype == DataType::kBool) a.mask_kind = 1;
      else if (m.dtype == dt_) a.mask_kind = 2;
      else return ctx.Error("attn_mask must be bool or Q's type");
      if (m.dims.empty() || m.dims.size() > 4) return ctx.Error("attn_mask must have rank 1 to 4");
      std::vector<int64_t> md(4 - m.dims.size(), 1);
      md.insert(md.end(), m.dims.begin(), m.dims.end());
      const int64_t target[3] = {a.batch, hq, a.q_seq};
      for (int i = 0; i < 3; ++i)
        if (md[static_cast<size_t>(i)] != 1 && md[static_cast<size_t>(i)] != target[i])
          return ctx.Error("attn_mask does not broadcast to [batch, heads, q_len, kv_len]");
      a.mask_len = md[3];
      if (a.mask_len > a.kv_len) return ctx.Error("attn_mask is longer than the key sequence");
      int64_t st = 1, str[4];
      for (int i = 3; i >= 0; --i) {
        str[i] = md[static_cast<size_t>(i)] == 1 ? 0 : st;
        st *= md[static_cast<size_t>(i)];
      }
      a.mb = str[0];
      a.mh = str[1];
      a.mq = str[2];
      a.mk = str[3];
    }
    a.causal = ctx.attr_int("is_causal", 0) != 0;
    a.left = ctx.attr_int("left_window_size", -1);
    a.right = ctx.attr_int("right_window_size", -1);
    a.softcap = ctx.attr_float("softcap", 0.0f);
    a.mode = static_cast<int>(ctx.attr_int("qk_matmul_output_mode", 0));
    a.scale = node_.attr("scale") ? static_cast<double>(ctx.attr_float("scale", 1.0f))
                                  : 1.0 / std::sqrt(static_cast<double>(a.head));
    // Where the attention reads K/V: the inputs, or the present (concatenated) tensors.
    const size_t es = ElementSize(dt_);
    const int64_t pk_elems = a.batch * hkv * a.kv_len * a.head, pv_elems = a.batch * hkv * a.kv_len * a.v_head;
    want_present_k_ = out.size() > 1 && Present(out[1]);
    want_present_v_ = out.size() > 2 && Present(out[2]);
    workspace_ = 0;
    if (has_past_) {
      if (!want_present_k_) workspace_ += AlignUp(static_cast<size_t>(pk_elems) * es);
      if (!want_present_v_) workspace_ += AlignUp(static_cast<size_t>(pv_elems) * es);
      a.k = StridesOf(false, hkv, a.kv_len, a.head);
      a.v = StridesOf(false, hkv, a.kv_len, a.v_head);
    } else {
      a.k = k_cur_;
      a.v = v_cur_;
    }
    want_qk_ = out.size() > 3 && Present(out[3]);
    args_ = a;
    return Status::Ok();
  }
  size_t WorkspaceBytes() const override { return workspace_; }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void* workspace,
                 GpuResources&, cudaStream_t stream) override {
    const OnnxAttnArgs& a = args_;
    const size_t es = ElementSize(dt_);
    const void* kd = in[1].data;
    const void* vd = in[2].data;
    unsigned char* ws = static_cast<unsigned char*>(workspace);
    // present_key / present_value: the outputs when the graph reads them, else the workspace.
    auto present = [&](int idx, bool wanted, const void* past, const void* cur, int64_t dim, Strides3 cs,
                       const void** read) -> Status {
      if (!wanted && !has_past_) return Status::Ok();
      void* dst = wanted ? out[static_cast<size_t>(idx)].data : ws;
      if (!wanted) ws += AlignUp(static_cast<size_t>(a.batch * hkv_ * a.kv_len * dim) * es);
      const int64_t total = a.batch * hkv_ * a.kv_len * dim;
      if (total > 0) {
        const bool ok = DispatchWord(es, [&](auto w) {
          using W = decltype(w);
          PresentKernel<W><<<GridFor(total, 256), 256, 0, stream>>>(static_cast<const W*>(past),
                                                                    static_cast<const W*>(cur), static_cast<W*>(dst),
                                                                    total, hkv_, a.kv_len, dim, a.past, cs);
        });
        KILN_RETURN_IF_ERROR(LaunchStatus(ok, node_, dt_, "attention present kernel"));
      }
      if (has_past_) *read = dst;
      return Status::Ok();
    };
    KILN_RETURN_IF_ERROR(present(1, want_present_k_, has_past_ ? in[4].data : nullptr, in[1].data, a.head, k_cur_, &kd));
    KILN_RETURN_IF_ERROR(present(2, want_present_v_, has_past_ ? in[5].data : nullptr, in[2].data, a.v_head, v_cur_, &vd));
    const int64_t row_blocks = (a.q_seq + kRows - 1) / kRows;
    const int64_t blocks = row_blocks * a.q_heads * a.batch;
    if (blocks == 0) return Status::Ok();
    if (blocks > 0x7fffffffLL) return Unsupported(node_.Label() + ": too many query rows for one launch");
    const void* mask = a.mask_kind ? in[3].data : nullptr;
    const int64_t* nonpad = a.nonpad ? static_cast<const int64_t*>(in[6].data) : nullptr;
    void* qk = want_qk_ ? out[3].data : nullptr;
    bool ok = false;
    auto launch = [&](auto tag) {
      using T = decltype(tag);
      using C = typename Compute<T>::type;
      const size_t smem = sizeof(C) * kRows * static_cast<size_t>(a.head > 0 ? a.head : 1);
      const dim3 block(32, kRows);
      auto go = [&](auto kernel) {
        kernel<<<static_cast<unsigned>(blocks), block, smem, stream>>>(
            static_cast<const T*>(in[0].data), static_cast<const T*>(kd), static_cast<const T*>(vd), mask, nonpad,
            static_cast<T*>(out[0].data), static_cast<T*>(qk), a, row_blocks);
      };
      if (a.v_head <= 32) go(OnnxAttentionKernel<T, 1>);
      else if (a.v_head <= 64) go(OnnxAttentionKernel<T, 2>);
      else if (a.v_head <= 128) go(OnnxAttentionKernel<T, 4>);
      else go(OnnxAttentionKernel<T, 8>);
      ok = true;
    };
    if (dt_ == DataType::kDouble) launch(double{});
    else DispatchFloatDevice(dt_, launch);
    return LaunchStatus(ok, node_, dt_, "attention kernel");
  }

 private:
  const Node& node_;
  int64_t opset_;
  DataType dt_ = DataType::kUndefined;
  OnnxAttnArgs args_;
  bool packed_ = false, has_past_ = false, want_present_k_ = false, want_present_v_ = false, want_qk_ = false;
  int64_t hkv_ = 0;
  Strides3 k_cur_, v_cur_;
  size_t workspace_ = 0;
};

}  // namespace

// Refuses at build time what the kernel cannot run: unknown modes and
// precisions, masks of another type, head sizes above 256 when known.
Expected<std::unique_ptr<GpuOp>> MakeOnnxAttentionOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  const int64_t mode = n.attr("qk_matmul_output_mode") ? n.attr("qk_matmul_output_mode")->i : 0;
  if (mode < 0 || mode > 3)
    return Unsupported(n.Label() + ": qk_matmul_output_mode " + std::to_string(mode) + " is not one of 0..3");
  if (const Attribute* p = n.attr("softmax_precision"))
    if (p->i != 1 && p->i != 10 && p->i != 11 && p->i != 16)
      return Unsupported(n.Label() + ": softmax_precision " + std::to_string(p->i) + " on the GPU");
  const Value* q = n.input(0);
  if (!q || !n.input(1) || !n.input(2)) return Unsupported(n.Label() + ": expects Q, K and V");
  const DataType dt = q->dtype();
  if (const Value* m = n.input(3))
    if (m->dtype() != DataType::kUndefined && m->dtype() != DataType::kBool && m->dtype() != dt)
      return Unsupported(n.Label() + ": attn_mask of type " + std::string(DataTypeName(m->dtype())) +
                         " with Q of type " + std::string(DataTypeName(dt)));
  if (const Value* np = n.input(6))
    if (np->dtype() != DataType::kUndefined && np->dtype() != DataType::kInt64)
      return Unsupported(n.Label() + ": nonpad_kv_seqlen must be int64");
  // Head sizes, when the shapes say them.
  for (size_t i : {size_t{0}, size_t{2}}) {
    const Shape& s = n.input(i)->shape();
    if (!s.rank_known() || s.rank() != 4 || !s[3].known()) continue;
    if (s[3].value() > kMaxHead)
      return Unsupported(n.Label() + ": head size " + std::to_string(s[3].value()) + " above " +
                         std::to_string(kMaxHead) + " on the GPU");
  }
  return std::unique_ptr<GpuOp>(std::make_unique<OnnxAttentionOp>(n, info.opset));
}

}  // namespace kiln::cuda
