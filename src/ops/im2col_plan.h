// kiln.Im2Col's geometry and element map, shared by the CPU reference
// (src/ops/kiln_im2col.cc) and the CUDA kernel (src/backend/cuda/im2col.cu),
// so both gather the same taps.
//
//   A = kiln.Im2Col(X)   X [N,H,W,C] (channels_last = 1) or [N,C,H,W] (0);
//                        A [N,OH,OW,columns]:
//   A[n,oh,ow,(r·S + s)·C + c] = X[n, c, oh·sh − pt + r·dh, ow·sw − pl + s·dw]
//                                (0 outside X), and A[..., j] = 0 for j ≥ R·S·C.
//
// So a convolution with weights laid out [K, R, S, C] (zero-padded to
// `columns`) is the matrix product A[N·OH·OW, columns] · Wᵀ, channels last.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/host_device.h"
#include "ops/nn_common.h"
#include "ops/op_context.h"

namespace kiln {

struct Im2ColGeometry {
  int64_t n = 0, c = 0, h = 0, w = 0;  // X's batch, channels, height, width
  int64_t oh = 0, ow = 0;              // output pixels
  int64_t kh = 1, kw = 1;              // R, S
  int64_t sh = 1, sw = 1, pt = 0, pl = 0, dh = 1, dw = 1;
  int64_t columns = 0;  // ≥ kh·kw·c
  bool channels_last = true;

  KILN_HOST_DEVICE int64_t taps() const { return kh * kw * c; }
  KILN_HOST_DEVICE int64_t elements() const { return n * oh * ow * columns; }
};

// The node's geometry for X of dims `x` (its attributes checked, errors naming
// the node); src/ops/im2col_plan.cc.
Expected<Im2ColGeometry> Im2ColGeometryOf(const NodeContext& ctx, const std::vector<int64_t>& x);

// The node's attributes, read for the geometry and by the CPU reference
// (src/ops/kiln_im2col.cc); src/ops/im2col_plan.cc.
namespace im2col {

struct Im2ColAttrs {
  nn::Window window;
  int64_t columns = 0;  // 0: R·S·C
  bool channels_last = true;
  DataType to = DataType::kUndefined;  // kUndefined: X's type
};

Expected<Im2ColAttrs> ReadAttrs(const NodeContext& ctx);

// A's element type for X of type `x`.
Expected<DataType> OutputType(const NodeContext& ctx, const Im2ColAttrs& a, DataType x);

// X's (channels, height, width) positions in its dims.
struct Axes {
  size_t c, h, w;
};
inline Axes AxesOf(bool channels_last) { return channels_last ? Axes{3, 1, 2} : Axes{1, 2, 3}; }

}  // namespace im2col

// The element of X that tap (r, s) of channel ch at output pixel (b, oy, ox)
// reads, or -1 in the padding. I: the index type; G: Im2ColGeometry, or a
// narrower copy with its field names (the CUDA kernels' 32-bit one).
template <class I, class G>
KILN_HOST_DEVICE inline I Im2ColTap(const G& g, I b, I oy, I ox, I r, I s, I ch) {
  const I iy = oy * I(g.sh) - I(g.pt) + r * I(g.dh), ix = ox * I(g.sw) - I(g.pl) + s * I(g.dw);
  if (iy < 0 || iy >= I(g.h) || ix < 0 || ix >= I(g.w)) return -1;
  return g.channels_last ? ((b * I(g.h) + iy) * I(g.w) + ix) * I(g.c) + ch
                         : ((b * I(g.c) + ch) * I(g.h) + iy) * I(g.w) + ix;
}

// The element of X that A's element `i` (row-major over [N,OH,OW,columns])
// copies, or -1 for a zero.
template <class I, class G>
KILN_HOST_DEVICE inline I Im2ColSourceAt(const G& g, I i) {
  const I j = i % I(g.columns), pixel = i / I(g.columns);
  if (j >= I(g.kh) * I(g.kw) * I(g.c)) return -1;
  const I ch = j % I(g.c), tap = j / I(g.c);
  const I s = tap % I(g.kw), r = tap / I(g.kw);
  const I ox = pixel % I(g.ow), rest = pixel / I(g.ow);
  const I oy = rest % I(g.oh), b = rest / I(g.oh);
  return Im2ColTap<I>(g, b, oy, ox, r, s, ch);
}

KILN_HOST_DEVICE inline int64_t Im2ColSource(const Im2ColGeometry& g, int64_t i) {
  return Im2ColSourceAt<int64_t>(g, i);
}

}  // namespace kiln
