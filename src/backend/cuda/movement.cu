// Data-movement CUDA ops expressed as strided copies: Transpose, Slice, Expand,
// Split, DepthToSpace/SpaceToDepth, Pad (constant) — plus Gather, which
// reads indices, and Concat (one launch for up to 8 inputs, ConcatKernel). Our own kernels: a copy with
// per-dim source/destination strides covers all of them with one tested planner per op. Launch first
// canonicalises a copy (drops extent-1 dims, merges dims contiguous on both
// sides), then picks one kernel:
//  - a shared-memory tiled transpose when the dim contiguous in the destination
//    is not the one contiguous in the source (NCHW→NHWC, K^T in attention);
//  - else a flat strided copy, moving 16/8/4-byte words when the innermost dim
//    is contiguous on both sides and every offset and both pointers allow it,
//    else one element per thread. 32-bit index math (multiply-shift division)
//    when every offset fits, else 64-bit.
#include <algorithm>
#include <cstdlib>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_op_table.h"
#include "backend/cuda/kernel_util.cuh"
#include "backend/cuda/node_context.h"

namespace kiln::cuda {
namespace {

// One dim of a copy: extent, source stride, destination stride (in words).
struct CopyDim {
  int64_t n, src, dst;
};

// The iteration space of the flat kernel, innermost dim last.
struct FlatMap {
  int rank = 0;
  int64_t n[kMaxRank];
  int64_t src[kMaxRank];
  int64_t dst[kMaxRank];
  FastDiv div[kMaxRank];  // of n[k], for the 32-bit path
  int64_t src_base = 0, dst_base = 0;
};

__device__ inline int32_t Quotient(const FlatMap& m, int k, int32_t r) {
  return static_cast<int32_t>(Divide(m.div[k], static_cast<uint32_t>(r)));
}
__device__ inline int64_t Quotient(const FlatMap& m, int k, int64_t r) { return r / m.n[k]; }

// One word W per thread and step. Index type I: 32-bit when every offset fits
// (64-bit division is several times slower on the GPU), else 64-bit.
template <class W, class I>
__global__ void StridedCopyKernel(const W* __restrict__ in, W* __restrict__ out, I total, FlatMap m) {
  I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < total; i += step) {
    I r = i, s = static_cast<I>(m.src_base), d = static_cast<I>(m.dst_base);
    for (int k = m.rank - 1; k > 0; --k) {
      I q = Quotient(m, k, r);
      I x = r - q * static_cast<I>(m.n[k]);
      s += x * static_cast<I>(m.src[k]);
      d += x * static_cast<I>(m.dst[k]);
      r = q;
    }
    if (m.rank > 0) {
      s += r * static_cast<I>(m.src[0]);
      d += r * static_cast<I>(m.dst[0]);
    }
    out[d] = in[s];
  }
}

// A transpose of dim i (stride 1 in the destination) against dim j (stride 1
// in the source); the other dims are a batch.
struct TileMap {
  int rank = 0;  // batch dims
  int64_t n[kMaxRank];
  int64_t src[kMaxRank];
  int64_t dst[kMaxRank];
  int64_t batch = 1;
  int64_t ni = 1, nj = 1;        // extents of i and j
  int64_t src_i = 0, dst_j = 0;  // source stride of i, destination stride of j
  int64_t tiles_j = 1;           // blockIdx.x = tile_i * tiles_j + tile_j
  int64_t src_base = 0, dst_base = 0;
};

constexpr int kTileRows = 8;  // blockDim = (32, kTileRows)

// Reads a kTile x kTile tile coalesced along j, writes it coalesced along i.
// The tile row is padded by one 4-byte word (bank-conflict-free column reads).
template <class E, int kTile, class I>
__global__ void __launch_bounds__(32 * kTileRows)
    TiledTransposeKernel(const E* __restrict__ in, E* __restrict__ out, TileMap m) {
  constexpr int kPad = sizeof(E) >= 4 ? 1 : 4 / static_cast<int>(sizeof(E));
  __shared__ E tile[kTile][kTile + kPad];
  I tiles_j = static_cast<I>(m.tiles_j), ni = static_cast<I>(m.ni), nj = static_cast<I>(m.nj);
  I src_i = static_cast<I>(m.src_i), dst_j = static_cast<I>(m.dst_j);
  I t = static_cast<I>(blockIdx.x);
  I i0 = (t / tiles_j) * kTile, j0 = (t % tiles_j) * kTile;
  for (I b = blockIdx.y; b < static_cast<I>(m.batch); b += gridDim.y) {
    I r = b, s = static_cast<I>(m.src_base), d = static_cast<I>(m.dst_base);
    for (int k = m.rank - 1; k >= 0; --k) {
      I q = r / static_cast<I>(m.n[k]);
      I x = r - q * static_cast<I>(m.n[k]);
      s += x * static_cast<I>(m.src[k]);
      d += x * static_cast<I>(m.dst[k]);
      r = q;
    }
#pragma unroll
    for (int ry = 0; ry < kTile / kTileRows; ++ry) {
#pragma unroll
      for (int rx = 0; rx < kTile / 32; ++rx) {
        int y = threadIdx.y + ry * kTileRows, x = threadIdx.x + rx * 32;
        I i = i0 + y, j = j0 + x;
        if (i < ni && j < nj) tile[y][x] = in[s + j + i * src_i];
      }
    }
    __syncthreads();
#pragma unroll
    for (int ry = 0; ry < kTile / kTileRows; ++ry) {
#pragma unroll
      for (int rx = 0; rx < kTile / 32; ++rx) {
        int y = threadIdx.y + ry * kTileRows, x = threadIdx.x + rx * 32;
        I i = i0 + x, j = j0 + y;
        if (i < ni && j < nj) out[d + i + j * dst_j] = tile[x][y];
      }
    }
    __syncthreads();
  }
}

template <class W>
__global__ void FillKernel(W* out, int64_t n, W value) {
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += step) out[i] = value;
}

