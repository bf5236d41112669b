// Little-endian fields of kiln's binary files (plan_file.cc's plan header,
// build/timing_cache.cc's cache header): fixed-size values and NUL-padded
// fixed-width strings. Hosts are little-endian (x86-64, aarch64).
#pragma once

#include <cstring>
#include <string>

namespace kiln::byte_io {

template <class T>
void Put(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}

// `s` cut to width - 1 bytes and NUL-padded to `width`.
inline void PutFixed(std::string& out, const std::string& s, size_t width) {
  std::string f = s.substr(0, width - 1);
  f.resize(width, '\0');
  out += f;
}

template <class T>
T Get(const void* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// The string in a NUL-padded field of `width` bytes.
inline std::string GetFixed(const void* p, size_t width) {
  const char* c = static_cast<const char*>(p);
  size_t n = 0;
  while (n < width && c[n]) ++n;
  return std::string(c, n);
}

}  // namespace kiln::byte_io
