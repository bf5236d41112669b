#include "core/tensor.h"

#include <cstring>

#include "core/float8.h"

namespace kiln {

Tensor::Tensor(DataType dtype, std::vector<int64_t> dims) : dtype_(dtype) {
  SetDims(std::move(dims));
  storage_ = std::make_shared<Storage>();
  if (dtype_ == DataType::kString)
    storage_->strings.resize(static_cast<size_t>(numel()));
  else
    storage_->bytes.assign(nbytes(), 0);
}

Tensor Tensor::Borrow(DataType dtype, std::vector<int64_t> dims, std::shared_ptr<const void> owner,
                      const void* data) {
  Tensor t;
  t.dtype_ = dtype;
  t.SetDims(std::move(dims));
  t.storage_ = std::make_shared<Storage>();
  t.storage_->owner = std::move(owner);
  t.storage_->borrowed = data;
  return t;
}

Tensor Tensor::Scalar(float v) { return FromVector<float>(DataType::kFloat, {}, {v}); }
Tensor Tensor::ScalarInt64(int64_t v) { return FromVector<int64_t>(DataType::kInt64, {}, {v}); }
Tensor Tensor::Int64s(const std::vector<int64_t>& values) {
  return FromVector<int64_t>(DataType::kInt64, {static_cast<int64_t>(values.size())}, values);
}

void Tensor::SetDims(std::vector<int64_t> dims) {
  dims_ = std::move(dims);
  numel_ = 1;
  for (int64_t d : dims_) numel_ *= d;
}

const void* Tensor::raw() const {
  if (!storage_) return nullptr;
  if (storage_->borrowed) return storage_->borrowed;
  return storage_->bytes.data();
}

void* Tensor::mutable_raw() {
  if (!storage_) return nullptr;
  if (storage_.use_count() > 1 || storage_->borrowed) {
    auto fresh = std::make_shared<Storage>();
    if (dtype_ == DataType::kString) {
      fresh->strings = storage_->strings;
    } else {
      fresh->bytes.resize(nbytes());
      if (nbytes()) std::memcpy(fresh->bytes.data(), raw(), nbytes());
    }
    storage_ = std::move(fresh);
  }
  return storage_->bytes.data();
}

const std::vector<std::string>& Tensor::strings() const {
  static const std::vector<std::string> kEmpty;
  return storage_ ? storage_->strings : kEmpty;
}

std::vector<std::string>& Tensor::mutable_strings() {
  mutable_raw();
  return storage_->strings;
}

Tensor Tensor::Reshaped(std::vector<int64_t> dims) const {
  Tensor t = *this;
  t.SetDims(std::move(dims));
  return t;
}

Tensor Tensor::Clone() const {
  Tensor t = *this;
  if (!storage_) return t;
  auto fresh = std::make_shared<Storage>();
  if (dtype_ == DataType::kString) {
    fresh->strings = strings();
  } else {
    fresh->bytes.resize(nbytes());
    if (nbytes()) std::memcpy(fresh->bytes.data(), raw(), nbytes());
  }
  t.storage_ = std::move(fresh);
  return t;
}

double Tensor::ScalarAt(int64_t i) const {
  const void* p = raw();
  switch (dtype_) {
    case DataType::kFloat: return static_cast<const float*>(p)[i];
    case DataType::kDouble: return static_cast<const double*>(p)[i];
    case DataType::kFloat16: return HalfBitsToFloat(static_cast<const uint16_t*>(p)[i]);
    case DataType::kBFloat16: return BFloat16BitsToFloat(static_cast<const uint16_t*>(p)[i]);
    case DataType::kInt8: case DataType::kInt4: case DataType::kInt2:
      return static_cast<const int8_t*>(p)[i];
    case DataType::kUInt8: case DataType::kUInt4: case DataType::kUInt2: case DataType::kBool:
      return static_cast<const uint8_t*>(p)[i];
    case DataType::kInt16: return static_cast<const int16_t*>(p)[i];
    case DataType::kUInt16: return static_cast<const uint16_t*>(p)[i];
    case DataType::kInt32: return static_cast<const int32_t*>(p)[i];
    case DataType::kUInt32: return static_cast<const uint32_t*>(p)[i];
    case DataType::kInt64: return static_cast<double>(static_cast<const int64_t*>(p)[i]);
    case DataType::kUInt64: return static_cast<double>(static_cast<const uint64_t*>(p)[i]);
    case DataType::kFloat8E4M3FN: return DecodeFloat(FloatFormat::kE4M3FN, static_cast<const uint8_t*>(p)[i]);
    case DataType::kFloat8E4M3FNUZ: return DecodeFloat(FloatFormat::kE4M3FNUZ, static_cast<const uint8_t*>(p)[i]);
    case DataType::kFloat8E5M2: return DecodeFloat(FloatFormat::kE5M2, static_cast<const uint8_t*>(p)[i]);
    case DataType::kFloat8E5M2FNUZ: return DecodeFloat(FloatFormat::kE5M2FNUZ, static_cast<const uint8_t*>(p)[i]);
    case DataType::kFloat4E2M1: return DecodeFloat(FloatFormat::kE2M1, static_cast<const uint8_t*>(p)[i]);
    case DataType::kFloat8E8M0: return Float8E8M0ToFloat(static_cast<const uint8_t*>(p)[i]);
    default: return 0.0;
  }
}

int64_t Tensor::IntAt(int64_t i) const {
  switch (dtype_) {
    case DataType::kInt64: return data<int64_t>()[i];
    case DataType::kUInt64: return static_cast<int64_t>(data<uint64_t>()[i]);
    case DataType::kInt32: return data<int32_t>()[i];
    default: return static_cast<int64_t>(ScalarAt(i));
  }
}

std::vector<int64_t> Tensor::ToInt64s() const {
  std::vector<int64_t> out(static_cast<size_t>(numel()));
  for (int64_t i = 0; i < numel(); ++i) out[static_cast<size_t>(i)] = IntAt(i);
  return out;
}

std::string Tensor::Describe() const { return std::string(DataTypeName(dtype_)) + shape().ToString(); }

}  // namespace kiln
