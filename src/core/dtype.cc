#include "core/dtype.h"

#include <algorithm>
#include <cctype>

namespace kiln {
namespace {

struct TypeRow {
  DataType dt;
  std::string_view name;       // kiln's name
  std::string_view onnx_name;  // TensorProto.DataType name
  size_t size;
  int bits;
};

constexpr TypeRow kTypes[] = {
    {DataType::kUndefined, "undefined", "UNDEFINED", 0, 0},
    {DataType::kFloat, "float32", "FLOAT", 4, 32},
    {DataType::kUInt8, "uint8", "UINT8", 1, 8},
    {DataType::kInt8, "int8", "INT8", 1, 8},
    {DataType::kUInt16, "uint16", "UINT16", 2, 16},
    {DataType::kInt16, "int16", "INT16", 2, 16},
    {DataType::kInt32, "int32", "INT32", 4, 32},
    {DataType::kInt64, "int64", "INT64", 8, 64},
    {DataType::kString, "string", "STRING", 0, 0},
    {DataType::kBool, "bool", "BOOL", 1, 8},
    {DataType::kFloat16, "float16", "FLOAT16", 2, 16},
    {DataType::kDouble, "float64", "DOUBLE", 8, 64},
    {DataType::kUInt32, "uint32", "UINT32", 4, 32},
    {DataType::kUInt64, "uint64", "UINT64", 8, 64},
    {DataType::kComplex64, "complex64", "COMPLEX64", 8, 64},
    {DataType::kComplex128, "complex128", "COMPLEX128", 16, 128},
    {DataType::kBFloat16, "bfloat16", "BFLOAT16", 2, 16},
    {DataType::kFloat8E4M3FN, "float8e4m3fn", "FLOAT8E4M3FN", 1, 8},
    {DataType::kFloat8E4M3FNUZ, "float8e4m3fnuz", "FLOAT8E4M3FNUZ", 1, 8},
    {DataType::kFloat8E5M2, "float8e5m2", "FLOAT8E5M2", 1, 8},
    {DataType::kFloat8E5M2FNUZ, "float8e5m2fnuz", "FLOAT8E5M2FNUZ", 1, 8},
    {DataType::kUInt4, "uint4", "UINT4", 1, 4},
    {DataType::kInt4, "int4", "INT4", 1, 4},
    {DataType::kFloat4E2M1, "float4e2m1", "FLOAT4E2M1", 1, 4},
    {DataType::kFloat8E8M0, "float8e8m0", "FLOAT8E8M0", 1, 8},
    {DataType::kUInt2, "uint2", "UINT2", 1, 2},
    {DataType::kInt2, "int2", "INT2", 1, 2},
};

const TypeRow* Row(DataType dt) {
  for (const auto& r : kTypes)
    if (r.dt == dt) return &r;
  return nullptr;
}

}  // namespace

size_t ElementSize(DataType dt) {
  const TypeRow* r = Row(dt);
  return r ? r->size : 0;
}

int ElementBits(DataType dt) {
  const TypeRow* r = Row(dt);
  return r ? r->bits : 0;
}

std::string_view DataTypeName(DataType dt) {
  const TypeRow* r = Row(dt);
  return r ? r->name : "invalid";
}

std::optional<DataType> ParseDataType(std::string_view name) {
  std::string upper(name);
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  for (const auto& r : kTypes) {
    std::string kiln_upper(r.name);
    std::transform(kiln_upper.begin(), kiln_upper.end(), kiln_upper.begin(),
                   [](unsigned char c) { return std::toupper(c); });
    if (upper == r.onnx_name || upper == kiln_upper) return r.dt;
  }
  return std::nullopt;
}

bool IsValidDataType(int32_t v) { return v >= 1 && v <= static_cast<int32_t>(DataType::kInt2); }

bool IsFloatingPoint(DataType dt) {
  switch (dt) {
    case DataType::kFloat: case DataType::kDouble: case DataType::kFloat16: case DataType::kBFloat16:
    case DataType::kFloat8E4M3FN: case DataType::kFloat8E4M3FNUZ: case DataType::kFloat8E5M2:
    case DataType::kFloat8E5M2FNUZ: case DataType::kFloat4E2M1: case DataType::kFloat8E8M0:
      return true;
    default:
      return false;
  }
}

bool IsSignedInteger(DataType dt) {
  switch (dt) {
    case DataType::kInt8: case DataType::kInt16: case DataType::kInt32: case DataType::kInt64:
    case DataType::kInt4: case DataType::kInt2:
      return true;
    default:
      return false;
  }
}

bool IsUnsignedInteger(DataType dt) {
  switch (dt) {
    case DataType::kUInt8: case DataType::kUInt16: case DataType::kUInt32: case DataType::kUInt64:
    case DataType::kUInt4: case DataType::kUInt2:
      return true;
    default:
      return false;
  }
}

bool IsInt8Type(DataType dt) { return dt == DataType::kInt8 || dt == DataType::kUInt8; }

}  // namespace kiln
