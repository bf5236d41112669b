// Row-wise CUDA ops: Softmax / LogSoftmax, LayerNormalization, contiguous-axes
// reductions (ReduceMean/Sum/Max/Min/SumSquare/L2), BatchNormalization
// (inference), InstanceNormalization. Our own kernels: one block per row,
// block-wide shuffles for max/sum; contiguous rows of up to 1024 elements
// (Softmax over the last axis, LayerNorm) take one warp per row instead, the
// row held in registers and loaded in 16-byte words when sizes and pointers
// allow. Every accumulation is FP32 even for FP16 storage (the FP16-overflow
// trap of LayerNorm/Softmax in other engines). kiln.LayerNormE4M3 is the
// LayerNorm kernels with a second store: the y written, divided by the FP8
// scale, as E4M3 (core/float8.h QuantizeE4M3's bits: the hardware conversion,
// round to nearest even, saturate finite).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_op_table.h"
#include "backend/cuda/e4m3.cuh"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/node_context.h"

namespace kiln::cuda {
namespace {

constexpr int kBlock = 256;

// Rows of `len` elements at stride `inner`: row r = (outer, in) → base outer*len*inner + in.
template <class T>
__global__ void SoftmaxKernel(const T* __restrict__ x, T* __restrict__ y, int64_t len, int64_t inner, bool log_out) {
  int64_t r = blockIdx.x;
  int64_t base = (r / inner) * len * inner + (r % inner);
  float m = -FLT_MAX;
  for (int64_t i = threadIdx.x; i < len; i += blockDim.x) m = fmaxf(m, ToFloat(x[base + i * inner]));
  m = BlockReduce<true>(m);
  float s = 0.f;
  for (int64_t i = threadIdx.x; i < len; i += blockDim.x) s += expf(ToFloat(x[base + i * inner]) - m);
  s = BlockReduce<false>(s);
  float ls = logf(s);
  for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
    float v = ToFloat(x[base + i * inner]) - m;
    y[base + i * inner] = FromFloat<T>(log_out ? v - ls : expf(v) / s);
  }
}

template <class T, class P>
__global__ void LayerNormKernel(const T* __restrict__ x, const P* __restrict__ scale,
                                const P* __restrict__ bias, T* __restrict__ y, int64_t len, float eps,
                                const float* __restrict__ q_scale, uint8_t* __restrict__ q) {
  const T* row = x + blockIdx.x * len;
  T* out = y + blockIdx.x * len;
  float s = 0.f;
  for (int64_t i = threadIdx.x; i < len; i += blockDim.x) s += ToFloat(row[i]);
  float mean = BlockReduce<false>(s) / static_cast<float>(len);
  float v = 0.f;
  for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
    float d = ToFloat(row[i]) - mean;
    v += d * d;
  }
  float rstd = rsqrtf(BlockReduce<false>(v) / static_cast<float>(len) + eps);
  for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
    float o = (ToFloat(row[i]) - mean) * rstd * ToFloat(scale[i]);
    if (bias) o += ToFloat(bias[i]);
    out[i] = FromFloat<T>(o);
    if (q) q[blockIdx.x * len + i] = ToE4M3(ToFloat(out[i]), *q_scale);
  }
}

// Rows of at most kWarpRowMax contiguous elements take the warp-per-row kernels.
constexpr int kWarpRowMax = 1024;
constexpr int kRowsPerBlock = kBlock / 32;

// kPack consecutive elements moved as one load/store (16 bytes, or one element).
template <class T, int kPack>
struct alignas(sizeof(T) * kPack) Pack {
  T v[kPack];
};

// Lane l of the kLanes lanes that share a row (a warp, or an aligned group of
// 4, 8 or 16 of its lanes for short rows) holds packs l, l+kLanes, ... of it
// (kPacks packs of kPack elements); the row offset of its c-th pack's first
// element.
template <int kPack, int kLanes = 32>
__device__ inline int PackStart(int c, int lane) {
  return (c * kLanes + lane) * kPack;
}

