// kiln.Pointwise on the GPU: loads the node's generated kernel (the cubin the
// builder compiled with NVRTC, src/build/cuda/nvrtc_compile.h) and launches it.
// Nothing is compiled here. Prepare loads the module (once per op) and fills
// the parameter block (ops/pointwise_abi.h) for the shapes; Enqueue sets the
// pointers (an input read through a Slice at its view's first element) and
// launches one grid-stride kernel: the 32-bit entry point when the domain,
// the grid's index range and every input's offsets fit in int, else the
// 64-bit one; a row
// kernel (attribute row_kernel) runs one 256-thread block per row, or one warp
// per row (its _wrow entry, _wrow8 when 8 | C and the packs are aligned) when
// rows are short and many.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "backend/cuda/launch.h"
#include "backend/cuda/node_context.h"
#include "ops/pointwise_abi.h"

namespace kiln::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kRowsPerBlock = kThreads / 32;  // warp-per-row entries
constexpr int64_t kWarpRowColumns = 4096;         // longer rows: a block per row

// Every kernel of a loaded library by its name.
Status KernelsByName(cudaLibrary_t lib, std::map<std::string, cudaKernel_t>* out) {
  unsigned count = 0;
  KILN_CUDA_RETURN_IF_ERROR(cudaLibraryGetKernelCount(&count, lib));
  std::vector<cudaKernel_t> kernels(count);
  if (count) KILN_CUDA_RETURN_IF_ERROR(cudaLibraryEnumerateKernels(kernels.data(), count, lib));
  for (cudaKernel_t k : kernels) {
    const char* name = nullptr;
    KILN_CUDA_RETURN_IF_ERROR(cudaFuncGetName(&name, reinterpret_cast<const void*>(k)));
    (*out)[name] = k;
  }
  return Status::Ok();
}

class PointwiseOp final : public GpuOp {
 public:
  PointwiseOp(const Node& n, std::vector<int64_t> modes, std::vector<PwView> views, bool row)
      : node_(n), modes_(std::move(modes)), views_(std::move(views)), row_(row) {}
  ~PointwiseOp() override {
    if (lib_) cudaLibraryUnload(lib_);
  }

  Status Prepare(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, GpuResources& res) override {
    KILN_RETURN_IF_ERROR(Load());
    if (out.empty() || in.size() > KILN_PW_MAX_INPUTS || out.size() > KILN_PW_MAX_OUTPUTS)
      return Internal(node_.Label() + ": inputs/outputs beyond the generated kernel's limits");
    const std::vector<int64_t>& dims = out[0].dims;
    const int rank = static_cast<int>(dims.size());
    if (rank > KILN_PW_MAX_RANK) return Internal(node_.Label() + ": rank beyond the generated kernel's limit");
    for (const DevTensor& o : out)
      if (o.dims != dims) return Internal(node_.Label() + ": outputs of different shapes");
    // The generated source divides by the output's known dims as constants.
    const Shape& built = node_.output(0)->shape();
    bool same = !built.rank_known() || built.rank() == rank;
    for (int d = 0; same && built.rank_known() && d < rank; ++d)
      same = !built[d].known() || built[d].value() == dims[d];
    if (!same)
      return Internal(node_.Label() + ": its generated kernel was made for dims " + built.ToString() +
                      ", not " + DimsToString(dims));
    std::memset(&params_, 0, sizeof params_);
    params_.n = out[0].numel();
    for (int d = 0; d < rank; ++d) params_.dims[d] = dims[d];
    long long reach = params_.n;  // the largest index or offset the kernel forms
    for (size_t k = 0; k < in.size(); ++k) {
      KILN_RETURN_IF_ERROR(Strides(k, in[k], dims));
      long long r = 0;
      for (int d = 0; d < rank; ++d) r += dims[d] * std::llabs(params_.strides[k][d]);
      reach = std::max(reach, r);
    }
    const int64_t cap = std::max<int64_t>(1, static_cast<int64_t>(res.sm_count) * 32);
    if (row_) {  // one block (or warp) per row of the last axis, grid-stride over rows
      const int64_t columns = dims.empty() ? 0 : dims.back();
      const int64_t rows = columns == 0 ? 0 : params_.n / columns;
      // A warp per row when rows are short and there are enough of them for a block of 8 rows per SM:
      // its reductions are shuffles, with no barrier (a 256-thread block per 768-column row spent most of
      // its time in them).
      vkernel_ = nullptr;
      if (kwrow_ && columns <= kWarpRowColumns &&
          rows >= static_cast<int64_t>(res.sm_count) * kRowsPerBlock) {
        blocks_ = static_cast<unsigned>(
            std::max<int64_t>(1, std::min((rows + kRowsPerBlock - 1) / kRowsPerBlock, cap)));
        kernel_ = kwrow_;
        if (kwrow8_ && columns % 8 == 0) {  // eight columns a step (Enqueue checks the packs' alignment)
          vkernel_ = kwrow8_;
          vblocks_ = blocks_;
        }
      } else {
        blocks_ = static_cast<unsigned>(std::max<int64_t>(1, std::min(rows, cap)));
        kernel_ = krow_;
      }
      return Status::Ok();
    }
    const int64_t blocks_needed = (params_.n + kThreads - 1) / kThreads;
    blocks_ = static_cast<unsigned>(std::max<int64_t>(1, std::min(blocks_needed, cap)));
    const int64_t span = reach + static_cast<int64_t>(blocks_) * kThreads;
    kernel_ = span < (int64_t{1} << 31) ? k32_ : k64_;
    vkernel_ = nullptr;
    if (kv32_ && params_.n % 8 == 0) {  // eight elements a thread (Enqueue checks the pointers' alignment)
      const int64_t threads = params_.n / 8;
      vblocks_ =
          static_cast<unsigned>(std::max<int64_t>(1, std::min((threads + kThreads - 1) / kThreads, cap)));
      vkernel_ = reach + static_cast<int64_t>(vblocks_) * kThreads * 8 < (int64_t{1} << 31) ? kv32_ : kv64_;
    }
    return Status::Ok();
  }

