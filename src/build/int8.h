// INT8 builds: explicit quantization (QDQ models, passes/fold_qdq.h) and
// implicit quantization (`--int8 --calib DIR|CACHE`: build/calibrate_int8.h
// for activation scales, passes/insert_qdq.h, then fold_qdq), with a per-layer
// fallback to FP32 where INT8 measurably hurts.
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/engine.h"

namespace kiln {

// Implicit quantization of a simplified float model (the candidates of
// passes/insert_qdq.h). Appends one report line per candidate: runs INT8 (with
// its scale and measured error) or stays FP32 (and why). Writes the
// calibration cache when options.calib_cache is set.
Status QuantizeImplicitInt8(Model& model, const BuildOptions& options, std::vector<std::string>* report,
                            std::vector<std::string>* notes);

// The graph the CPU reference runs for a quantized build: fold_qdq, the
// simplifier, then (with options.int8, when nothing was folded) the implicit
// INT8 quantization or (with options.fp8) build/fp8.h's FP8 products, then
// (with options.fp16) the FP16 pass with its FP32 islands, whose islands are
// reported too. `kiln compare --int8|--fp8 [--fp16] --backend cpu` runs this.
Status PrepareQuantizedGraph(Model& model, const BuildOptions& options, std::vector<std::string>* report,
                             std::vector<std::string>* notes);

}  // namespace kiln
