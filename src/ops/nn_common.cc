// Window geometry, im2col and col2im for the nn family (see nn_common.h).
#include "ops/nn_common.h"

#include <algorithm>
#include <cstring>

#include "core/half.h"

namespace kiln {
namespace nn {
namespace {

std::string Join(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

int64_t CeilDiv(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

// The range [lo, hi) of positions o in [0, n) for which base + o*stride lies
// in [0, size).
void ValidRange(int64_t base, int64_t stride, int64_t size, int64_t n, int64_t* lo, int64_t* hi) {
  *lo = base >= 0 ? 0 : std::min(n, CeilDiv(-base, stride));
  *hi = base >= size ? 0 : std::min(n, CeilDiv(size - base, stride));
  if (*hi < *lo) *hi = *lo;
}

// Walks the window rows of one (channel, kernel position) pair: for every
// output position of all spatial dims but the last, calls
// row(o_outer, valid, in_offset_of_row_start, base_last) where base_last is
// the input coordinate of output column 0 along the last dim.
template <class F>
void ForEachWindowRow(const std::vector<int64_t>& in, const std::vector<int64_t>& out, const Window& w,
                      const std::vector<int64_t>& kpos, F&& row) {
  const size_t nd = in.size();
  int64_t outer = 1;
  for (size_t d = 0; d + 1 < nd; ++d) outer *= out[d];
  std::vector<int64_t> opos(nd, 0);
  const int64_t base_last = -w.pads[nd - 1] + kpos[nd - 1] * w.dilations[nd - 1];
  for (int64_t o = 0; o < outer; ++o) {
    bool valid = true;
    int64_t off = 0;
    for (size_t d = 0; d + 1 < nd; ++d) {
      const int64_t ip = opos[d] * w.strides[d] - w.pads[d] + kpos[d] * w.dilations[d];
      if (ip < 0 || ip >= in[d]) valid = false;
      off = off * in[d] + ip;
    }
    row(o, valid, off * in[nd - 1], base_last);
    for (size_t d = nd - 1; d-- > 0;) {
      if (++opos[d] < out[d]) break;
      opos[d] = 0;
    }
  }
}

void DecodeIndex(int64_t idx, const std::vector<int64_t>& dims, std::vector<int64_t>* pos) {
  for (size_t d = dims.size(); d-- > 0;) {
    (*pos)[d] = idx % dims[d];
    idx /= dims[d];
  }
}

}  // namespace

int64_t Product(const std::vector<int64_t>& v) {
  int64_t p = 1;
  for (int64_t x : v) p *= x;
  return p;
}

std::vector<int64_t> SpatialDims(const Tensor& t) {
  return std::vector<int64_t>(t.dims().begin() + std::min<size_t>(2, t.dims().size()), t.dims().end());
}

Dim AddConst(const Dim& d, int64_t c) { return c >= 0 ? d + Dim(c) : d - Dim(-c); }

Status ReadWindow(const NodeContext& ctx, size_t nsp, const std::vector<int64_t>& kernel, bool pool,
                  Window* w) {
  if (ctx.has_attr("kernel_shape")) {
    w->kernel = ctx.attr_ints("kernel_shape");
    if (w->kernel.size() != nsp)
      return ctx.Error("kernel_shape " + Join(w->kernel) + " must have " + std::to_string(nsp) + " values");
    if (!kernel.empty() && kernel != w->kernel)
      return ctx.Error("kernel_shape " + Join(w->kernel) + " does not match the weight's kernel " +
                       Join(kernel));
  } else if (!kernel.empty()) {
    w->kernel = kernel;
  } else {
    return ctx.Error("kernel_shape is required");
  }
  // Bounded so that window arithmetic ((k - 1) * d + 1, pads + extents) cannot overflow int64.
  constexpr int64_t kMax = int64_t{1} << 31;
  for (int64_t k : w->kernel)
    if (k <= 0 || k > kMax) return ctx.Error("kernel_shape " + Join(w->kernel) + " must be in [1, 2^31]");

  auto read = [&](const char* name, size_t n, int64_t def, int64_t min, std::vector<int64_t>* v) -> Status {
    *v = ctx.attr_ints(name);
    if (v->empty()) v->assign(n, def);
    if (v->size() != n)
      return ctx.Error(std::string(name) + " " + Join(*v) + " must have " + std::to_string(n) + " values");
    for (int64_t x : *v)
      if (x < min || x > kMax)
        return ctx.Error(std::string(name) + " " + Join(*v) + " must be in [" + std::to_string(min) + ", 2^31]");
    return Status::Ok();
  };
  KILN_RETURN_IF_ERROR(read("strides", nsp, 1, 1, &w->strides));
  KILN_RETURN_IF_ERROR(read("dilations", nsp, 1, 1, &w->dilations));
  KILN_RETURN_IF_ERROR(read("pads", 2 * nsp, 0, 0, &w->pads));
  w->auto_pad = ctx.attr_string("auto_pad", "NOTSET");
  if (w->auto_pad.empty()) w->auto_pad = "NOTSET";
  if (w->auto_pad != "NOTSET" && w->auto_pad != "SAME_UPPER" && w->auto_pad != "SAME_LOWER" &&
      w->auto_pad != "VALID")
    return ctx.Error("unknown auto_pad '" + w->auto_pad + "'");
  w->ceil_mode = pool && ctx.attr_int("ceil_mode", 0) != 0;
  return Status::Ok();
}

Status ResolveWindow(const NodeContext& ctx, const std::vector<int64_t>& in, Window* w,
                     std::vector<int64_t>* out) {
  const size_t nd = w->rank();
  if (in.size() != nd)
    return ctx.Error("input has " + std::to_string(in.size()) + " spatial dims, window " +
                     std::to_string(nd));
  out->assign(nd, 0);
  for (size_t i = 0; i < nd; ++i) {
    const int64_t s = w->strides[i];
    const int64_t span = w->span(i);
    int64_t& pb = w->pads[i];
    int64_t& pe = w->pads[nd + i];
    if (w->auto_pad == "SAME_UPPER" || w->auto_pad == "SAME_LOWER") {
      (*out)[i] = CeilDiv(in[i], s);
      const int64_t total = std::max<int64_t>(0, ((*out)[i] - 1) * s + span - in[i]);
      pb = w->auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      pe = total - pb;
      continue;
    }
    if (w->auto_pad == "VALID") pb = pe = 0;
    const int64_t num = in[i] + pb + pe - span;
    if (num < 0)
      return ctx.Error("window of extent " + std::to_string(span) + " does not fit spatial dim " +
                       std::to_string(i) + " of size " + std::to_string(in[i]) + " with pads " +
                       Join(w->pads));
    int64_t o = (w->ceil_mode ? CeilDiv(num, s) : num / s) + 1;
    // A window must start inside the input or its begin pad (PyTorch, ORT).
    if (w->ceil_mode && (o - 1) * s >= in[i] + pb) --o;
    (*out)[i] = o;
  }
  return Status::Ok();
}

Dim WindowOutDim(const Window& w, size_t i, const Dim& in) {
  const int64_t s = w.strides[i];
  const bool same = w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER";
  const int64_t pb = w.auto_pad == "VALID" ? 0 : w.pads[i];
  const int64_t pads = w.auto_pad == "VALID" ? 0 : w.pads[i] + w.pads[w.rank() + i];
  if (in.known()) {
    if (same) return Dim(CeilDiv(in.value(), s));
    const int64_t num = in.value() + pads - w.span(i);
    if (num < 0) return Dim::Unknown();
    int64_t o = (w.ceil_mode ? CeilDiv(num, s) : num / s) + 1;
    if (w.ceil_mode && (o - 1) * s >= in.value() + pb) --o;
    return Dim(o);
  }
  if (!in.symbolic()) return Dim::Unknown();
  if (same) return AddConst(in, s - 1).FloorDiv(Dim(s));
  // ceil_mode's rounding and last-window rule need the value, unless trivial.
  if (w.ceil_mode && (s != 1 || pads - pb >= w.span(i))) return Dim::Unknown();
  const int64_t c = pads - w.span(i);
  if (s == 1) return AddConst(in, c + 1);
  return AddConst(AddConst(in, c).FloorDiv(Dim(s)), 1);
}

template <class T>
void Im2Col(const T* x, int64_t channels, const std::vector<int64_t>& in, const std::vector<int64_t>& out,
            const Window& w, T* col) {
  const size_t nd = in.size();
  const int64_t in_size = Product(in);
  const int64_t out_size = Product(out);
  const int64_t ksize = Product(w.kernel);
  const int64_t in_last = in[nd - 1];
  const int64_t out_last = out[nd - 1];
  const int64_t s_last = w.strides[nd - 1];
  std::vector<int64_t> kpos(nd);
  for (int64_t c = 0; c < channels; ++c) {
    const T* xc = x + c * in_size;
    for (int64_t k = 0; k < ksize; ++k) {
      DecodeIndex(k, w.kernel, &kpos);
      T* rowbase = col + (c * ksize + k) * out_size;
      ForEachWindowRow(in, out, w, kpos, [&](int64_t o, bool valid, int64_t off, int64_t base) {
        T* dst = rowbase + o * out_last;
        int64_t lo = 0, hi = 0;
        if (valid) ValidRange(base, s_last, in_last, out_last, &lo, &hi);
        for (int64_t j = 0; j < lo; ++j) dst[j] = T(0);
        const T* src = xc + off + base;
        if (s_last == 1) {
          if (hi > lo) std::memcpy(dst + lo, src + lo, static_cast<size_t>(hi - lo) * sizeof(T));
        } else {
          for (int64_t j = lo; j < hi; ++j) dst[j] = src[j * s_last];
        }
        for (int64_t j = hi; j < out_last; ++j) dst[j] = T(0);
      });
    }
  }
}

template <class T>
void Col2Im(const T* col, int64_t channels, const std::vector<int64_t>& image,
            const std::vector<int64_t>& out, const Window& w, T* x) {
  const size_t nd = image.size();
  const int64_t in_size = Product(image);
  const int64_t out_size = Product(out);
  const int64_t ksize = Product(w.kernel);
  const int64_t in_last = image[nd - 1];
  const int64_t out_last = out[nd - 1];
  const int64_t s_last = w.strides[nd - 1];
  std::vector<int64_t> kpos(nd);
  for (int64_t c = 0; c < channels; ++c) {
    T* xc = x + c * in_size;
    for (int64_t k = 0; k < ksize; ++k) {
      DecodeIndex(k, w.kernel, &kpos);
      const T* rowbase = col + (c * ksize + k) * out_size;
      ForEachWindowRow(image, out, w, kpos, [&](int64_t o, bool valid, int64_t off, int64_t base) {
        if (!valid) return;
        const T* src = rowbase + o * out_last;
        int64_t lo = 0, hi = 0;
        ValidRange(base, s_last, in_last, out_last, &lo, &hi);
        T* dst = xc + off + base;
        for (int64_t j = lo; j < hi; ++j) dst[j * s_last] += src[j];
      });
    }
  }
}

#define KILN_NN_INSTANTIATE(T)                                                                         \
  template void Im2Col<T>(const T*, int64_t, const std::vector<int64_t>&, const std::vector<int64_t>&, \
                          const Window&, T*);                                                          \
  template void Col2Im<T>(const T*, int64_t, const std::vector<int64_t>&, const std::vector<int64_t>&, \
                          const Window&, T*);
KILN_NN_INSTANTIATE(float)
KILN_NN_INSTANTIATE(double)
KILN_NN_INSTANTIATE(int32_t)
KILN_NN_INSTANTIATE(int64_t)
#undef KILN_NN_INSTANTIATE

}  // namespace nn
}  // namespace kiln
