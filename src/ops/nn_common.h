// Helpers shared by the nn family's files (not a public contract): window
// geometry of the spatial ops (Conv*, pools, Col2Im) with auto_pad and
// ceil_mode, symbolic output extents, compute-type buffers for float16 /
// bfloat16, and im2col / col2im.
#pragma once

#include <string>
#include <type_traits>
#include <vector>

#include "ops/op_util.h"

namespace kiln {
namespace nn {

// Sliding-window attributes over `kernel.size()` spatial dims. pads holds the
// begin pads of every dim, then the end pads (ONNX order).
struct Window {
  std::vector<int64_t> kernel;
  std::vector<int64_t> strides;
  std::vector<int64_t> dilations;
  std::vector<int64_t> pads;
  std::string auto_pad = "NOTSET";  // NOTSET, SAME_UPPER, SAME_LOWER, VALID
  bool ceil_mode = false;           // pools only

  size_t rank() const { return kernel.size(); }
  // Extent of the dilated kernel along dim i.
  int64_t span(size_t i) const { return (kernel[i] - 1) * dilations[i] + 1; }
};

// Reads kernel_shape, strides, dilations, pads, auto_pad and (when `pool`)
// ceil_mode for `nsp` spatial dims, checking sizes and signs. `kernel` is the
// kernel taken from the weights (Conv); it is used when kernel_shape is absent
// and must agree with it when both are known (pass {} when unknown).
Status ReadWindow(const NodeContext& ctx, size_t nsp, const std::vector<int64_t>& kernel, bool pool,
                  Window* w);

// Output extents for known input extents; resolves w->pads for SAME_* /
// VALID. Errors when a window does not fit.
Status ResolveWindow(const NodeContext& ctx, const std::vector<int64_t>& in, Window* w,
                     std::vector<int64_t>* out);

// Output extent of spatial dim i for a possibly symbolic input extent
// (unknown where it cannot be expressed, e.g. ceil_mode on a symbol).
Dim WindowOutDim(const Window& w, size_t i, const Dim& in);

// d + c for a constant c of any sign (Dim has no negative constants).
Dim AddConst(const Dim& d, int64_t c);

// The spatial dims (all after the first two) of an [N, C, spatial...] tensor.
std::vector<int64_t> SpatialDims(const Tensor& t);
int64_t Product(const std::vector<int64_t>& v);

// Elements of a tensor of storage type T as compute_t<T> (float for float16
// and bfloat16): a view of the tensor's memory when the types agree, else a
// converted copy.
template <class T>
class ComputeView {
 public:
  using C = compute_t<T>;
  explicit ComputeView(const Tensor& t) {
    const T* p = t.data<T>();
    if constexpr (std::is_same_v<T, C>) {
      data_ = p;
    } else {
      copy_.resize(static_cast<size_t>(t.numel()));
      for (size_t i = 0; i < copy_.size(); ++i) copy_[i] = ToCompute(p[i]);
      data_ = copy_.data();
    }
  }
  const C* data() const { return data_; }
  C operator[](int64_t i) const { return data_[i]; }

 private:
  const C* data_ = nullptr;
  std::vector<C> copy_;
};

// Writes compute-type values into a tensor of storage type T, rounding.
template <class T>
void StoreCompute(const compute_t<T>* src, int64_t n, Tensor* out) {
  T* dst = out->mutable_data<T>();
  for (int64_t i = 0; i < n; ++i) dst[i] = FromCompute<T>(src[i]);
}

// im2col for one image of `channels` channels with spatial extents `in`:
// col[(c * K + kidx) * O + o] = x[c, o*stride - pad_begin + kpos*dilation]
// (0 outside the image), where K = prod(kernel) and O = prod(out).
template <class T>
void Im2Col(const T* x, int64_t channels, const std::vector<int64_t>& in, const std::vector<int64_t>& out,
            const Window& w, T* col);

// col2im (the adjoint of Im2Col): adds col[(c * K + kidx) * O + o] into
// x[c, o*stride - pad_begin + kpos*dilation] when inside the image. `out`
// here is the grid of window positions; x must be zeroed (or hold a bias).
template <class T>
void Col2Im(const T* col, int64_t channels, const std::vector<int64_t>& image,
            const std::vector<int64_t>& out, const Window& w, T* x);

// Geometry of a convolution X [N, C, in...] * W [M, C/group, kernel...],
// checked against each other and the attributes (implemented in nn_conv_plan.cc).
struct ConvGeom {
  int64_t n = 0, cin = 0, m = 0, group = 1;
  std::vector<int64_t> in, out;
  Window w;
  int64_t in_size() const { return Product(in); }
  int64_t out_size() const { return Product(out); }
};
Status PrepareConv(const NodeContext& ctx, const Tensor& x, const Tensor& w, ConvGeom* g);

// Y [N, M, out...] = conv(X, W) without bias, in compute type C (float,
// double, int32_t): im2col + Gemm per image and group (depthwise: direct).
template <class C>
void ConvForward(const ConvGeom& g, const C* x, const C* w, C* y);

// Output type of a Conv-like op: [N, M, out...] from X (input xi) and W
// (input wi), symbolic dims kept.
Status InferConvOutput(InferContext& ctx, size_t xi, size_t wi, DataType out_dtype);

// ConvTranspose attributes beyond the window: output_padding and the explicit
// output_shape (spatial part; empty when absent). Shared by the CPU reference
// and the CUDA op (nn_conv_plan.cc).
struct TransposeAttrs {
  Window w;
  std::vector<int64_t> output_padding;
  std::vector<int64_t> output_shape;
  int64_t group = 1;
};

Status ReadTransposeAttrs(const NodeContext& ctx, size_t nsp, const std::vector<int64_t>& kernel,
                          TransposeAttrs* a);
// Output extents and the begin/end pads actually used (as ONNX Runtime: an
// explicit output_shape overrides pads; SAME_* gives in * stride).
Status ResolveTranspose(const NodeContext& ctx, const std::vector<int64_t>& in, TransposeAttrs* a,
                        std::vector<int64_t>* out);

}  // namespace nn
}  // namespace kiln
