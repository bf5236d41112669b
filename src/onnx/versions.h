// The ONNX IR and opset versions kiln reads and writes.
#pragma once

#include <cstdint>

namespace kiln {

constexpr int64_t kMinIrVersion = 3;
constexpr int64_t kMaxIrVersion = 14;  // onnx 1.23 writes IR 14 (the node tests use it)
constexpr int64_t kMinOpset = 1;       // default domain (ai.onnx)
constexpr int64_t kMaxOpset = 28;

}  // namespace kiln
