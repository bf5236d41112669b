#include "core/shape.h"

#include <cctype>

namespace kiln {
namespace {

// Wraps a compound symbolic expression in parentheses before combining it.
std::string Operand(const Dim& d) {
  std::string s = d.ToString();
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return "(" + s + ")";
  return s;
}

Dim Combine(const Dim& a, const Dim& b, char op) {
  if (a.unknown() || b.unknown()) return Dim::Unknown();
  return Dim::Symbol(Operand(a) + op + Operand(b));
}

}  // namespace

Dim Dim::Symbol(std::string name) {
  Dim d;
  d.symbol_ = std::move(name);
  return d;
}

std::string Dim::ToString() const {
  if (known()) return std::to_string(value_);
  if (symbolic()) return symbol_;
  return "?";
}

bool Dim::operator==(const Dim& o) const {
  if (known() || o.known()) return value_ == o.value_;
  return symbolic() && o.symbolic() && symbol_ == o.symbol_;
}

Dim operator*(const Dim& a, const Dim& b) {
  if (a.known() && b.known()) return Dim(a.value() * b.value());
  if ((a.known() && a.value() == 0) || (b.known() && b.value() == 0)) return Dim(0);
  if (a.known() && a.value() == 1) return b;
  if (b.known() && b.value() == 1) return a;
  return Combine(a, b, '*');
}

Dim operator+(const Dim& a, const Dim& b) {
  if (a.known() && b.known()) return Dim(a.value() + b.value());
  if (a.known() && a.value() == 0) return b;
  if (b.known() && b.value() == 0) return a;
  return Combine(a, b, '+');
}

Dim operator-(const Dim& a, const Dim& b) {
  if (a.known() && b.known()) return Dim(a.value() - b.value());
  if (b.known() && b.value() == 0) return a;
  if (a == b) return Dim(0);
  return Combine(a, b, '-');
}

Dim Dim::FloorDiv(const Dim& b) const {
  if (known() && b.known() && b.value() != 0) {
    int64_t q = value_ / b.value();
    if ((value_ % b.value() != 0) && ((value_ < 0) != (b.value() < 0))) --q;
    return Dim(q);
  }
  if (b.known() && b.value() == 1) return *this;
  return Combine(*this, b, '/');
}

Shape Shape::Of(const std::vector<int64_t>& dims) {
  std::vector<Dim> d;
  d.reserve(dims.size());
  for (int64_t v : dims) d.emplace_back(v);
  return Shape(std::move(d));
}

bool Shape::fully_known() const {
  if (!rank_known_) return false;
  for (const Dim& d : dims_)
    if (!d.known()) return false;
  return true;
}

std::optional<std::vector<int64_t>> Shape::concrete() const {
  if (!fully_known()) return std::nullopt;
  std::vector<int64_t> out;
  out.reserve(dims_.size());
  for (const Dim& d : dims_) out.push_back(d.value());
  return out;
}

Dim Shape::NumElements() const {
  if (!rank_known_) return Dim::Unknown();
  Dim n(1);
  for (const Dim& d : dims_) n = n * d;
  return n;
}

std::string Shape::ToString() const {
  if (!rank_known_) return "?";
  std::string s = "[";
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (i) s += ",";
    s += dims_[i].ToString();
  }
  return s + "]";
}

bool Shape::operator==(const Shape& o) const {
  if (rank_known_ != o.rank_known_) return false;
  if (!rank_known_) return true;
  if (dims_.size() != o.dims_.size()) return false;
  for (size_t i = 0; i < dims_.size(); ++i) {
    const Dim& a = dims_[i];
    const Dim& b = o.dims_[i];
    if (a.unknown() && b.unknown()) continue;
    if (a != b) return false;
  }
  return true;
}

std::string DimsToString(const std::vector<int64_t>& dims) {
  if (dims.empty()) return "scalar";
  std::string s;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += "x";
    s += std::to_string(dims[i]);
  }
  return s;
}

}  // namespace kiln
