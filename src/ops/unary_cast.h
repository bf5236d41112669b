// Element type conversion shared by Cast, CastLike and any code that needs to
// convert a tensor (constant folding, quantization helpers). Follows the ONNX
// Cast rules: float8 saturation, float8e8m0 rounding modes, sub-byte integer
// wrap-around, and numpy-style string formatting/parsing.
#pragma once

#include "core/float8.h"
#include "core/tensor.h"
#include "kiln/status.h"

namespace kiln {

struct CastOptions {
  bool saturate = true;                         // float8 targets: clamp out-of-range values to +-max
  E8M0Rounding round_mode = E8M0Rounding::kUp;  // float8e8m0 targets
};

// Converts every element of `in` to `to`. Errors only for unsupported types
// (complex, undefined).
Expected<Tensor> CastTensor(const Tensor& in, DataType to, const CastOptions& options = {});

// numpy's str() of a float held in `src` precision ("1.0", "1e-05", "nan").
std::string FormatFloatLikeNumpy(double v, DataType src);

}  // namespace kiln
