// NumPy .npy files (format versions 1.0, 2.0 and 3.0) ↔ kiln Tensors.
//
// Supported element types: bool, int8..int64, uint8..uint64, float16, float32,
// float64, complex64, complex128 and fixed-width unicode strings ('<U').
// Little- and big-endian data are read; files are written little-endian,
// C order, version 1.0 (2.0 when the header needs it). Types numpy has no
// standard dtype for (bfloat16, float8, int4, ...) are rejected: convert them
// first (see NpyCompatible). Errors name the file.
#pragma once

#include <cstddef>
#include <string>

#include "core/tensor.h"
#include "kiln/status.h"

namespace kiln {

// Reads a .npy file.
Expected<Tensor> ReadNpy(const std::string& path);
// Parses .npy bytes held in memory; `name` is used in error messages.
Expected<Tensor> ParseNpy(const void* data, size_t size, const std::string& name);

// Writes `t` as a .npy file.
Status WriteNpy(const std::string& path, const Tensor& t);
// Serializes `t` to .npy bytes.
Expected<std::string> EncodeNpy(const Tensor& t);

// True when `dt` has a standard numpy dtype, so WriteNpy accepts it.
bool NpyCompatible(DataType dt);
// The numpy descr kiln writes for `dt` ("<f4", "|b1", ...); "" when none.
std::string NpyDescr(DataType dt);

}  // namespace kiln