// Butterfly sum over an aligned group of kLanes lanes; every lane of the group
// gets the result. Over a warp whose other lanes hold zeros it adds the same
// values in the same order as WarpSum.
template <int kLanes>
__device__ inline float GroupSum(float v) {
  for (int o = kLanes / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Loads this lane's packs of a row of `len` elements into v as floats (0
// beyond the row's end).
template <class T, int kPacks, int kPack, int kLanes = 32>
__device__ inline void LoadRow(const T* xr, int len, int lane, float (&v)[kPacks][kPack]) {
#pragma unroll
  for (int c = 0; c < kPacks; ++c) {
    int at = PackStart<kPack, kLanes>(c, lane);
    Pack<T, kPack> p{};
    if (at < len) p = *reinterpret_cast<const Pack<T, kPack>*>(xr + at);
#pragma unroll
    for (int e = 0; e < kPack; ++e) v[c][e] = ToFloat(p.v[e]);
  }
}

// Softmax over contiguous rows (inner == 1), one warp per row, the row in
// registers; same formulas as SoftmaxKernel.
template <class T, int kPacks, int kPack>
__global__ void __launch_bounds__(kBlock)
    SoftmaxWarpKernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows, int len, bool log_out) {
  int64_t row = blockIdx.x * static_cast<int64_t>(kRowsPerBlock) + (threadIdx.x >> 5);
  if (row >= rows) return;
  int lane = threadIdx.x & 31;
  const T* xr = x + row * len;
  T* yr = y + row * len;
  float v[kPacks][kPack];
  LoadRow(xr, len, lane, v);
  float m = -FLT_MAX;
#pragma unroll
  for (int c = 0; c < kPacks; ++c) {
    if (PackStart<kPack>(c, lane) >= len) continue;
#pragma unroll
    for (int e = 0; e < kPack; ++e) m = fmaxf(m, v[c][e]);
  }
  m = WarpMax(m);
  float s = 0.f;
#pragma unroll
  for (int c = 0; c < kPacks; ++c) {
    if (PackStart<kPack>(c, lane) >= len) continue;
#pragma unroll
    for (int e = 0; e < kPack; ++e) {
      float d = v[c][e] - m;
      float ex = expf(d);
      s += ex;
      v[c][e] = log_out ? d : ex;
    }
  }
  s = WarpSum(s);
  float ls = logf(s);
#pragma unroll
  for (int c = 0; c < kPacks; ++c) {
    int at = PackStart<kPack>(c, lane);
    if (at >= len) continue;
    Pack<T, kPack> p;
#pragma unroll
    for (int e = 0; e < kPack; ++e) p.v[e] = FromFloat<T>(log_out ? v[c][e] - ls : v[c][e] / s);
    *reinterpret_cast<Pack<T, kPack>*>(yr + at) = p;
  }
}

// LayerNorm over rows of at most kWarpRowMax elements, kLanes lanes per row
// (one warp, or 32 / kLanes rows a warp for rows of at most 16 packs: MaxViT's
// 64 channels are 8 16-byte packs, which left 24 of a warp's lanes idle), the
// row in registers; same numerics as LayerNormKernel (mean, then the mean of
// squared deviations).
template <class T, int kPacks, int kPack, int kLanes>
__global__ void __launch_bounds__(kBlock)
    LayerNormWarpKernel(const T* __restrict__ x, const T* __restrict__ scale, const T* __restrict__ bias,
                        T* __restrict__ y, int64_t rows, int len, float eps,
                        const float* __restrict__ q_scale, uint8_t* __restrict__ q8) {
  constexpr int kRowsPerWarp = 32 / kLanes;
  const int64_t first =
      (blockIdx.x * static_cast<int64_t>(kRowsPerBlock) + (threadIdx.x >> 5)) * kRowsPerWarp;
  if (first >= rows) return;  // the whole warp: its lanes' shuffles below stay full-warp
  const int64_t mine = first + (threadIdx.x & 31) / kLanes;
  const bool in = mine < rows;  // a group past the end computes the last row and writes nothing
  const int64_t row = in ? mine : rows - 1;
  int lane = threadIdx.x % kLanes;
  const T* xr = x + row * len;
  T* yr = y + row * len;
  float v[kPacks][kPack];
  LoadRow<T, kPacks, kPack, kLanes>(xr, len, lane, v);
  float s = 0.f;
#pragma unroll
  for (int c = 0; c < kPacks; ++c)
#pragma unroll
    for (int e = 0; e < kPack; ++e) s += v[c][e];  // 0 outside the row
  float mean = GroupSum<kLanes>(s) / static_cast<float>(len);
  float q = 0.f;
#pragma unroll
  for (int c = 0; c < kPacks; ++c) {
    if (PackStart<kPack, kLanes>(c, lane) >= len) continue;
#pragma unroll
    for (int e = 0; e < kPack; ++e) {
      float d = v[c][e] - mean;
      q += d * d;
    }
  }
  float rstd = rsqrtf(GroupSum<kLanes>(q) / static_cast<float>(len) + eps);
#pragma unroll
  for (int c = 0; c < kPacks; ++c) {
    int at = PackStart<kPack, kLanes>(c, lane);
    if (at >= len || !in) continue;
    Pack<T, kPack> sc = *reinterpret_cast<const Pack<T, kPack>*>(scale + at);
    Pack<T, kPack> b{};
    if (bias) b = *reinterpret_cast<const Pack<T, kPack>*>(bias + at);
    Pack<T, kPack> p;
#pragma unroll
    for (int e = 0; e < kPack; ++e) {
      float o = (v[c][e] - mean) * rstd * ToFloat(sc.v[e]);
      if (bias) o += ToFloat(b.v[e]);
      p.v[e] = FromFloat<T>(o);
    }
    *reinterpret_cast<Pack<T, kPack>*>(yr + at) = p;
    if (q8) {  // kPack codes, kPack-byte aligned (the op checks)
      Pack<uint8_t, kPack> pq;
      const float qs = *q_scale;
#pragma unroll
      for (int e = 0; e < kPack; ++e) pq.v[e] = ToE4M3(ToFloat(p.v[e]), qs);
      *reinterpret_cast<Pack<uint8_t, kPack>*>(q8 + row * len + at) = pq;
    }
  }
}

// Calls f(std::integral_constant<int, K>) for the smallest power of two K >=
// packs (packs <= kMax).
template <int K, int kMax, class F>
void WithPacks(int packs, F&& f) {
  if constexpr (K >= kMax) {
    f(std::integral_constant<int, K>{});
  } else {
    if (packs <= K)
      f(std::integral_constant<int, K>{});
    else
      WithPacks<K * 2, kMax>(packs, f);
  }
}

// Launches kernel<T, kPacks, kPack> for a row of `len`: 16-byte packs when
// `vector`, else one element per pack.
template <class T, class Launch>
void WithRowLayout(int len, bool vector, Launch&& launch) {
  constexpr int kVec = 16 / static_cast<int>(sizeof(T));
  if (vector) {
    WithPacks<1, kWarpRowMax / (32 * kVec)>(
        (len / kVec + 31) / 32, [&](auto packs) { launch(packs, std::integral_constant<int, kVec>{}); });
  } else {
    WithPacks<1, kWarpRowMax / 32>((len + 31) / 32,
                                   [&](auto packs) { launch(packs, std::integral_constant<int, 1>{}); });
  }
}

// As WithRowLayout, with the lanes a row takes: a group of 4, 8 or 16 when the row is at most that many packs
// (one pack a lane), else the warp. launch(packs, pack, lanes).
template <class T, class Launch>
void WithRowGroups(int len, bool vector, Launch&& launch) {
  constexpr int kVec = 16 / static_cast<int>(sizeof(T));
  const int units = vector ? len / kVec : len;
  auto one = std::integral_constant<int, 1>{};
  auto grouped = [&](auto pack) {
    if (units <= 4)
      launch(one, pack, std::integral_constant<int, 4>{});
    else if (units <= 8)
      launch(one, pack, std::integral_constant<int, 8>{});
    else
      launch(one, pack, std::integral_constant<int, 16>{});
  };
  if (units > 16)
    WithRowLayout<T>(len, vector,
                     [&](auto packs, auto pack) { launch(packs, pack, std::integral_constant<int, 32>{}); });
  else if (vector)
    grouped(std::integral_constant<int, kVec>{});
  else
    grouped(one);
}

unsigned WarpRowGrid(int64_t rows, int rows_per_warp = 1) {
  const int64_t per_block = static_cast<int64_t>(kRowsPerBlock) * rows_per_warp;
  return static_cast<unsigned>((rows + per_block - 1) / per_block);
}

enum class Red { kSum, kMean, kMax, kMin, kSumSquare, kL2, kL1, kLogSum, kLogSumExp, kProd };

// Integer ReduceSum / ReduceMax / ReduceMin in the element type (sums wrap,
// as the reference's).
template <class T>
__global__ void IntReduceKernel(const T* __restrict__ x, T* __restrict__ y, int64_t len, int64_t inner, Red op) {
  const int64_t r = blockIdx.x, base = (r / inner) * len * inner + (r % inner);
  const T lowest = std::numeric_limits<T>::lowest(), highest = std::numeric_limits<T>::max();
  T acc = op == Red::kMax ? lowest : (op == Red::kMin ? highest : T(0));
  for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
    const T v = x[base + i * inner];
    if (op == Red::kMax) acc = v > acc ? v : acc;
    else if (op == Red::kMin) acc = v < acc ? v : acc;
    else acc = static_cast<T>(static_cast<std::make_unsigned_t<T>>(acc) + static_cast<std::make_unsigned_t<T>>(v));
  }
  if (op == Red::kMax) acc = BlockReduceOp<BlockOp::kMax>(acc, lowest);
  else if (op == Red::kMin) acc = BlockReduceOp<BlockOp::kMin>(acc, highest);
  else acc = BlockReduceOp<BlockOp::kSum>(acc, T(0));
  if (threadIdx.x == 0) y[r] = acc;
}

