// An inference-mode BatchNormalization as the per-channel affine map it computes, y = x·s + t, read from its
// constant parameters (shared by the passes that fold it into a neighbour: fuse_batchnorm, fold_prenorm).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "ir/graph.h"

namespace kiln::passes {

struct BnParams {
  std::vector<double> scale;  // s = gamma / sqrt(var + eps)
  std::vector<double> shift;  // t = beta - mean * s
};

// The map of `bn` (opset `opset`; its extra outputs unused in `root`), or nothing when a parameter is not
// constant, it trains, or its sizes disagree.
std::optional<BnParams> ReadBn(Graph& root, const Node& bn, int64_t opset);

// w with its slices along `axis` scaled by s (w has s.size() of them), or nothing when w is no float tensor
// of that many.
std::optional<Tensor> ScaleAlong(const Tensor& w, int axis, const std::vector<double>& s);

}  // namespace kiln::passes