// Gathered slices: out[(o*num_idx + j)*inner + p] = in[(o*axis_dim + k(j))*inner + p]
// with slice s = o*num_idx + j. blockDim = (threads over a slice, slices).
template <class W, class Idx, class I>
__global__ void GatherKernel(const W* __restrict__ in, const Idx* __restrict__ idx, W* __restrict__ out,
                             I slices, I inner, I num_idx, I axis_dim) {
  I slice_step = static_cast<I>(gridDim.y) * blockDim.y;
  I pos_step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I s = blockIdx.y * static_cast<I>(blockDim.y) + threadIdx.y; s < slices; s += slice_step) {
    I o = s / num_idx;
    I j = s - o * num_idx;
    int64_t k = static_cast<int64_t>(idx[j]);
    if (k < 0) k += axis_dim;
    k = k < 0 ? 0 : (k >= axis_dim ? axis_dim - 1 : k);  // out-of-range indices clamp (no fault)
    const W* src = in + (o * axis_dim + static_cast<I>(k)) * inner;
    W* dst = out + s * inner;
    for (I p = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; p < inner; p += pos_step)
      dst[p] = src[p];
  }
}

// Concat as one launch: the output is `rows` rows of `out_cols` words; input k fills columns [start[k],
// start[k+1]) of each row from its own rows of start[k+1] - start[k] words. One launch covers up to
// kConcatInputs inputs (GoogLeNet's and Inception's channel concats are 4 to 6: 4 launches of the strided
// copy before, each a fraction of the GPU).
constexpr int kConcatInputs = 8;
struct ConcatMap {
  int inputs = 0;
  const void* src[kConcatInputs];
  int64_t start[kConcatInputs + 1];  // columns, relative to col0
  int64_t col0 = 0, out_cols = 0;    // this launch's first column; the output row's width
};

template <class W, class I>
__global__ void ConcatKernel(W* __restrict__ out, I rows, ConcatMap m) {
  const I cols = static_cast<I>(m.start[m.inputs]);
  const I total = rows * cols, step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < total; i += step) {
    const I r = i / cols, c = i - r * cols;
    int k = 0;
    while (c >= static_cast<I>(m.start[k + 1])) ++k;
    const I width = static_cast<I>(m.start[k + 1] - m.start[k]);
    out[r * static_cast<I>(m.out_cols) + static_cast<I>(m.col0) + c] =
        static_cast<const W*>(m.src[k])[r * width + c - static_cast<I>(m.start[k])];
  }
}