template <class T>
__global__ void ReduceKernel(const T* __restrict__ x, T* __restrict__ y, int64_t len, int64_t inner, Red op) {
  int64_t r = blockIdx.x;
  int64_t base = (r / inner) * len * inner + (r % inner);
  bool is_max = op == Red::kMax, is_min = op == Red::kMin;
  // LogSumExp: log(sum(exp(x - max))) + max, the max found in a first pass.
  float shift = 0.f;
  if (op == Red::kLogSumExp) {
    float mx = -INFINITY;
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) mx = fmaxf(mx, ToFloat(x[base + i * inner]));
    shift = BlockReduce<true>(mx);
    if (isinf(shift)) shift = 0.f;  // all -inf (log 0 = -inf) or a +inf (stays +inf)
  }
  float acc = is_max ? -INFINITY : (is_min ? INFINITY : (op == Red::kProd ? 1.f : 0.f));  // a row of -inf has max -inf
  for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
    float v = ToFloat(x[base + i * inner]);
    if (op == Red::kLogSumExp) acc += expf(v - shift);
    else if (is_max) acc = fmaxf(acc, v);
    else if (is_min) acc = fminf(acc, v);
    else if (op == Red::kSumSquare || op == Red::kL2) acc += v * v;
    else if (op == Red::kL1) acc += fabsf(v);
    else if (op == Red::kProd) acc *= v;
    else acc += v;
  }
  if (is_max) acc = BlockReduce<true>(acc);
  else if (is_min) acc = -BlockReduce<true>(-acc);
  else if (op == Red::kProd) acc = BlockReduceOp<BlockOp::kProd>(acc, 1.f);
  else acc = BlockReduce<false>(acc);
  if (threadIdx.x == 0) {
    if (op == Red::kMean) acc /= static_cast<float>(len);
    if (op == Red::kL2) acc = sqrtf(acc);
    if (op == Red::kLogSum || op == Red::kLogSumExp) acc = logf(acc) + shift;
    y[r] = FromFloat<T>(acc);
  }
}

