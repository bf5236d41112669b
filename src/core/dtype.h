// Element types. Numeric values equal onnx.TensorProto.DataType so import and
// export are a cast. Sub-byte types (int4, uint4, float4e2m1, int2, uint2) are
// held unpacked in memory, one element per byte; the importer unpacks them and
// the exporter packs them again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kiln {

enum class DataType : int32_t {
  kUndefined = 0,
  kFloat = 1,
  kUInt8 = 2,
  kInt8 = 3,
  kUInt16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,
  kBool = 9,
  kFloat16 = 10,
  kDouble = 11,
  kUInt32 = 12,
  kUInt64 = 13,
  kComplex64 = 14,
  kComplex128 = 15,
  kBFloat16 = 16,
  kFloat8E4M3FN = 17,
  kFloat8E4M3FNUZ = 18,
  kFloat8E5M2 = 19,
  kFloat8E5M2FNUZ = 20,
  kUInt4 = 21,
  kInt4 = 22,
  kFloat4E2M1 = 23,
  kFloat8E8M0 = 24,
  kUInt2 = 25,
  kInt2 = 26,
};

// Bytes one element takes in kiln's memory (1 for the unpacked sub-byte
// types); 0 for kUndefined and kString (strings live in std::string).
size_t ElementSize(DataType dt);
// Bits one element takes in ONNX's raw_data (4 for int4, 2 for int2, ...).
int ElementBits(DataType dt);
// Lower-case name as printed by kiln: float32, float16, int64, bool, ...
std::string_view DataTypeName(DataType dt);
// Inverse of DataTypeName; also accepts ONNX names (FLOAT, INT64, ...).
std::optional<DataType> ParseDataType(std::string_view name);
bool IsValidDataType(int32_t onnx_value);
bool IsFloatingPoint(DataType dt);  // float, double, float16, bfloat16, float8*, float4
bool IsSignedInteger(DataType dt);
bool IsUnsignedInteger(DataType dt);
bool IsInt8Type(DataType dt);  // int8 or uint8: the quantized types of the INT8 ops

}  // namespace kiln
