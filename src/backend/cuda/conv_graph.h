// A channels-last 2-D convolution with its epilogue in one cuDNN graph
// (cudnn-frontend's graph API, runtime-fused engines):
//   y = act(conv(x, w) + bias + z)
// for float16/bfloat16 NHWC tensors, group 1, any activation of activation.h
// (ReLU, Clip, Sigmoid, Swish). The legacy API (conv.cc) fuses only ReLU, and
// only with IMPLICIT_PRECOMP_GEMM for the identity; every other activation
// costs it one more pass over the output.
//
// The INT8 form (dtype kInt8; kiln.QConvNhwc's requantizing epilogue):
//   y = sat_int8(act(conv(x, w) · scale[k] + bias[k] + z · z_scale))
// int8 x, w, z and y, int32 accumulation, float32 scale [K] and bias [K] (in
// y's scale), a float32 scalar z_scale; act none, ReLU or SiLU.
//
// Prepare times the first few engines cuDNN's heuristics offer on scratch
// buffers and keeps the fastest; the choice (its index in the heuristics'
// list) goes into the tactic cache, so a plan loaded later builds that engine
// without timing. Without cudnn-frontend's headers (KILN_HAS_CUDNN_FRONTEND)
// Prepare returns Unsupported and conv.cc keeps the legacy path.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/activation.h"
#include "backend/cuda/gpu_op.h"

namespace kiln::cuda {

struct ConvGraphShape {
  // Logical N,C,H,W extents (stored N,H,W,C); w is [K, C, R, S] stored [K, R, S, C].
  std::vector<int64_t> x, w, y;
  std::vector<int64_t> pads, strides, dilations;  // 2 each
  DataType dtype = DataType::kFloat16;
  bool bias = false;  // [K]
  bool z = false;     // the residual, y's shape
  bool z_after_act = false;  // act(conv + bias) + z instead of act(conv + bias + z)
  ActivationSpec act;
  // kInt8 only: x, w, z, y int8; scale and z_scale float32 (RunInt8).
};

class ConvGraph {
 public:
  ConvGraph();
  ~ConvGraph();
  ConvGraph(const ConvGraph&) = delete;
  ConvGraph& operator=(const ConvGraph&) = delete;

  // Builds the graph for `s`; Unsupported when cuDNN has no engine for it.
  // `time_ms` gets the chosen engine's timed cost (or the cached one). The
  // caller that then runs it records the node's use of key() (TacticCache::Use).
  Status Prepare(const ConvGraphShape& s, GpuResources& res, float* time_ms);
  size_t WorkspaceBytes() const { return workspace_; }
  // The tactic cache entry of the last Prepare.
  const std::string& key() const { return key_; }
  Status Run(const void* x, const void* w, const void* bias, const void* z, void* y, void* workspace,
             GpuResources& res, cudaStream_t stream) const;
  // The INT8 form: scale [K] and bias [K] float32, z int8 (or null) at the float32 scalar *z_scale.
  Status RunInt8(const void* x, const void* w, const float* scale, const float* bias, const void* z,
                 const float* z_scale, void* y, void* workspace, GpuResources& res,
                 cudaStream_t stream) const;

  struct Impl;  // the built graph and its engine (conv_graph.cc)

 private:
  std::shared_ptr<const Impl> impl_;  // shared by the layers of one geometry
  size_t workspace_ = 0;
  std::string key_;
};

}  // namespace kiln::cuda
