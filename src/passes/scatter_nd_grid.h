// Simplifier pass: a ScatterND whose indices list every position of its data, each once and in place, is its
// updates. torch.onnx writes a slice assignment `x[:, :, :, :n] = y` as ScatterND with indices built from one
// broadcast arange per axis: Concat(Unsqueeze(Expand(arange_k, grid), -1) for k, axis -1). When the slices
// cover the whole tensor (HF Llama/Mistral/Qwen's 4-D causal mask, `mask[:, :, :, :seq] = masked`), the
// ScatterND and its index grid (int64, 4 × the mask's elements: 268 MB at batch 32 and 512 tokens) go away.
//
// Each component k must be the coordinate along grid axis k: a constant arange 0..n-1 along one axis (1
// elsewhere), a constant 0 on an axis of extent 1, or Range(0, n, 1) reshaped onto one axis; the grid's axes
// must be data's leading axes, and updates must have data's shape. Reduction "none" only.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunScatterNdGrid(Model& model, PassContext& ctx);

}  // namespace kiln
