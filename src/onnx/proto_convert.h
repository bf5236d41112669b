// Internal to src/onnx: conversions between onnx protobuf messages and kiln's
// IR types (tensors, types, attributes), shared by import.cc and export.cc.
#pragma once

#include <string>

#include "core/tensor.h"
#include "ir/graph.h"
#include "kiln/status.h"
#include "onnx.pb.h"

namespace kiln {
namespace onnx_internal {

class ExternalDataReader;

// TensorProto → Tensor, every dtype (typed fields or raw_data, sub-byte types
// unpacked one per byte, external data through `ext`, which may be null when
// external data is not allowed). `what` names the tensor in errors, e.g.
// "initializer 'conv1.weight'".
Expected<Tensor> TensorFromProto(const onnx::TensorProto& proto, const ExternalDataReader* ext,
                                 const std::string& what);

// Tensor → TensorProto with raw_data (strings in string_data; sub-byte types
// packed). Sets name, dims, data_type and data.
Status TensorToProto(const Tensor& t, const std::string& name, onnx::TensorProto* proto);
// The bytes ONNX stores for `t` in raw_data / external data (sub-byte packed).
std::string TensorRawBytes(const Tensor& t);

// TypeProto ↔ TypeInfo. A TypeProto without a value gives an unknown tensor type.
TypeInfo TypeFromProto(const onnx::TypeProto& proto);
void TypeToProto(const TypeInfo& type, onnx::TypeProto* proto);

// Checked element count of dims: error (naming `what`) for negative dims or
// an overflowing product.
Expected<int64_t> CheckedNumel(const std::vector<int64_t>& dims, const std::string& what);

}  // namespace onnx_internal
}  // namespace kiln
