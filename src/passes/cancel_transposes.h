// Build pass (run by RunBuildPasses after layout_nhwc): a Transpose, a chain
// of elementwise ops each reading the previous one and constants, and the
// inverse Transpose,
//   T⁻¹(E_k(… E_1(T(x), c_1) …, c_k)),
// become the chain on x with each constant permuted (padded to the chain's
// rank, then T⁻¹'s permutation): no copy either way. ConvNeXt permutes its
// channels-last MLP output back to NCHW for the layer scale Mul, and the
// channels-last layout then permutes the product back for the residual Add:
// two copies of the activation a block. Unary ops, and binary ops whose other
// operand is a constant of rank at most the chain's; single uses along the
// chain (T itself may have other readers: it stays for them).
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunCancelTransposes(Model& model, PassContext& ctx);

}  // namespace kiln