// ReduceKernel for float64, in float64 (the reference's type): a shared-memory
// tree over the block (BlockReduceOp's max/min are float-only).
__device__ inline double CombineF64(Red op, double a, double b) {
  if (op == Red::kMax) return fmax(a, b);
  if (op == Red::kMin) return fmin(a, b);
  if (op == Red::kProd) return a * b;
  return a + b;
}
__device__ inline double BlockReduceF64(Red op, double v) {
  __shared__ double part[kBlock];
  part[threadIdx.x] = v;
  __syncthreads();
  for (int s = kBlock / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s) part[threadIdx.x] = CombineF64(op, part[threadIdx.x], part[threadIdx.x + s]);
    __syncthreads();
  }
  const double r = part[0];
  __syncthreads();
  return r;
}
__global__ void ReduceKernelF64(const double* __restrict__ x, double* __restrict__ y, int64_t len, int64_t inner,
                                Red op) {
  const int64_t r = blockIdx.x;
  const int64_t base = (r / inner) * len * inner + (r % inner);
  const bool is_max = op == Red::kMax, is_min = op == Red::kMin;
  double shift = 0.0;
  if (op == Red::kLogSumExp) {
    double mx = -INFINITY;
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) mx = fmax(mx, x[base + i * inner]);
    shift = BlockReduceF64(Red::kMax, mx);
    if (isinf(shift)) shift = 0.0;  // all -inf (log 0 = -inf) or a +inf (stays +inf)
  }
  double acc = is_max ? -INFINITY : (is_min ? INFINITY : (op == Red::kProd ? 1.0 : 0.0));
  for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
    const double v = x[base + i * inner];
    if (op == Red::kLogSumExp) acc += exp(v - shift);
    else if (is_max) acc = fmax(acc, v);
    else if (is_min) acc = fmin(acc, v);
    else if (op == Red::kSumSquare || op == Red::kL2) acc += v * v;
    else if (op == Red::kL1) acc += fabs(v);
    else if (op == Red::kProd) acc *= v;
    else acc += v;
  }
  acc = BlockReduceF64(is_max ? Red::kMax : is_min ? Red::kMin : op == Red::kProd ? Red::kProd : Red::kSum, acc);
  if (threadIdx.x == 0) {
    if (op == Red::kMean) acc /= static_cast<double>(len);
    if (op == Red::kL2) acc = sqrt(acc);
    if (op == Red::kLogSum || op == Red::kLogSumExp) acc = log(acc) + shift;
    y[r] = acc;
  }
}

