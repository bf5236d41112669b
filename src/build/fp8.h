// FP8 builds (`kiln build --fp8 [--calib DIR]`, docs/PRECISION.md): the matrix
// products with a constant weight (MatMul, Gemm; passes/insert_qdq.h's
// candidates without Conv) become kiln.F8MatMul (ops/kiln_f8.cc): activations
// quantized to E4M3 per tensor at amax/448 (amax measured over the
// calibration inputs on the CPU reference, or over random inputs when no
// directory is given), weights stored E4M3 per tensor at max|w|/448,
// transposed to [N, K] for cuBLASLt's TN layout, tensor-core (fast) accumulation
// on the GPU (the CPU reference sums in FP32). Products
// cuBLASLt's FP8 kernels cannot take (K or N not a multiple of 16,
// backend/gpu_caps.h Fp8GemmShapeSupported) stay float, and the report says so;
// so do products whose isolated FP8 error exceeds options.fp8_fallback_rel_l2,
// and, while the whole FP8 model's error exceeds options.fp8_model_rel_l2,
// those of largest effect on the output (build/mixed_precision.h).
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/engine.h"

namespace kiln {

// The largest finite E4M3 value: scales are amax / kE4M3Max.
constexpr float kE4M3Max = 448.f;

// Rewrites the candidates of a simplified float model. Appends one report
// line per candidate (runs FP8 with its scales, or stays FP32/FP16 and why).
Status QuantizeFp8(Model& model, const BuildOptions& options, std::vector<std::string>* report,
                   std::vector<std::string>* notes);

}  // namespace kiln
