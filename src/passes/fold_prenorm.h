// Simplifier pass: an inference-mode BatchNormalization read only by a convolution that pads nothing folds
// into the convolution's weights and bias (the BN before the op, where fuse_batchnorm folds the one after):
//   Conv(BN(x), W, b)  ⇒  Conv(x, W·s, b + Σ W·t)
// with s, t the BN's per-channel scale and shift (batchnorm_params.h) applied along W's input channels
// (per group), and the bias gaining each output channel's sum of its weights times the shifts, in double,
// rounded once to the weights' type. Exact in real arithmetic only when every tap reads x: no padding
// (pads 0, auto_pad NOTSET or VALID), where a padded zero would have read t. MaxViT's MBConv blocks
// normalise their input before the 1x1 expansion (`pre_norm`): 11 passes over the activations at
// every batch size.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunFoldPrenorm(Model& model, PassContext& ctx);

}  // namespace kiln