// y = x * a[c] + b[c] with c = (i / inner) % channels (BatchNorm folded to an affine map).
template <class T>
__global__ void ChannelAffineKernel(const T* __restrict__ x, const float* __restrict__ a, const float* __restrict__ b,
                                    T* __restrict__ y, int64_t n, int64_t inner, int64_t channels) {
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += step) {
    int64_t c = (i / inner) % channels;
    y[i] = FromFloat<T>(ToFloat(x[i]) * a[c] + b[c]);
  }
}

Status BadType(const Node& n, DataType dt) {
  return Unsupported(n.Label() + ": " + std::string(DataTypeName(dt)) + " is not supported on the GPU");
}

int64_t AttrI(const Node& n, const char* k, int64_t def) {
  const Attribute* a = n.attr(k);
  return a ? a->i : def;
}

// Splits dims around [axis_begin, axis_end) into outer × len × inner.
void Split3(const std::vector<int64_t>& d, int64_t b, int64_t e, int64_t* outer, int64_t* len, int64_t* inner) {
  *outer = *len = *inner = 1;
  for (int64_t i = 0; i < static_cast<int64_t>(d.size()); ++i) {
    if (i < b) *outer *= d[i];
    else if (i < e) *len *= d[i];
    else *inner *= d[i];
  }
}

class SoftmaxOp final : public GpuOp {
 public:
  SoftmaxOp(const Node& n, int64_t opset) : node_(n), opset_(opset) {}
  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>&, GpuResources&) override {
    int64_t rank = static_cast<int64_t>(in[0].dims.size());
    int64_t axis = AttrI(node_, "axis", opset_ >= 13 ? -1 : 1);
    if (axis < 0) axis += rank;
    // Before opset 13 the input is coerced to 2-D at `axis`: one row per prefix.
    int64_t outer;
    if (opset_ >= 13) Split3(in[0].dims, axis, axis + 1, &outer, &len_, &inner_);
    else {
      Split3(in[0].dims, axis, rank, &outer, &len_, &inner_);
      inner_ = 1;
    }
    rows_ = outer * inner_;
    return Status::Ok();
  }
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    if (rows_ == 0 || len_ == 0) return Status::Ok();
    bool log_out = node_.op_type == "LogSoftmax";
    bool ok = DispatchFloatDevice(in[0].dtype, [&](auto t) {
      using T = decltype(t);
      const T* x = static_cast<const T*>(in[0].data);
      T* y = static_cast<T*>(out[0].data);
      if (inner_ == 1 && len_ <= kWarpRowMax) {
        int len = static_cast<int>(len_);
        bool vector = (len_ * static_cast<int64_t>(sizeof(T))) % 16 == 0 && Aligned16(x) && Aligned16(y);
        WithRowLayout<T>(len, vector, [&](auto packs, auto pack) {
          SoftmaxWarpKernel<T, decltype(packs)::value, decltype(pack)::value>
              <<<WarpRowGrid(rows_), kBlock, 0, stream>>>(x, y, rows_, len, log_out);
        });
      } else {
        SoftmaxKernel<T><<<static_cast<unsigned>(rows_), kBlock, 0, stream>>>(x, y, len_, inner_, log_out);
      }
    });
    if (!ok) return BadType(node_, in[0].dtype);
    return CudaStatus(cudaGetLastError(), "softmax kernel");
  }

 private:
  const Node& node_;
  int64_t opset_;
  int64_t rows_ = 0, len_ = 0, inner_ = 1;
};