  // The eight-element entry reads full inputs and writes outputs in 16-byte packs.
  bool PacksAligned() const {
    auto aligned = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
    for (size_t k = 0; k < modes_.size() && k < KILN_PW_MAX_INPUTS; ++k)
      if (modes_[k] == 0 && params_.in[k] && !aligned(params_.in[k])) return false;
    for (const void* o : params_.out)
      if (o && !aligned(o)) return false;
    return true;
  }

  Status Enqueue(const std::vector<DevTensor>& in, const std::vector<DevTensor>& out, void*, GpuResources&,
                 cudaStream_t stream) override {
    if (params_.n == 0) return Status::Ok();
    for (size_t k = 0; k < in.size(); ++k)
      params_.in[k] = static_cast<const char*>(in[k].data) + base_bytes_[k];
    for (size_t k = 0; k < out.size(); ++k) params_.out[k] = out[k].data;
    void* args[] = {&params_};
    const bool vec = vkernel_ && PacksAligned();
    // Every generated entry starts with KILN_WAIT_PRIOR() (pointwise_prelude.inc): PDL where enabled.
    cudaLaunchAttribute attr;
    const cudaLaunchConfig_t config =
        LaunchConfig(dim3(vec ? vblocks_ : blocks_), dim3(kThreads), 0, stream, &attr);
    return CudaStatus(
        cudaLaunchKernelExC(&config, reinterpret_cast<const void*>(vec ? vkernel_ : kernel_), args),
        "generated pointwise kernel launch");
  }