std::vector<int64_t> Contig(const std::vector<int64_t>& d) {
  std::vector<int64_t> s(d.size(), 1);
  for (int i = static_cast<int>(d.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * d[i + 1];
  return s;
}

// One strided copy: iterate `dims`, read src_base + Σ q·src, write dst_base + Σ q·dst.
struct Copy {
  std::vector<int64_t> dims, src, dst;
  int64_t src_base = 0, dst_base = 0;
  int input = 0;  // which op input is the source
};

// The same copy with extent-1 dims dropped and each pair of adjacent dims that
// is contiguous in both source and destination merged into one.
std::vector<CopyDim> CanonicalDims(const Copy& c) {
  std::vector<CopyDim> out;
  for (size_t k = 0; k < c.dims.size(); ++k) {
    if (c.dims[k] == 1) continue;
    CopyDim d{c.dims[k], c.src[k], c.dst[k]};
    if (!out.empty() && out.back().src == d.n * d.src && out.back().dst == d.n * d.dst) {
      out.back() = {out.back().n * d.n, d.src, d.dst};
      continue;
    }
    out.push_back(d);
  }
  return out;
}

bool Aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// Calls f with a value of the unsigned word type of `word` bytes: DispatchWord's 1, 2, 4, 8, else uint4 (16).
template <class F>
void ByWord(size_t word, F&& f) {
  if (!DispatchWord(word, f)) f(uint4{});
}

// The widest word of 16/8/4/2 bytes, wider than the element, for which fits(word) holds; else the element.
template <class Fits>
size_t WidestWord(size_t elem, Fits fits) {
  for (size_t word : {16, 8, 4, 2}) {
    if (word <= elem) break;
    if (fits(word)) return word;
  }
  return elem;
}

// Whether `count` elements of `elem` bytes are a whole number of words.
bool WholeWords(int64_t count, size_t elem, size_t word) {
  return (count * static_cast<int64_t>(elem)) % static_cast<int64_t>(word) == 0;
}

// The widest word the copy can move: innermost dim contiguous on both sides,
// its byte length, every other stride and both bases multiples of the word,
// both pointers aligned to it.
size_t CopyWord(const std::vector<CopyDim>& dims, int64_t src_base, int64_t dst_base, const void* in,
                const void* out, size_t elem) {
  if (dims.empty() || dims.back().src != 1 || dims.back().dst != 1) return elem;
  return WidestWord(elem, [&](size_t word) {
    auto whole = [&](int64_t v) { return WholeWords(v, elem, word); };
    bool fits =
        whole(dims.back().n) && whole(src_base) && whole(dst_base) && Aligned(in, word) && Aligned(out, word);
    for (size_t k = 0; fits && k + 1 < dims.size(); ++k) fits = whole(dims[k].src) && whole(dims[k].dst);
    return fits;
  });
}

// 32-bit index math when every offset and count stays below 2^30: a
// grid-stride step (at most 65535·32·256 < 2^30 threads) then cannot overflow.
constexpr int64_t kLimit32 = int64_t{1} << 30;

// Largest offset either side can reach (strides may be negative for Slice).
bool Fits32(const std::vector<CopyDim>& dims, int64_t total, int64_t src_base, int64_t dst_base) {
  int64_t reach = std::max<int64_t>(total, std::max(src_base, dst_base));
  for (const CopyDim& d : dims) reach += (d.n - 1) * (std::abs(d.src) + std::abs(d.dst));
  return reach < kLimit32 && src_base >= 0 && dst_base >= 0;
}

template <class E, int kTile>
void LaunchTiled(const TileMap& m, bool small, const void* in, void* out, cudaStream_t stream) {
  dim3 grid(static_cast<unsigned>(m.tiles_j * ((m.ni + kTile - 1) / kTile)),
            static_cast<unsigned>(std::min<int64_t>(m.batch, 65535)));
  dim3 block(32, kTileRows);
  if (small)
    TiledTransposeKernel<E, kTile, int32_t>
        <<<grid, block, 0, stream>>>(static_cast<const E*>(in), static_cast<E*>(out), m);
  else
    TiledTransposeKernel<E, kTile, int64_t>
        <<<grid, block, 0, stream>>>(static_cast<const E*>(in), static_cast<E*>(out), m);
}

// The tiled transpose, when the destination-contiguous dim i and the
// source-contiguous dim j differ and both span at least kMinTileExtent
// (narrower tiles leave most of the block idle: the flat copy does better).
constexpr int64_t kMinTileExtent = 8;

bool TryTiled(const std::vector<CopyDim>& dims, int64_t total, int64_t src_base, int64_t dst_base,
              const void* in, void* out, size_t elem, cudaStream_t stream) {
  int i = -1, j = -1;
  for (int k = 0; k < static_cast<int>(dims.size()); ++k) {
    if (dims[k].dst == 1) i = k;
    if (dims[k].src == 1) j = k;
  }
  if (i < 0 || j < 0 || i == j || dims[i].n < kMinTileExtent || dims[j].n < kMinTileExtent) return false;
  int tile = elem <= 2 ? 64 : 32;
  TileMap m{};
  m.ni = dims[i].n;
  m.nj = dims[j].n;
  m.src_i = dims[i].src;
  m.dst_j = dims[j].dst;
  m.tiles_j = (m.nj + tile - 1) / tile;
  if (m.tiles_j * ((m.ni + tile - 1) / tile) > INT32_MAX) return false;
  m.src_base = src_base;
  m.dst_base = dst_base;
  for (int k = 0; k < static_cast<int>(dims.size()); ++k) {
    if (k == i || k == j) continue;
    m.n[m.rank] = dims[k].n;
    m.src[m.rank] = dims[k].src;
    m.dst[m.rank] = dims[k].dst;
    m.batch *= dims[k].n;
    ++m.rank;
  }
  bool small = Fits32(dims, total, src_base, dst_base);
  switch (elem) {
    case 1: LaunchTiled<uint8_t, 64>(m, small, in, out, stream); break;
    case 2: LaunchTiled<uint16_t, 64>(m, small, in, out, stream); break;
    case 4: LaunchTiled<uint32_t, 32>(m, small, in, out, stream); break;
    default: LaunchTiled<uint64_t, 32>(m, small, in, out, stream); break;
  }
  return true;
}

Status Launch(const Copy& c, const void* in, void* out, size_t elem, cudaStream_t stream) {
  int64_t total = 1;
  for (int64_t d : c.dims) total *= d;
  if (total == 0) return Status::Ok();
  if (elem != 1 && elem != 2 && elem != 4 && elem != 8)
    return Unsupported("element size " + std::to_string(elem) + " on the GPU");
  std::vector<CopyDim> dims = CanonicalDims(c);
  if (dims.size() > static_cast<size_t>(kMaxRank))
    return Unsupported("copy over dims " + DimsToString(c.dims) +
                       ": rank over 8 after merging contiguous dims, on the GPU");
  if (TryTiled(dims, total, c.src_base, c.dst_base, in, out, elem, stream))
    return CudaStatus(cudaGetLastError(), "tiled transpose kernel");

  // Flat copy in words of `word` bytes: rescale the innermost extent, the other strides and the bases.
  size_t word = CopyWord(dims, c.src_base, c.dst_base, in, out, elem);
  int64_t per = static_cast<int64_t>(word / elem);
  FlatMap m{};
  m.rank = static_cast<int>(dims.size());
  m.src_base = c.src_base / per;
  m.dst_base = c.dst_base / per;
  total /= per;
  for (int k = 0; k < m.rank; ++k) {
    bool inner = k == m.rank - 1;
    dims[k].n = inner ? dims[k].n / per : dims[k].n;
    dims[k].src = inner ? dims[k].src : dims[k].src / per;
    dims[k].dst = inner ? dims[k].dst : dims[k].dst / per;
    m.n[k] = dims[k].n;
    m.src[k] = dims[k].src;
    m.dst[k] = dims[k].dst;
  }
  bool small = Fits32(dims, total, m.src_base, m.dst_base);
  if (small)
    for (int k = 0; k < m.rank; ++k) m.div[k] = MakeFastDiv(static_cast<uint32_t>(m.n[k]));
  unsigned grid = GridFor(total, 256);
  auto go = [&](auto w) {
    using W = decltype(w);
    if (small)
      StridedCopyKernel<W, int32_t><<<grid, 256, 0, stream>>>(static_cast<const W*>(in), static_cast<W*>(out),
                                                              static_cast<int32_t>(total), m);
    else
      StridedCopyKernel<W, int64_t>
          <<<grid, 256, 0, stream>>>(static_cast<const W*>(in), static_cast<W*>(out), total, m);
  };
  ByWord(word, go);
  return CudaStatus(cudaGetLastError(), "strided copy kernel");
}

int64_t Attr(const Node& n, const char* k, int64_t def) {
  const Attribute* a = n.attr(k);
  return a ? a->i : def;
}

// Reads an int64 vector from an input known on the host (e.g. Slice starts):
// a constant, or a value the runtime folded from the input shapes.
Expected<std::vector<int64_t>> ConstInts(const Node& n, const std::vector<DevTensor>& in, size_t i) {
  const Value* v = i < n.num_inputs() ? n.input(i) : nullptr;
  if (!v) return std::vector<int64_t>{};
  const Tensor* t = HostInput(n, in, i);
  if (!t)
    return Unsupported(n.Label() + ": input " + std::to_string(i) + " ('" + v->name() +
                       "') must be constant (or computable from shapes) on the GPU");
  return t->ToInt64s();
}

// An op whose whole effect is a list of strided copies (plus an optional fill).
class CopyOp final : public GpuOp {
 public:
  using Planner = Status (*)(const Node&, const std::vector<DevTensor>&, const std::vector<DevTensor>&,
                             std::vector<Copy>*, std::vector<int>* out_of_copy);
  CopyOp(const Node& n, Planner p) : node_(n), planner_(p) {}
  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources&) override {
    copies_.clear();
    out_of_copy_.clear();
    if (node_.op_type == "Pad" && in.size() > 2 && node_.input(2)) {
      const Tensor* v = HostInput(node_, in, 2);
      if (!v) return Unsupported(node_.Label() + ": Pad's constant_value must be known before the run on the GPU");
      pad_value_ = v->ScalarAt(0);
    }
    return planner_(node_, in, out, &copies_, &out_of_copy_).WithPrefix(node_.Label());
  }
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    if (node_.op_type == "Pad") KILN_RETURN_IF_ERROR(FillPad(in, out, stream));
    for (size_t i = 0; i < copies_.size(); ++i) {
      const Copy& c = copies_[i];
      const DevTensor& dst = out[out_of_copy_[i]];
      if (!dst.data) continue;
      KILN_RETURN_IF_ERROR(Launch(c, in[c.input].data, dst.data, ElementSize(dst.dtype), stream).WithPrefix(node_.Label()));
    }
    return Status::Ok();
  }

 private:
  Status FillPad(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, cudaStream_t stream) {
    int64_t n = out[0].numel();
    if (n == 0) return Status::Ok();
    const double value = pad_value_;
    unsigned grid = GridFor(n, 256);
    switch (out[0].dtype) {
      case DataType::kFloat: {
        float v = static_cast<float>(value);
        uint32_t w;
        memcpy(&w, &v, 4);
        FillKernel<uint32_t><<<grid, 256, 0, stream>>>(static_cast<uint32_t*>(out[0].data), n, w);
        break;
      }
      case DataType::kFloat16: {
        __half h = __float2half_rn(static_cast<float>(value));
        uint16_t w;
        memcpy(&w, &h, 2);
        FillKernel<uint16_t><<<grid, 256, 0, stream>>>(static_cast<uint16_t*>(out[0].data), n, w);
        break;
      }
      case DataType::kInt64:
        FillKernel<uint64_t><<<grid, 256, 0, stream>>>(static_cast<uint64_t*>(out[0].data), n,
                                                        static_cast<uint64_t>(static_cast<int64_t>(value)));
        break;
      default: return Unsupported(node_.Label() + ": Pad of " + std::string(DataTypeName(out[0].dtype)) + " on the GPU");
    }
    return CudaStatus(cudaGetLastError(), "pad fill");
  }

  const Node& node_;
  Planner planner_;
  double pad_value_ = 0;  // Pad's constant_value (read in Prepare)
  std::vector<Copy> copies_;
  std::vector<int> out_of_copy_;
};