// LayerNormalization, and kiln.LayerNormE4M3 (`e4m3`: input 3 the FP8 scale, output 1 the E4M3 copy).
class LayerNormOp final : public GpuOp {
 public:
  LayerNormOp(const Node& n, bool e4m3) : node_(n), e4m3_(e4m3) {}
  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources&) override {
    int64_t rank = static_cast<int64_t>(in[0].dims.size());
    int64_t axis = AttrI(node_, "axis", -1);
    if (axis < 0) axis += rank;
    int64_t inner;
    Split3(in[0].dims, axis, rank, &rows_, &len_, &inner);
    if (in[1].numel() != len_ || (in.size() > 2 && Present(in[2]) && in[2].numel() != len_))
      return Unsupported(node_.Label() + ": LayerNormalization with broadcast scale/bias on the GPU");
    if (in[1].dtype != in[0].dtype) return Unsupported(node_.Label() + ": mixed-precision scale on the GPU");
    if (e4m3_ && (in.size() != 4 || in[3].dtype != DataType::kFloat || in[3].numel() != 1 ||
                  out.size() != 2 || out[1].dtype != DataType::kFloat8E4M3FN))
      return GpuNodeContext(node_, 17, &in).Error("expects a float32 scalar q_scale and an E4M3 output q");
    for (size_t i = 1; i < node_.num_outputs() && !e4m3_; ++i) {
      const Value* extra = node_.output(i);
      bool used = extra && !extra->uses().empty();
      for (const Value* o : node_.graph()->outputs) used |= o == extra;
      if (used) return Unsupported(node_.Label() + ": Mean/InvStdDev outputs on the GPU");
    }
    const Attribute* e = node_.attr("epsilon");
    eps_ = e ? e->f : 1e-5f;
    return Status::Ok();
  }
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    if (rows_ == 0 || len_ == 0) return Status::Ok();
    bool ok = DispatchFloatDevice(in[0].dtype, [&](auto t) {
      using T = decltype(t);
      const T* x = static_cast<const T*>(in[0].data);
      const T* scale = static_cast<const T*>(in[1].data);
      const T* bias = in.size() > 2 ? static_cast<const T*>(in[2].data) : nullptr;
      T* y = static_cast<T*>(out[0].data);
      const float* q_scale = e4m3_ ? static_cast<const float*>(in[3].data) : nullptr;
      uint8_t* q = e4m3_ ? static_cast<uint8_t*>(out[1].data) : nullptr;
      if (len_ <= kWarpRowMax) {
        int len = static_cast<int>(len_);
        // 16-byte words of y; q's words are 16 / sizeof(T) bytes.
        bool vector = (len_ * static_cast<int64_t>(sizeof(T))) % 16 == 0 && Aligned16(x) && Aligned16(y) &&
                      Aligned16(scale) && (!bias || Aligned16(bias)) &&
                      (!q || reinterpret_cast<uintptr_t>(q) % (16 / sizeof(T)) == 0);
        WithRowGroups<T>(len, vector, [&](auto packs, auto pack, auto lanes) {
          constexpr int kLanes = decltype(lanes)::value;
          LayerNormWarpKernel<T, decltype(packs)::value, decltype(pack)::value, kLanes>
              <<<WarpRowGrid(rows_, 32 / kLanes), kBlock, 0, stream>>>(x, scale, bias, y, rows_, len, eps_,
                                                                       q_scale, q);
        });
      } else {
        LayerNormKernel<T, T>
            <<<static_cast<unsigned>(rows_), kBlock, 0, stream>>>(x, scale, bias, y, len_, eps_, q_scale, q);
      }
    });
    if (!ok) return BadType(node_, in[0].dtype);
    return CudaStatus(cudaGetLastError(), "layernorm kernel");
  }

 private:
  const Node& node_;
  bool e4m3_;
  int64_t rows_ = 0, len_ = 0;
  float eps_ = 1e-5f;
};

