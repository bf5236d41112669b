// The quantization flags `kiln build` and `kiln compare --int8|--fp8` share:
// calibration (--calib, --calib-method, --calib-percentile) and the
// mixed-precision thresholds (build/mixed_precision.h), bound straight to a
// BuildOptions so both commands build the same quantized graph; also the
// product epilogue's GELU switch (--no-gelu-epilogue) and the Q/K/V packing's
// (--no-pack-qkv), shared the same way.
#pragma once

#include <CLI/CLI.hpp>

#include "kiln/engine.h"

namespace kiln::cli {

void AddQuantizationFlags(CLI::App* app, BuildOptions* o);

}  // namespace kiln::cli
