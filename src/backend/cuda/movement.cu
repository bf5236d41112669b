// Data-movement CUDA ops expressed as one strided copy kernel: Transpose,
// Slice, Expand, Concat, Split, DepthToSpace/SpaceToDepth, Pad (constant) —
// plus Gather, which reads indices. Our own kernel: a copy with per-dim
// source/destination strides covers all of them with one tested code path;
// the element is moved as a 1/2/4/8-byte word so any dtype works.
#include <algorithm>
#include <cstdlib>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_op_table.h"
#include "backend/cuda/kernel_util.cuh"

namespace kiln::cuda {
namespace {

struct CopyMap {
  int rank = 0;
  int64_t dims_stride[kMaxRank];  // row-major strides of the iteration space
  int64_t src[kMaxRank];
  int64_t dst[kMaxRank];
  int64_t src_base = 0, dst_base = 0;
};

// Index type I: 32-bit when every offset fits (64-bit division is several
// times slower on the GPU), else 64-bit.
template <class W, class I>
__global__ void StridedCopyKernel(const W* __restrict__ in, W* __restrict__ out, I n, CopyMap m) {
  I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < n; i += step) {
    I r = i, s = static_cast<I>(m.src_base), d = static_cast<I>(m.dst_base);
    for (int k = 0; k < m.rank; ++k) {
      I q = r / static_cast<I>(m.dims_stride[k]);
      r -= q * static_cast<I>(m.dims_stride[k]);
      s += q * static_cast<I>(m.src[k]);
      d += q * static_cast<I>(m.dst[k]);
    }
    out[d] = in[s];
  }
}

template <class W>
__global__ void FillKernel(W* out, int64_t n, W value) {
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += step) out[i] = value;
}

template <class W, class I>
__global__ void GatherKernel(const W* __restrict__ in, const I* __restrict__ idx, W* __restrict__ out, int64_t n,
                             int64_t inner, int64_t num_idx, int64_t axis_dim) {
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += step) {
    int64_t in_pos = i % inner;
    int64_t j = (i / inner) % num_idx;
    int64_t outer = i / (inner * num_idx);
    int64_t k = static_cast<int64_t>(idx[j]);
    if (k < 0) k += axis_dim;
    k = k < 0 ? 0 : (k >= axis_dim ? axis_dim - 1 : k);  // out-of-range indices clamp (no fault)
    out[i] = in[(outer * axis_dim + k) * inner + in_pos];
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

Status Launch(const Copy& c, const void* in, void* out, size_t elem, cudaStream_t stream) {
  int64_t n = 1;
  for (int64_t d : c.dims) n *= d;
  if (n == 0) return Status::Ok();
  if (c.dims.size() > static_cast<size_t>(kMaxRank)) return Unsupported("rank over 8 on the GPU");
  CopyMap m{};
  m.rank = static_cast<int>(c.dims.size());
  std::vector<int64_t> ds = Contig(c.dims);
  for (int k = 0; k < m.rank; ++k) {
    m.dims_stride[k] = ds[k];
    m.src[k] = c.src[k];
    m.dst[k] = c.dst[k];
  }
  m.src_base = c.src_base;
  m.dst_base = c.dst_base;
  unsigned grid = GridFor(n, 256);
  // Largest offset either side can reach (strides may be negative for Slice).
  int64_t reach = std::max<int64_t>(n, std::max(c.src_base, c.dst_base));
  for (size_t k = 0; k < c.dims.size(); ++k)
    reach += (c.dims[k] > 0 ? c.dims[k] - 1 : 0) * (std::abs(c.src[k]) + std::abs(c.dst[k]));
  bool small = reach < (int64_t{1} << 31) && c.src_base >= 0 && c.dst_base >= 0;
  auto go = [&](auto w) {
    using W = decltype(w);
    if (small)
      StridedCopyKernel<W, int32_t><<<grid, 256, 0, stream>>>(static_cast<const W*>(in), static_cast<W*>(out),
                                                               static_cast<int32_t>(n), m);
    else
      StridedCopyKernel<W, int64_t><<<grid, 256, 0, stream>>>(static_cast<const W*>(in), static_cast<W*>(out), n, m);
  };
  switch (elem) {
    case 1: go(uint8_t{}); break;
    case 2: go(uint16_t{}); break;
    case 4: go(uint32_t{}); break;
    case 8: go(uint64_t{}); break;
    default: return Unsupported("element size " + std::to_string(elem) + " on the GPU");
  }
  return CudaStatus(cudaGetLastError(), "strided copy kernel");
}

int64_t Attr(const Node& n, const char* k, int64_t def) {
  const Attribute* a = n.attr(k);
  return a ? a->i : def;
}

// Reads an int64 vector from a constant input (e.g. Slice starts).
Expected<std::vector<int64_t>> ConstInts(const Node& n, size_t i) {
  const Value* v = n.input(i);
  if (!v) return std::vector<int64_t>{};
  if (!v->data)
    return Unsupported(n.Label() + ": input " + std::to_string(i) + " ('" + v->name() +
                       "') must be constant (or computable from shapes) on the GPU");
  return v->data->ToInt64s();
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
    double value = 0;
    if (in.size() > 2 && node_.input(2) && node_.input(2)->data) value = node_.input(2)->data->ScalarAt(0);
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
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> starts, ConstInts(n, 1));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> axes, ConstInts(n, 3));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> steps, ConstInts(n, 4));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> ends, ConstInts(n, 2));
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

