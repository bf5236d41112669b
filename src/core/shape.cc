#include "core/shape.h"

#include <limits>

#include "core/dim_expr.h"

namespace kiln {

Dim Dim::Symbol(std::string name) {
  Dim d;
  if (name.empty()) return d;
  if (name.find_first_of("+-*/() ") != std::string::npos) {
    auto p = dim_expr::Parse(name);
    if (p && !p->is_constant()) return FromPoly(p);
  }
  d.expr_ = std::make_shared<const dim_expr::Poly>(dim_expr::Symbol(name));
  d.symbol_ = std::move(name);
  return d;
}

Dim Dim::Constant(int64_t v) {
  Dim d(v);
  d.negative_constant_ = v < 0;
  return d;
}

std::optional<int64_t> Dim::constant() const {
  if (known() || negative_constant_) return value_;
  return std::nullopt;
}

Dim Dim::FromPoly(const std::optional<dim_expr::Poly>& p) {
  if (!p) return Dim::Unknown();
  if (p->is_constant()) return Dim(p->constant);  // negative: unknown
  Dim d;
  d.symbol_ = dim_expr::ToText(*p);
  d.expr_ = std::make_shared<const dim_expr::Poly>(*p);
  return d;
}

std::optional<dim_expr::Poly> Dim::AsPoly() const {
  if (known()) return dim_expr::Constant(value_);
  if (expr_) return *expr_;
  return std::nullopt;
}

std::string Dim::ToString() const {
  if (known() || negative_constant_) return std::to_string(value_);
  if (!symbolic()) return "?";
  if (symbol_.size() <= kMaxDimText) return symbol_;
  const size_t tail = 16;
  return symbol_.substr(0, kMaxDimText - tail - 3) + "..." + symbol_.substr(symbol_.size() - tail);
}

std::optional<int64_t> Dim::Evaluate(const std::map<std::string, int64_t>& symbols) const {
  if (known() || negative_constant_) return value_;
  if (!expr_) return std::nullopt;
  return dim_expr::Evaluate(*expr_, symbols);
}

std::set<std::string> Dim::Symbols() const {
  std::set<std::string> names;
  if (!known() && expr_) dim_expr::CollectSymbols(*expr_, &names);
  return names;
}

bool Dim::operator==(const Dim& o) const {
  if (known() || o.known()) return value_ == o.value_;
  return symbolic() && o.symbolic() && symbol_ == o.symbol_;
}

Dim operator*(const Dim& a, const Dim& b) {
  if ((a.known() && a.value() == 0) || (b.known() && b.value() == 0)) return Dim(0);
  auto x = a.AsPoly(), y = b.AsPoly();
  if (!x || !y) return Dim::Unknown();
  return Dim::FromPoly(dim_expr::Mul(*x, *y));
}

Dim operator+(const Dim& a, const Dim& b) {
  auto x = a.AsPoly(), y = b.AsPoly();
  if (!x || !y) return Dim::Unknown();
  return Dim::FromPoly(dim_expr::Add(*x, *y));
}

Dim operator-(const Dim& a, const Dim& b) {
  auto x = a.AsPoly(), y = b.AsPoly();
  if (!x || !y) return Dim::Unknown();
  return Dim::FromPoly(dim_expr::Sub(*x, *y));
}

Dim Dim::FloorDiv(const Dim& b) const {
  auto x = AsPoly(), y = b.AsPoly();
  if (!x || !y) return Dim::Unknown();
  return Dim::FromPoly(dim_expr::FloorDiv(*x, *y));
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

bool Shape::KnownDimsOverflow() const {
  for (const Dim& d : dims_)
    if (d.known() && d.value() == 0) return false;
  int64_t n = 1;
  for (const Dim& d : dims_) {
    if (!d.known()) continue;
    if (n > std::numeric_limits<int64_t>::max() / d.value()) return true;
    n *= d.value();
  }
  return false;
}

}  // namespace kiln
