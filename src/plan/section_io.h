// The primitives of the plan's binary sections (docs/PLAN.md): integers and
// floats little-endian of their width, str = u32 length + bytes, list<T> =
// u32 count + items. The reader checks every count against the bytes left, so
// a damaged section is an error naming the section and the byte, never a
// crash or a large allocation.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "kiln/status.h"

namespace kiln {

class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}

  template <class T>
  void Pod(T v) {
    out_->append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  void Str(const std::string& s) {
    Pod<uint32_t>(static_cast<uint32_t>(s.size()));
    *out_ += s;
  }
  template <class T, class F>
  void List(const T& items, F&& each) {
    Pod<uint32_t>(static_cast<uint32_t>(items.size()));
    for (const auto& item : items) each(item);
  }

 private:
  std::string* out_;
};

class ByteReader {
 public:
  // `section` names the section in errors ("graph", "shapes").
  ByteReader(std::string_view in, std::string section) : in_(in), section_(std::move(section)) {}

  template <class T>
  Status Pod(T* v) {
    if (in_.size() - pos_ < sizeof(T)) return Corrupt("runs past the end");
    std::memcpy(v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::Ok();
  }
  Status Str(std::string* s) {
    uint32_t n = 0;
    KILN_RETURN_IF_ERROR(Pod(&n));
    if (in_.size() - pos_ < n) return Corrupt("a string runs past the end");
    s->assign(in_.data() + pos_, n);
    pos_ += n;
    return Status::Ok();
  }
  // Calls `each` count times; a count larger than the bytes left is an error
  // (every item takes at least one byte), so nothing is reserved blindly.
  template <class F>
  Status List(F&& each) {
    uint32_t n = 0;
    KILN_RETURN_IF_ERROR(Pod(&n));
    if (n > in_.size() - pos_) return Corrupt("a count of " + std::to_string(n) + " runs past the end");
    for (uint32_t i = 0; i < n; ++i) KILN_RETURN_IF_ERROR(each());
    return Status::Ok();
  }
  template <class E>
  Status Enum(E* e, int last) {
    uint8_t v = 0;
    KILN_RETURN_IF_ERROR(Pod(&v));
    if (v > last) return Corrupt("enum value " + std::to_string(v) + " out of range");
    *e = static_cast<E>(v);
    return Status::Ok();
  }
  bool AtEnd() const { return pos_ == in_.size(); }
  Status Corrupt(const std::string& what) const {
    return InvalidArgument("corrupted plan: " + section_ + " section: " + what + " (at byte " +
                           std::to_string(pos_) + ")");
  }

 private:
  std::string_view in_;
  std::string section_;
  size_t pos_ = 0;
};

}  // namespace kiln
