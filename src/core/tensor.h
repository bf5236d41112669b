// Tensor: a host-memory n-d array for the CPU reference, constants and IO.
//
// Storage is shared and copy-on-write: copying a Tensor is cheap, and the first
// mutable access to shared (or borrowed, e.g. memory-mapped) storage detaches a
// private copy. So ops may alias inputs into outputs (Reshape) safely.
// Strings (DataType::kString) are held as std::string elements.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/half.h"
#include "core/shape.h"

namespace kiln {

class Tensor {
 public:
  Tensor() = default;  // undefined: dtype kUndefined, no storage
  // Zero-filled tensor of the given type and dims.
  Tensor(DataType dtype, std::vector<int64_t> dims);

  // Read-only view of memory owned by `owner` (e.g. a memory-mapped file). The
  // bytes must hold numel * ElementSize(dtype) bytes in kiln's layout.
  static Tensor Borrow(DataType dtype, std::vector<int64_t> dims, std::shared_ptr<const void> owner,
                       const void* data);
  // Scalars and 1-D tensors from values, for tests and constants.
  template <class T>
  static Tensor FromVector(DataType dtype, std::vector<int64_t> dims, const std::vector<T>& values);
  static Tensor Scalar(float v);
  static Tensor ScalarInt64(int64_t v);
  static Tensor Int64s(const std::vector<int64_t>& values);  // 1-D

  bool defined() const { return dtype_ != DataType::kUndefined; }
  DataType dtype() const { return dtype_; }
  const std::vector<int64_t>& dims() const { return dims_; }
  int rank() const { return static_cast<int>(dims_.size()); }
  int64_t dim(int i) const { return dims_[static_cast<size_t>(i)]; }
  int64_t numel() const { return numel_; }  // cached: hot loops call it in their condition
  size_t nbytes() const { return static_cast<size_t>(numel()) * ElementSize(dtype_); }
  Shape shape() const { return Shape::Of(dims_); }

  const void* raw() const;
  void* mutable_raw();  // detaches shared storage first
  template <class T>
  const T* data() const {
    return static_cast<const T*>(raw());
  }
  template <class T>
  T* mutable_data() {
    return static_cast<T*>(mutable_raw());
  }
  const std::vector<std::string>& strings() const;
  std::vector<std::string>& mutable_strings();

  // Same storage, new dims (numel must match; checked by the caller).
  Tensor Reshaped(std::vector<int64_t> dims) const;
  // Deep copy.
  Tensor Clone() const;
  // Element i converted to double / int64 (numeric dtypes only; for shape
  // tensors, attributes and messages, not hot loops).
  double ScalarAt(int64_t i) const;
  int64_t IntAt(int64_t i) const;
  // Reads an int32/int64 tensor into a vector.
  std::vector<int64_t> ToInt64s() const;
  // "float32[1,3,224,224]".
  std::string Describe() const;

 private:
  struct Storage;
  void SetDims(std::vector<int64_t> dims);  // dims_ and numel_ together
  DataType dtype_ = DataType::kUndefined;
  std::vector<int64_t> dims_;
  int64_t numel_ = 1;  // the product of dims_
  std::shared_ptr<Storage> storage_;
};

struct Tensor::Storage {
  std::vector<uint8_t> bytes;         // owned bytes, or
  std::shared_ptr<const void> owner;  // keeps borrowed memory alive
  const void* borrowed = nullptr;
  std::vector<std::string> strings;  // kString elements
};

template <class T>
Tensor Tensor::FromVector(DataType dtype, std::vector<int64_t> dims, const std::vector<T>& values) {
  Tensor t(dtype, std::move(dims));
  T* p = t.mutable_data<T>();
  for (size_t i = 0; i < values.size() && static_cast<int64_t>(i) < t.numel(); ++i) p[i] = values[i];
  return t;
}

}  // namespace kiln
