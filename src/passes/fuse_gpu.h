// Build-time fusion for the CUDA engine (run by RunBuildPasses after the
// simplifier, before the precision pass). Rewrites, into kiln's internal ops
// (src/ops/defs/kiln.def):
//   Conv [→ Add(·, Z)] → act           ⇒ FusedConv(X, W, B [, Z], activation=act)
//     act: Relu; Sigmoid; Clip(min, max) ⇒ "Clip", activation_min/max (floats,
//     -inf/+inf when absent); Swish: v → Sigmoid(v) → Mul(v, ·) (either order);
//     LeakyRelu ⇒ activation_alpha (its slope);
//     HardSwish; HardSigmoid ⇒ activation_alpha/beta (depthwise and 1x1 convs
//     only: cuDNN's graph API, which dense convs use, has no hard activations)
//   Conv → Add(·, Z)                   ⇒ FusedConv(X, W, B, Z, activation="")
//   MatMul(A, B const) → Add(bias) [→ Add(·, Z)] [→ Relu]
//                                      ⇒ FusedMatMul(A, B, bias [, Z] [, activation=Relu])
//     (A of rank >= 2; B of rank >= 2 whose batch dims are all 1: weights)
//   erf-GELU: d = Div(x, √2) | Mul(x, 1/√2); a = Add(Erf(d), 1);
//     Mul(Mul(x, a), 0.5) | Mul(Mul(x, 0.5), a) | Mul(Mul(a, 0.5), x)
//                                      ⇒ kiln.Gelu(x, approximate="none")
//   tanh-GELU: a = Add(Tanh(u), 1) with u = √(2/π)·(x + 0.044715·x³) as
//     Mul(c, Add(x, Mul(0.044715, Pow(x, 3) | x·(x·x)))) (torch's GELU(approximate="tanh"), HF's
//     NewGELU: GPT-2, GPT-J, BLOOM, Gemma) or Mul(Mul(x, c), Add(Mul(Mul(x, 0.044715), x), 1)) (HF's
//     FastGELU); the same three tails       ⇒ kiln.Gelu(x, approximate="tanh")
//     (ONNX Gelu needs opset 20: kiln.Gelu keeps the model's opset valid)
// Conditions: every intermediate value has exactly one use and is not a graph
// output, except Swish's v, whose only uses are its Sigmoid and Mul. Commutative
// ops match in either operand order. Clip's bounds are its attributes before
// opset 11 and constant one-element inputs of the clipped type after, each
// exactly a float. GELU's constants are one-element tensors of x's type and
// rank <= x's, within 1e-6 (relative) of √2, 1/√2, √(2/π), 0.044715, 3, 1, 0.5, or (float16 and
// bfloat16) exactly those rounded to the type. Z has exactly the conv output's
// shape (known or identical symbolic dims, no broadcasting) and type; the bias
// is a constant holding one value per column of B; a MatMul's Z, like a conv's, has the
// product's shape and type (shape [N], or [1,..,1,N] no
// longer than the product's rank).
// When both inputs of a residual Add are fusable conv outputs, the later conv
// takes the Add (the other becomes Z). The fused node takes the place of the
// chain's last node and produces its output value, so graph output names and
// the topological order are kept. Only the main graph is rewritten (the GPU
// engine runs no subgraphs). Adds opset "kiln" = 1 to the model when it fuses.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunFuseForGpu(Model& model, PassContext& ctx);

}  // namespace kiln
