// What the subcommands that run a built engine (bench, soak) share: the
// engine from a plan file or, for an ONNX model, built at the --shapes given,
// and random inputs at those shapes (profile opt dims for the rest).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kiln/engine.h"

namespace kiln::cli {

using InputShapes = std::map<std::string, std::vector<int64_t>>;

// A plan file is loaded; a path ending in .onnx is built for `backend` with a
// one-shape profile per input named in `shapes` (FP16 when `fp16`).
Expected<std::shared_ptr<Engine>> LoadOrBuildEngine(const std::string& path, BuildOptions::Backend backend,
                                                    const InputShapes& shapes, bool fp16);

// One random tensor per engine input at its --shapes dims (profile opt dims,
// or 1, for dynamic dims not given). Floats in [-1, 1], integers in [0, 100),
// the same for the same seed.
std::map<std::string, Tensor> RandomEngineInputs(const Engine& engine, const InputShapes& shapes, uint32_t seed);

}  // namespace kiln::cli
