// Refit (TensorRT's): swap in the weights of a model with the same
// architecture, without a rebuild. The new ONNX model goes through the plan's
// build passes (BatchNorm folding, fused biases, channels-last weights, FP16
// casts), then every weight is matched to the plan's by name, dtype and shape,
// and the graphs must agree node for node. A mismatch is an error naming the
// first difference (a weight missing or extra, a shape or dtype, a node or an
// attribute), and nothing changes.
//
//   kiln::Status s = kiln::RefitPlan("model.plan", "finetuned.onnx", "finetuned.plan");  // no GPU needed
//   kiln::Status s = kiln::Refit(*engine, "finetuned.onnx");  // in place, on the device
#pragma once

#include <string>

#include "kiln/engine.h"
#include "kiln/status.h"

namespace kiln {

// Rewrites the engine's weights on the device in place. No context of the
// engine may run meanwhile; contexts created before the refit must be
// recreated (they keep host copies of what their kernels read at
// SetInputShape).
Status Refit(Engine& engine, const std::string& onnx_path);
// The plan at `plan_path` with the weights of `onnx_path`, written to
// `out_path` (header, kernels and tactics unchanged).
Status RefitPlan(const std::string& plan_path, const std::string& onnx_path, const std::string& out_path);

}  // namespace kiln
