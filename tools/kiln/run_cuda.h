// The CUDA side of `kiln run --backend cuda`: opens a plan (or builds an ONNX
// model for the given input shapes) and runs it through pinned host buffers.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ops/op_context.h"

namespace kiln::cli {

struct CudaModel {
  std::shared_ptr<const void> engine;  // kiln::Engine, opaque here
  const Model* model = nullptr;        // the engine's IR (input/output declarations)
};

bool IsPlanFile(const std::string& path);
// Ok when this kiln has the CUDA backend and the machine a CUDA device; else why not.
Status CudaDeviceAvailable();
// Loads a plan; its IR declares the inputs the caller must feed.
Expected<CudaModel> LoadPlan(const std::string& path);
// Runs on the GPU. `onnx` is set when the model is an ONNX file (built here for
// the feeds' shapes, `fp16` as asked); otherwise `plan` is used. Outputs come
// back in graph-output order.
Expected<std::vector<RtValue>> RunOnCuda(const CudaModel* plan, const Model* onnx, bool fp16,
                                         const std::map<std::string, RtValue>& feeds);

}  // namespace kiln::cli
