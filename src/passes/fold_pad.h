// Zero padding folded into the op after it, when the Pad's output has no other user:
//   Pad(x, pads, 0) [mode constant, spatial axes only, pads >= 0] → Conv            ⇒ Conv(pads + pads')
//   Pad(x, pads, 0) → AveragePool [its own pads 0, or count_include_pad 1; ceil_mode 0]
//                                                        ⇒ AveragePool(pads + pads', count_include_pad 1)
// torch writes avg_pool2d(padding=p) as Pad + AveragePool (Inception-v3: 9 of them), tf2onnx writes
// "SAME" convolutions as Pad + Conv; each Pad was a kernel and a copy of its input. The padded zeros are
// what both ops read at their pads (AveragePool counts them, as count_include_pad does). auto_pad must be
// NOTSET; a Pad with an `axes` input is left alone.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunFoldPad(Model& model, PassContext& ctx);

}  // namespace kiln
