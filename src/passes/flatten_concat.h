// Nested Concats on one axis become one: Concat(a, Concat(b, c), d) → Concat(a, b, c, d), and the inner
// Concat's copy of its inputs goes. A torch.cat of a list that holds another torch.cat's result is written
// so by exporters that keep both (torch 1.13's TorchScript export already flattens torchvision's InceptionE
// blocks: Inception-v3 has 11 Concats either way). Only where the inner output is a link of the chain alone
// (one use, by the outer Concat, no graph output); axes compare after negative ones are resolved by rank.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunFlattenConcat(Model& model, PassContext& ctx);

}  // namespace kiln
