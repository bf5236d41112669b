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

#include <cstdint>
#include <vector>

#include "core/host_device.h"
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
// the node); src/ops/kiln_im2col.cc.
Expected<Im2ColGeometry> Im2ColGeometryOf(const NodeContext& ctx, const std::vector<int64_t>& x);

// The element of X that A's element `i` (row-major over [N,OH,OW,columns])
// copies, or -1 for a zero.
KILN_HOST_DEVICE inline int64_t Im2ColSource(const Im2ColGeometry& g, int64_t i) {
  const int64_t j = i % g.columns, pixel = i / g.columns;
  if (j >= g.kh * g.kw * g.c) return -1;
  const int64_t ch = j % g.c, tap = j / g.c;
  const int64_t s = tap % g.kw, r = tap / g.kw;
  const int64_t ox = pixel % g.ow, rest = pixel / g.ow;
  const int64_t oy = rest % g.oh, b = rest / g.oh;
  const int64_t iy = oy * g.sh - g.pt + r * g.dh, ix = ox * g.sw - g.pl + s * g.dw;
  if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) return -1;
  return g.channels_last ? ((b * g.h + iy) * g.w + ix) * g.c + ch : ((b * g.c + ch) * g.h + iy) * g.w + ix;
}

}  // namespace kiln
