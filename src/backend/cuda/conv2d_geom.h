// The 2-D NCHW convolution geometry of kiln's direct integer kernels: kiln.QConv (qgemm.cu) and ONNX's
// ConvInteger (integer_ops.cu), read from the operands' dims by the CPU reference's nn::PrepareConv (so the
// attributes, checks and error messages are the reference's).
#pragma once

#include <cstdint>

#include "backend/cuda/node_context.h"
#include "ops/nn_common.h"

namespace kiln::cuda {

struct Conv2d {
  int64_t n, c, h, w, m, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, group;
};

// x [N, C, H, W] and w [M, C/group, kh, kw] (dims only; no data is read).
inline Status Conv2dOf(const GpuNodeContext& ctx, const DevTensor& x, const DevTensor& w, Conv2d* g) {
  const Tensor xs = Tensor::Borrow(x.dtype, x.dims, nullptr, nullptr);
  const Tensor ws = Tensor::Borrow(w.dtype, w.dims, nullptr, nullptr);
  nn::ConvGeom geo;
  KILN_RETURN_IF_ERROR(nn::PrepareConv(ctx, xs, ws, &geo));
  const nn::Window& win = geo.w;
  *g = Conv2d{geo.n,       geo.cin,          geo.in[0],        geo.in[1],      geo.m,          geo.out[0],
              geo.out[1],  win.kernel[0],    win.kernel[1],    win.strides[0], win.strides[1], win.pads[0],
              win.pads[1], win.dilations[0], win.dilations[1], geo.group};
  return Status::Ok();
}

}  // namespace kiln::cuda