class ReduceOp final : public GpuOp {
 public:
  // `axes_input`: the axes are input 1, known on the host by Prepare (a
  // constant, folded from shapes, or a shape-tensor input's value).
  ReduceOp(const Node& n, Red op, std::vector<int64_t> axes, bool axes_input)
      : node_(n), op_(op), axes_(std::move(axes)), axes_input_(axes_input) {}
  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>&, GpuResources&) override {
    int64_t rank = static_cast<int64_t>(in[0].dims.size());
    std::vector<int64_t> axes = axes_;
    if (axes_input_) {
      const Tensor* given = HostInput(node_, in, 1);
      if (!given) return Unsupported(node_.Label() + ": reduction axes must be known before the run on the GPU");
      axes = given->ToInt64s();
      if (axes.empty() && node_.attr("noop_with_empty_axes") && node_.attr("noop_with_empty_axes")->i)
        return Unsupported(node_.Label() + ": noop_with_empty_axes on the GPU");
    }
    if (axes.empty())
      for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
    for (int64_t& a : axes)
      if (a < 0) a += rank;
    std::sort(axes.begin(), axes.end());
    for (size_t i = 1; i < axes.size(); ++i)
      if (axes[i] != axes[i - 1] + 1)
        return Unsupported(node_.Label() + ": reduction over non-adjacent axes on the GPU");
    int64_t outer;
    Split3(in[0].dims, axes.front(), axes.back() + 1, &outer, &len_, &inner_);
    rows_ = outer * inner_;
    return Status::Ok();
  }
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    if (rows_ == 0) return Status::Ok();
    auto launch_int = [&](auto t) {
      using T = decltype(t);
      IntReduceKernel<T><<<static_cast<unsigned>(rows_), kBlock, 0, stream>>>(
          static_cast<const T*>(in[0].data), static_cast<T*>(out[0].data), len_, inner_, op_);
    };
    const bool int_op = op_ == Red::kSum || op_ == Red::kMax || op_ == Red::kMin;
    bool ok = true;
    if (in[0].dtype == DataType::kInt64 && int_op) launch_int(int64_t{});
    else if (in[0].dtype == DataType::kInt32 && int_op) launch_int(int32_t{});
    else if (in[0].dtype == DataType::kDouble)
      ReduceKernelF64<<<static_cast<unsigned>(rows_), kBlock, 0, stream>>>(
          static_cast<const double*>(in[0].data), static_cast<double*>(out[0].data), len_, inner_, op_);
    else
      ok = DispatchFloatDevice(in[0].dtype, [&](auto t) {
        using T = decltype(t);
        ReduceKernel<T><<<static_cast<unsigned>(rows_), kBlock, 0, stream>>>(
            static_cast<const T*>(in[0].data), static_cast<T*>(out[0].data), len_, inner_, op_);
      });
    if (!ok) return BadType(node_, in[0].dtype);
    return CudaStatus(cudaGetLastError(), "reduce kernel");
  }

 private:
  const Node& node_;
  Red op_;
  std::vector<int64_t> axes_;
  bool axes_input_ = false;
  int64_t rows_ = 0, len_ = 0, inner_ = 1;
};

