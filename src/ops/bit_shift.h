// BitShift's element function, shared by the CPU reference
// (ops/binary_logic.cc) and the CUDA kernel (backend/cuda/elementwise.cu).
#pragma once

#include <cstdint>
#include <type_traits>

#include "core/host_device.h"

namespace kiln {
namespace ops {

// Shift of x by s bits; shifts outside [0, bits) leave only the sign fill.
template <class T>
KILN_HOST_DEVICE inline T BitShift(T x, T s, bool left) {
  using U = std::make_unsigned_t<T>;
  constexpr int64_t bits = static_cast<int64_t>(sizeof(T) * 8);
  const int64_t amount = static_cast<int64_t>(s);
  if (amount < 0 || amount >= bits) {
    if constexpr (std::is_signed_v<T>) {
      if (!left && x < 0) return T(-1);
    }
    return 0;
  }
  if (left) return static_cast<T>(static_cast<U>(static_cast<U>(x) << amount));
  if constexpr (std::is_signed_v<T>) {
    // Arithmetic shift written without relying on implementation-defined >> of negatives.
    if (x < 0) return static_cast<T>(~static_cast<U>(static_cast<U>(~static_cast<U>(x)) >> amount));
  }
  return static_cast<T>(static_cast<U>(x) >> amount);
}

}  // namespace ops
}  // namespace kiln