Status PlanTranspose(const Node& n, const std::vector<DevTensor>& in, const std::vector<DevTensor>& out,
                     std::vector<Copy>* copies, std::vector<int>* outs) {
  const auto& d = in[0].dims;
  std::vector<int64_t> perm;
  const Attribute* p = n.attr("perm");
  if (p) perm = p->ints;
  else
    for (int64_t i = static_cast<int64_t>(d.size()) - 1; i >= 0; --i) perm.push_back(i);
  std::vector<int64_t> is = Contig(d);
  Copy c;
  c.dims = out[0].dims;
  c.dst = Contig(out[0].dims);
  for (int64_t a : perm) c.src.push_back(is[static_cast<size_t>(a)]);
  copies->push_back(c);
  outs->push_back(0);
  return Status::Ok();
}

Status PlanSlice(const Node& n, const std::vector<DevTensor>& in, const std::vector<DevTensor>& out,
                 std::vector<Copy>* copies, std::vector<int>* outs) {
  const auto& d = in[0].dims;
  int64_t rank = static_cast<int64_t>(d.size());
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> starts, ConstInts(n, in, 1));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> axes, ConstInts(n, in, 3));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> steps, ConstInts(n, in, 4));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> ends, ConstInts(n, in, 2));
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  std::vector<int64_t> is = Contig(d);
  Copy c;
  c.dims = out[0].dims;
  c.dst = Contig(out[0].dims);
  c.src = is;
  for (size_t i = 0; i < starts.size(); ++i) {
    int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i];
    int64_t dim = d[static_cast<size_t>(a)];
    int64_t st = steps[i];
    int64_t s = starts[i] < 0 ? starts[i] + dim : starts[i];
    s = st > 0 ? std::min(std::max<int64_t>(s, 0), dim) : std::min(std::max<int64_t>(s, 0), dim - 1);
    c.src_base += s * is[static_cast<size_t>(a)];
    c.src[static_cast<size_t>(a)] = is[static_cast<size_t>(a)] * st;
  }
  copies->push_back(c);
  outs->push_back(0);
  return Status::Ok();
}