 private:
  Status Load() {
    if (lib_) return Status::Ok();
    const Attribute* cubin = node_.attr("cubin");
    const Attribute* name = node_.attr("kernel");
    if (!cubin || cubin->s.empty() || !name)
      return Internal(node_.Label() + ": no compiled kernel in the plan (the builder compiles kiln.Pointwise nodes)");
    // The kernel reads the parameter block as the kiln that built it laid it out.
    const Attribute* bytes = node_.attr("params_bytes");
    if (!bytes || bytes->i != static_cast<int64_t>(sizeof(KilnPwParams)))
      return InvalidArgument(node_.Label() + ": its generated kernel takes a parameter block of " +
                             (bytes ? std::to_string(bytes->i) + " bytes" : "an older layout") +
                             ", this kiln passes " + std::to_string(sizeof(KilnPwParams)) +
                             "; rebuild the plan with this kiln");
    KILN_RETURN_IF_ERROR(CudaStatus(cudaLibraryLoadData(&lib_, cubin->s.data(), nullptr, nullptr, 0, nullptr, nullptr, 0),
                                    (node_.Label() + ": loading its generated kernel").c_str()));
    // Entries are looked up among the library's kernels, not by asking for each name: an optional entry a
    // kernel lacks is then no failed CUDA call (compute-sanitizer reports every one).
    std::map<std::string, cudaKernel_t> kernels;
    KILN_RETURN_IF_ERROR(KernelsByName(lib_, &kernels));
    auto entry = [&](const char* suffix) {
      auto it = kernels.find(name->s + suffix);
      return it == kernels.end() ? nullptr : it->second;
    };
    auto missing = [&](const char* suffix) {
      return Internal(node_.Label() + ": its generated kernel has no entry '" + name->s + suffix + "'");
    };
    if (row_) {
      if (!(krow_ = entry("_row"))) return missing("_row");
      kwrow_ = entry("_wrow");
      kwrow8_ = entry("_wrow8");
      if (!kwrow_ || !kwrow8_) kwrow_ = kwrow8_ = nullptr;  // a kernel without the warp-per-row entries
      return Status::Ok();
    }
    if (!(k32_ = entry("_i32"))) return missing("_i32");
    if (!(k64_ = entry("_i64"))) return missing("_i64");
    kv32_ = entry("_v8_i32");
    kv64_ = entry("_v8_i64");
    if (!kv32_ || !kv64_)
      kv32_ = kv64_ = nullptr;  // a kernel whose inputs need coordinates: no eight-element entry
    return Status::Ok();
  }

  // Input k's strides over the output dims (right-aligned; 0 where it
  // broadcasts) through its view, checked against how the kernel indexes it.
  Status Strides(size_t k, const DevTensor& t, const std::vector<int64_t>& out) {
    const std::vector<int64_t>& in = t.dims;
    const int64_t mode = k < modes_.size() ? modes_[k] : 2;
    auto mismatch = [&]() {
      return Internal(node_.Label() + ": input " + std::to_string(k) + " has dims " + DimsToString(in) +
                      ", which its generated kernel cannot read for the output dims " + DimsToString(out));
    };
    if (mode == 0 && in != out) return mismatch();
    if (mode == 1) {
      int64_t n = 1;
      for (int64_t d : in) n *= d;
      if (n != 1) return mismatch();
    }
    const PwView none;
    long long base = 0;
    if (!PointwiseStrides(in, out, params_.strides[k], k < views_.size() ? views_[k] : none, &base))
      return mismatch();
    if (mode == 3 && !PointwiseBlock(in, out, &params_.div[k], &params_.mod[k])) return mismatch();
    base_bytes_[k] = base * static_cast<long long>(ElementSize(t.dtype));
    return Status::Ok();
  }

  const Node& node_;
  std::vector<int64_t> modes_;
  std::vector<PwView> views_;  // per input: the Transposes and Slices read through, or empty
  long long base_bytes_[KILN_PW_MAX_INPUTS] = {};  // per input: its view's first element
  cudaLibrary_t lib_ = nullptr;
  bool row_ = false;
  cudaKernel_t k32_ = nullptr, k64_ = nullptr, krow_ = nullptr, kwrow_ = nullptr, kernel_ = nullptr;
  // Eight elements (columns) a thread: elementwise, row kernels; the one Prepare picked, or none.
  cudaKernel_t kv32_ = nullptr, kv64_ = nullptr, kwrow8_ = nullptr, vkernel_ = nullptr;
  KilnPwParams params_{};
  unsigned blocks_ = 1, vblocks_ = 1;
};

}  // namespace

Expected<std::unique_ptr<GpuOp>> MakePointwiseOp(const GpuOpInfo& info) {
  const Node& n = *info.node;
  const Attribute* body = n.attr("body");
  if (!body || !body->g) return Unsupported(n.Label() + ": kiln.Pointwise without a body");
  std::vector<int64_t> modes;
  if (const Attribute* m = n.attr("input_modes")) modes = m->ints;
  if (n.attr("input_perms"))  // plans before input_views: the perms alone would read Slices wrong
    return Unsupported(n.Label() + ": a generated kernel from an older kiln (input_perms); rebuild the plan");
  std::vector<PwView> views;
  if (const Attribute* v = n.attr("input_views"); v && !DecodePwViews(v->ints, &views))
    return Internal(n.Label() + ": malformed input_views");
  const Attribute* row = n.attr("row_kernel");
  return std::unique_ptr<GpuOp>(new PointwiseOp(n, std::move(modes), std::move(views), row && row->i != 0));
}

}  // namespace kiln::cuda
