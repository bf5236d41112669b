// The FP16 precision pass of `kiln build --fp16`: float32 weights and
// activations become float16; graph inputs and outputs keep their float32
// type through Cast nodes at the edges, so callers see the same interface.
// Kernels still accumulate in FP32 (and Softmax/LayerNorm/reductions compute
// in FP32 internally). The FP32 islands (passes/fp32_islands.h: decomposed
// norms and softmax, sums of squares, exponentials, large sums) keep float32,
// with Casts where they meet the FP16 graph.
#pragma once

#include <vector>

#include "passes/fp32_islands.h"
#include "passes/pass.h"

namespace kiln {

struct Fp16Options {
  // Keep the overflow-prone subgraphs that passes/fp32_islands.h finds in
  // FP32, with Casts at their boundaries (false: everything float16).
  bool fp32_islands = true;
  Fp32IslandOptions islands;
  // When given, receives the nodes that stayed FP32 and why (node labels are
  // taken before the pass; the nodes stay alive in the model).
  std::vector<Fp32Node>* report = nullptr;
};

// The reason Fp16Options::report gives for the nodes of INT8 layers
// (kiln.QConv/QMatMul, Quantize/DequantizeLinear), which keep their FP32
// scales and epilogues: the build's precision report lists those layers as
// INT8, not as FP32 islands.
inline constexpr const char* kQuantizedLayerReason = "quantized layer (FP32 scales and epilogue)";

Status RunConvertToFp16(Model& model, PassContext& ctx, const Fp16Options& options);
// With the default options.
Status RunConvertToFp16(Model& model, PassContext& ctx);

}  // namespace kiln