Status PlanExpand(const Node& n, const std::vector<DevTensor>& in, const std::vector<DevTensor>& out,
                  std::vector<Copy>* copies, std::vector<int>* outs) {
  Copy c;
  c.dims = out[0].dims;
  c.dst = Contig(out[0].dims);
  const auto& d = in[0].dims;
  std::vector<int64_t> is = Contig(d);
  size_t off = c.dims.size() - d.size();
  c.src.assign(c.dims.size(), 0);
  for (size_t i = 0; i < d.size(); ++i) c.src[off + i] = d[i] == 1 ? 0 : is[i];
  copies->push_back(c);
  outs->push_back(0);
  return Status::Ok();
}

Status PlanSplit(const Node& n, const std::vector<DevTensor>& in, const std::vector<DevTensor>& out,
                 std::vector<Copy>* copies, std::vector<int>* outs) {
  int64_t rank = static_cast<int64_t>(in[0].dims.size());
  int64_t axis = Attr(n, "axis", 0);
  if (axis < 0) axis += rank;
  std::vector<int64_t> is = Contig(in[0].dims);
  int64_t offset = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    Copy c;
    c.dims = out[i].dims;
    c.src = is;
    c.dst = Contig(out[i].dims);
    c.src_base = offset * is[static_cast<size_t>(axis)];
    offset += out[i].dims.empty() ? 0 : out[i].dims[static_cast<size_t>(axis)];
    copies->push_back(c);
    outs->push_back(static_cast<int>(i));
  }
  return Status::Ok();
}

