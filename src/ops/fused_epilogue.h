// The matrix-product epilogue of kiln's fused ops (ops/kiln_fused.cc):
//   Y = act(product + bias + Z)
// with bias a 1-D vector of one value per column (optional), Z a residual of
// the product's shape (optional) and act the "activation" attribute, "" or
// "Relu" (the cuBLASLt epilogues). Shared by kiln.FusedMatMul and kiln.F8MatMul
// (ops/kiln_f8.cc), whose bias and Z sit at different input positions.
#pragma once

#include <cstddef>
#include <limits>

#include "ops/op_context.h"

namespace kiln {
namespace ops {

// The fused ops' activation attribute (kiln_fused.cc): "activation", with activation_min / activation_max
// for "Clip", activation_alpha / activation_beta for "HardSigmoid" and activation_alpha (the negative
// slope) for "LeakyRelu".
enum class ActKind {
  kNone,
  kRelu,
  kClip,
  kSigmoid,
  kSwish,
  kHardSwish,
  kHardSigmoid,
  kGeluTanh,
  kGelu,
  kLeakyRelu
};

struct Activation {
  ActKind kind = ActKind::kNone;
  float min = -std::numeric_limits<float>::infinity();  // Clip's bounds
  float max = std::numeric_limits<float>::infinity();
  float alpha = 0.2f, beta = 0.5f;  // HardSigmoid's; alpha is LeakyRelu's slope (default 0.01) too
};

// The activation attributes. FusedConv and the INT8 ops (conv = true) take every kind but GeluTanh; the
// products (FusedMatMul, F8MatMul) "", "Relu" and "GeluTanh" (cuBLASLt's epilogues: its GELU is the tanh
// form).
Expected<Activation> ReadActivation(const NodeContext& ctx, bool conv);

// act(v) in float32, as the unfused ops' references compute it (Relu and Clip pass NaN; Swish is Sigmoid,
// then Mul).
float ActivateFloat(float v, const Activation& act);

// Checks the epilogue's inputs and attribute at shape inference. `n`: the
// product's column count (unknown allowed); `type`: the product's element type
// (kUndefined when not known yet), which bias and Z must share. Call after the
// product's output is set (Z is checked against it).
Status InferProductEpilogue(InferContext& ctx, size_t bias_at, size_t z_at, const Dim& n, DataType type);

// Applies the epilogue to the product `y` in place, rounding to y's storage
// type after each step exactly as the unfused Add, Add and Relu do.
Status RunProductEpilogue(RunContext& ctx, Tensor* y, size_t bias_at, size_t z_at);

}  // namespace ops
}  // namespace kiln