Status PlanConcat(const Node& n, const std::vector<DevTensor>& in, const std::vector<DevTensor>& out,
                  std::vector<Copy>* copies, std::vector<int>* outs) {
  int64_t rank = static_cast<int64_t>(out[0].dims.size());
  int64_t axis = Attr(n, "axis", 0);
  if (axis < 0) axis += rank;
  std::vector<int64_t> os = Contig(out[0].dims);
  int64_t offset = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    Copy c;
    c.input = static_cast<int>(i);
    c.dims = in[i].dims;
    c.src = Contig(in[i].dims);
    c.dst = os;
    c.dst_base = offset * os[static_cast<size_t>(axis)];
    offset += in[i].dims[static_cast<size_t>(axis)];
    copies->push_back(c);
    outs->push_back(0);
  }
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
    // SpaceToDepth: output [N, by, bx, C, H/bs, W/bs] gathers input [N, C, H, W].
    int64_t ho = H / bs, wo = W / bs;
    c.dims = {N, bs, bs, C, ho, wo};
    c.dst = Contig(c.dims);
    c.src = {C * H * W, W, 1, H * W, bs * W, bs};
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
    KILN_ASSIGN_OR_RETURN(pads, ConstInts(n, 1));
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
    return Status::Ok();
  }
  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    int64_t n = out[0].numel();
    if (n == 0) return Status::Ok();
    size_t elem = ElementSize(in[0].dtype);
    bool i64 = in[1].dtype == DataType::kInt64;
    unsigned grid = GridFor(n, 256);
    auto go = [&](auto w) {
      using W = decltype(w);
      if (i64)
        GatherKernel<W, int64_t><<<grid, 256, 0, stream>>>(static_cast<const W*>(in[0].data),
                                                           static_cast<const int64_t*>(in[1].data),
                                                           static_cast<W*>(out[0].data), n, inner_, num_idx_, axis_dim_);
      else
        GatherKernel<W, int32_t><<<grid, 256, 0, stream>>>(static_cast<const W*>(in[0].data),
                                                           static_cast<const int32_t*>(in[1].data),
                                                           static_cast<W*>(out[0].data), n, inner_, num_idx_, axis_dim_);
    };
    switch (elem) {
      case 1: go(uint8_t{}); break;
      case 2: go(uint16_t{}); break;
      case 4: go(uint32_t{}); break;
      case 8: go(uint64_t{}); break;
      default: return Unsupported(node_.Label() + ": element size on the GPU");
    }
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
  } else if (n.op_type == "Expand") p = PlanExpand;
  else if (n.op_type == "Concat") p = PlanConcat;
  else if (n.op_type == "Split") p = PlanSplit;
  else if (n.op_type == "DepthToSpace" || n.op_type == "SpaceToDepth") p = PlanDepthSpace;
  else if (n.op_type == "Pad") p = PlanPad;
  if (!p) return Unsupported(n.Label() + ": not a copy op");
  return std::unique_ptr<GpuOp>(new CopyOp(n, p));
}

Expected<std::unique_ptr<GpuOp>> MakeGatherOp(const GpuOpInfo& info) {
  return std::unique_ptr<GpuOp>(new GatherOp(*info.node));
}

}  // namespace kiln::cuda