Status PlanDepthSpace(const Node& n, const std::vector<DevTensor>& in, const std::vector<DevTensor>& out,
                      std::vector<Copy>* copies, std::vector<int>* outs) {
  const auto& d = in[0].dims;
  if (d.size() != 4) return InvalidArgument("needs a 4-D input");
  int64_t bs = Attr(n, "blocksize", 1);
  int64_t N = d[0], C = d[1], H = d[2], W = d[3];
  bool to_space = n.op_type == "DepthToSpace";
  Copy c;
  if (to_space) {
    bool crd = n.attr("mode") && n.attr("mode")->s == "CRD";
    int64_t c2 = C / (bs * bs);
    // Iterate the output as [N, c2, H, bs, W, bs]; find each element in the input.
    c.dims = {N, c2, H, bs, W, bs};
    c.dst = Contig(c.dims);
    int64_t sN = C * H * W, sC = H * W;
    // DCR: input channel = (by*bs + bx)*c2 + ch; CRD: ch*bs*bs + by*bs + bx.
    c.src = crd ? std::vector<int64_t>{sN, bs * bs * sC, W, bs * sC, 1, sC}
                : std::vector<int64_t>{sN, sC, W, bs * c2 * sC, 1, c2 * sC};
  } else {
    // SpaceToDepth: output [N, by, bx, C, H/bs, W/bs] (DCR) or [N, C, by, bx,
    // H/bs, W/bs] (CRD, opset 25's mode) gathers input [N, C, H, W].
    int64_t ho = H / bs, wo = W / bs;
    bool crd = n.attr("mode") && n.attr("mode")->s == "CRD";
    c.dims = crd ? std::vector<int64_t>{N, C, bs, bs, ho, wo} : std::vector<int64_t>{N, bs, bs, C, ho, wo};
    c.dst = Contig(c.dims);
    c.src = crd ? std::vector<int64_t>{C * H * W, H * W, W, 1, bs * W, bs}
                : std::vector<int64_t>{C * H * W, W, 1, H * W, bs * W, bs};
  }
  copies->push_back(c);
  outs->push_back(0);
  return Status::Ok();
}