// BatchNormalization (inference) with constant parameters: folded on the host
// to y = a[c]·x + b[c].
class BatchNormOp final : public GpuOp {
 public:
  BatchNormOp(const Node& n, std::vector<float> a, std::vector<float> b) : node_(n), a_(std::move(a)), b_(std::move(b)) {}
  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>&, GpuResources&) override {
    const auto& d = in[0].dims;
    if (d.size() < 2 || d[1] != static_cast<int64_t>(a_.size()))
      return InvalidArgument(node_.Label() + ": channel count does not match the parameters");
    inner_ = 1;
    for (size_t i = 2; i < d.size(); ++i) inner_ *= d[i];
    if (!params_.get()) {
      KILN_RETURN_IF_ERROR(params_.Reserve(2 * a_.size() * sizeof(float)));
      KILN_CUDA_RETURN_IF_ERROR(cudaMemcpy(params_.get(), a_.data(), a_.size() * 4, cudaMemcpyHostToDevice));
      KILN_CUDA_RETURN_IF_ERROR(cudaMemcpy(static_cast<float*>(params_.get()) + a_.size(), b_.data(), b_.size() * 4,
                                           cudaMemcpyHostToDevice));
    }
    return Status::Ok();
  }
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    int64_t n = out[0].numel();
    if (n == 0) return Status::Ok();
    const float* a = static_cast<const float*>(params_.get());
    bool ok = DispatchFloatDevice(in[0].dtype, [&](auto t) {
      using T = decltype(t);
      ChannelAffineKernel<T><<<GridFor(n, kBlock), kBlock, 0, stream>>>(
          static_cast<const T*>(in[0].data), a, a + a_.size(), static_cast<T*>(out[0].data), n, inner_,
          static_cast<int64_t>(a_.size()));
    });
    if (!ok) return BadType(node_, in[0].dtype);
    return CudaStatus(cudaGetLastError(), "batchnorm kernel");
  }

 private:
  const Node& node_;
  std::vector<float> a_, b_;
  DeviceBuffer params_;
  int64_t inner_ = 1;
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeSoftmaxOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(new SoftmaxOp(*info.node, info.opset));
}

Expected<std::unique_ptr<GpuOp>> MakeLayerNormOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(new LayerNormOp(*info.node, false));
}

Expected<std::unique_ptr<GpuOp>> MakeLayerNormE4M3Op(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(new LayerNormOp(*info.node, true));
}

Expected<std::unique_ptr<GpuOp>> MakeReduceOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  static const std::pair<const char*, Red> kOps[] = {
      {"ReduceSum", Red::kSum}, {"ReduceMean", Red::kMean}, {"ReduceMax", Red::kMax}, {"ReduceMin", Red::kMin},
      {"ReduceSumSquare", Red::kSumSquare}, {"ReduceL2", Red::kL2}, {"ReduceL1", Red::kL1},
      {"ReduceLogSum", Red::kLogSum}, {"ReduceLogSumExp", Red::kLogSumExp}, {"ReduceProd", Red::kProd}};
  Red op = Red::kSum;
  bool found = false;
  for (const auto& [name, r] : kOps)
    if (n.op_type == name) {
      op = r;
      found = true;
    }
  if (!found) return Unsupported(n.Label() + ": not a reduction");
  std::vector<int64_t> axes;
  bool axes_input = n.op_type == "ReduceSum" ? info.opset >= 13 : info.opset >= 18;
  axes_input = axes_input && n.input(1);
  if (!axes_input && n.input(1) == nullptr && n.attr("noop_with_empty_axes") && n.attr("noop_with_empty_axes")->i)
    return Unsupported(n.Label() + ": noop_with_empty_axes on the GPU");
  if (!axes_input)
    if (const Attribute* a = n.attr("axes")) axes = a->ints;
  return std::unique_ptr<GpuOp>(new ReduceOp(n, op, axes, axes_input));
}

Expected<std::unique_ptr<GpuOp>> MakeBatchNormOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  if (n.attr("training_mode") && n.attr("training_mode")->i)
    return Unsupported(n.Label() + ": training_mode BatchNormalization on the GPU");
  for (size_t i = 1; i < 5; ++i)
    if (!n.input(i) || !n.input(i)->data)
      return Unsupported(n.Label() + ": BatchNormalization parameters must be constant on the GPU");
  const Attribute* e = n.attr("epsilon");
  double eps = e ? e->f : 1e-5;
  const Tensor& s = *n.input(1)->data;
  const Tensor& b = *n.input(2)->data;
  const Tensor& m = *n.input(3)->data;
  const Tensor& v = *n.input(4)->data;
  std::vector<float> a(static_cast<size_t>(s.numel())), c(a.size());
  for (int64_t i = 0; i < s.numel(); ++i) {
    double k = s.ScalarAt(i) / std::sqrt(v.ScalarAt(i) + eps);
    a[static_cast<size_t>(i)] = static_cast<float>(k);
    c[static_cast<size_t>(i)] = static_cast<float>(b.ScalarAt(i) - m.ScalarAt(i) * k);
  }
  return std::unique_ptr<GpuOp>(new BatchNormOp(n, std::move(a), std::move(c)));
}

}  // namespace kiln::cuda