Status PlanPad(const Node& n, const std::vector<DevTensor>& in, const std::vector<DevTensor>& out,
               std::vector<Copy>* copies, std::vector<int>* outs) {
  const Attribute* mode = n.attr("mode");
  if (mode && mode->s != "constant") return Unsupported("Pad mode '" + mode->s + "' on the GPU");
  std::vector<int64_t> pads;
  if (const Attribute* p = n.attr("pads")) pads = p->ints;
  else {
    KILN_ASSIGN_OR_RETURN(pads, ConstInts(n, in, 1));
  }
  if (n.input(3)) return Unsupported("Pad with axes on the GPU");
  size_t rank = in[0].dims.size();
  if (pads.size() != 2 * rank) return InvalidArgument("pads must have 2*rank entries");
  std::vector<int64_t> os = Contig(out[0].dims);
  Copy c;
  c.dims = in[0].dims;
  c.src = Contig(in[0].dims);
  c.dst = os;
  for (size_t i = 0; i < rank; ++i) {
    if (pads[i] < 0 || pads[i + rank] < 0) return Unsupported("negative pads on the GPU");
    c.dst_base += pads[i] * os[i];
  }
  copies->push_back(c);
  outs->push_back(0);
  return Status::Ok();
}

// Concat: the inputs as column blocks of the output's rows (ConcatKernel), in the widest word every block,
// both pointers and the row width allow.
class ConcatOp final : public GpuOp {
 public:
  explicit ConcatOp(const Node& n) : node_(n) {}
  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out,
                 GpuResources&) override {
    const int64_t rank = static_cast<int64_t>(out[0].dims.size());
    int64_t axis = Attr(node_, "axis", 0);
    if (axis < 0) axis += rank;
    rows_ = 1;
    for (int64_t d = 0; d < axis; ++d) rows_ *= out[0].dims[static_cast<size_t>(d)];
    cols_.clear();
    for (const DevTensor& t : in) cols_.push_back(rows_ == 0 ? 0 : t.numel() / rows_);
    return Status::Ok();
  }
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    const int64_t n = out[0].numel();
    if (n == 0) return Status::Ok();
    const size_t elem = ElementSize(out[0].dtype);
    if (elem != 1 && elem != 2 && elem != 4 && elem != 8)
      return Unsupported(node_.Label() + ": element size " + std::to_string(elem) + " on the GPU");
    const size_t word = WidestWord(elem, [&](size_t w) {
      bool fits = Aligned(out[0].data, w);
      for (size_t k = 0; k < in.size() && fits; ++k)
        fits = WholeWords(cols_[k], elem, w) && Aligned(in[k].data, w);
      return fits;
    });
    const int64_t per = static_cast<int64_t>(word / elem), out_cols = n / rows_ / per;
    for (size_t first = 0, col = 0; first < in.size(); first += kConcatInputs) {
      ConcatMap m{};
      m.col0 = static_cast<int64_t>(col);
      m.out_cols = out_cols;
      m.start[0] = 0;
      for (size_t k = first; k < in.size() && m.inputs < kConcatInputs; ++k) {
        m.src[m.inputs] = in[k].data;
        m.start[m.inputs + 1] = m.start[m.inputs] + cols_[k] / per;
        ++m.inputs;
      }
      col += static_cast<size_t>(m.start[m.inputs]);
      const int64_t total = rows_ * m.start[m.inputs];
      if (total == 0) continue;
      const unsigned grid = GridFor(total, 256);
      auto go = [&](auto w) {
        using W = decltype(w);
        if (rows_ * out_cols < kLimit32)
          ConcatKernel<W, int32_t><<<grid, 256, 0, stream>>>(static_cast<W*>(out[0].data), int32_t(rows_), m);
        else
          ConcatKernel<W, int64_t><<<grid, 256, 0, stream>>>(static_cast<W*>(out[0].data), rows_, m);
      };
      ByWord(word, go);
      KILN_RETURN_IF_ERROR(CudaStatus(cudaGetLastError(), "concat kernel").WithPrefix(node_.Label()));
    }
    return Status::Ok();
  }

 private:
  const Node& node_;
  int64_t rows_ = 1;           // the product of the dims before the axis
  std::vector<int64_t> cols_;  // each input's elements per row
};

class GatherOp final : public GpuOp {
 public:
  explicit GatherOp(const Node& n) : node_(n) {}
  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources&) override {
    const auto& d = in[0].dims;
    int64_t axis = Attr(node_, "axis", 0);
    if (axis < 0) axis += static_cast<int64_t>(d.size());
    axis_dim_ = d[static_cast<size_t>(axis)];
    inner_ = 1;
    for (size_t i = static_cast<size_t>(axis) + 1; i < d.size(); ++i) inner_ *= d[i];
    num_idx_ = in[1].numel();
    if (axis_dim_ == 0 && num_idx_ > 0 && inner_ > 0)
      return InvalidArgument(node_.Label() + ": indices into an empty axis " + std::to_string(axis) +
                             " of data " + DimsToString(d));
    return Status::Ok();
  }
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    int64_t n = out[0].numel();
    if (n == 0) return Status::Ok();
    size_t elem = ElementSize(in[0].dtype);
    if (elem != 1 && elem != 2 && elem != 4 && elem != 8)
      return Unsupported(node_.Label() + ": element size " + std::to_string(elem) + " on the GPU");
    // The contiguous slice moves as the widest word its byte length and both pointers allow.
    const size_t word = WidestWord(elem, [&](size_t w) {
      return WholeWords(inner_, elem, w) && Aligned(in[0].data, w) && Aligned(out[0].data, w);
    });
    int64_t inner = inner_ * static_cast<int64_t>(elem) / static_cast<int64_t>(word);
    int64_t slices = n / inner_;
    int64_t outer = slices / num_idx_;
    bool small = std::max(slices * inner, outer * axis_dim_ * inner) < kLimit32;
    // Threads over a slice (a power of two up to 256), the rest of the block over slices.
    unsigned bx = 1;
    while (bx < 256 && static_cast<int64_t>(bx) < inner) bx *= 2;
    dim3 block(bx, 256 / bx);
    dim3 grid(GridFor(inner, static_cast<int>(bx)),
              static_cast<unsigned>(std::min<int64_t>((slices + block.y - 1) / block.y, 65535)));
    bool i64 = in[1].dtype == DataType::kInt64;
    auto go = [&](auto w, auto i) {
      using W = decltype(w);
      using I = decltype(i);
      const W* src = static_cast<const W*>(in[0].data);
      W* dst = static_cast<W*>(out[0].data);
      I sl = static_cast<I>(slices), inn = static_cast<I>(inner), ni = static_cast<I>(num_idx_);
      I ad = static_cast<I>(axis_dim_);
      if (i64)
        GatherKernel<W, int64_t, I>
            <<<grid, block, 0, stream>>>(src, static_cast<const int64_t*>(in[1].data), dst, sl, inn, ni, ad);
      else
        GatherKernel<W, int32_t, I>
            <<<grid, block, 0, stream>>>(src, static_cast<const int32_t*>(in[1].data), dst, sl, inn, ni, ad);
    };
    if (small)
      ByWord(word, [&](auto w) { go(w, int32_t{}); });
    else
      ByWord(word, [&](auto w) { go(w, int64_t{}); });
    return CudaStatus(cudaGetLastError(), "gather kernel");
  }

 private:
  const Node& node_;
  int64_t axis_dim_ = 0, inner_ = 1, num_idx_ = 0;
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakeCopyOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  CopyOp::Planner p = nullptr;
  if (n.op_type == "Transpose") p = PlanTranspose;
  else if (n.op_type == "Slice") {
    if (info.opset < 10) return Unsupported(n.Label() + ": Slice before opset 10 on the GPU");
    p = PlanSlice;
  } else if (n.op_type == "Expand")
    p = PlanExpand;
  else if (n.op_type == "Split") p = PlanSplit;
  else if (n.op_type == "DepthToSpace" || n.op_type == "SpaceToDepth") p = PlanDepthSpace;
  else if (n.op_type == "Pad") p = PlanPad;
  if (!p) return Unsupported(n.Label() + ": not a copy op");
  return std::unique_ptr<GpuOp>(new CopyOp(n, p));
}

Expected<std::unique_ptr<GpuOp>> MakeConcatOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(new ConcatOp(*info.node));
}

Expected<std::unique_ptr<GpuOp>> MakeGatherOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(new GatherOp(*info.node));
}

}  // namespace kiln::cuda
