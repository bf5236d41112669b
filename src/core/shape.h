// Shapes with symbolic dimensions. A Dim is known (a value >= 0), symbolic
// (a name such as "batch", or a derived expression such as "batch*seq" kept in
// canonical form, see core/dim_expr.h), or unknown. A Shape may have an
// unknown rank. The symbolic contents of shape tensors (Value::sym_data) are
// Dims too, and there a Dim may also be a negative constant (the -1 of a
// Reshape or Expand target): to everything that reads it as a dim it is
// unknown, and shapes never hold one (InferContext::set_output_type).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace kiln {

namespace dim_expr {
struct Poly;
}

class Dim {
 public:
  Dim() = default;  // unknown
  Dim(int64_t value) : value_(value) {}  // NOLINT(google-explicit-constructor): Dim d = 3;
  static Dim Known(int64_t v) { return Dim(v); }
  // A name, or an expression in the text form ("past+seq", "(h+1)/2"), which
  // is parsed and canonicalised; a name that is no expression stays a name.
  static Dim Symbol(std::string name);
  static Dim Unknown() { return Dim(); }
  // A constant of any sign: known when >= 0, else a negative constant.
  static Dim Constant(int64_t v);

  bool known() const { return value_ >= 0; }
  bool symbolic() const { return value_ < 0 && !symbol_.empty(); }
  bool unknown() const { return value_ < 0 && symbol_.empty(); }
  int64_t value() const { return value_; }  // -1 unless known()
  // The value of a known dim or a negative constant; nullopt otherwise.
  std::optional<int64_t> constant() const;
  // A negative constant as unknown, anything else as it is: for turning
  // symbolic contents into a shape.
  Dim AsDim() const { return negative_constant_ ? Dim() : *this; }
  // The full canonical text of a symbolic dim (its identity); "" otherwise.
  const std::string& symbol() const { return symbol_; }

  // "3", "batch", "-1" (a negative constant) or "?". For messages: an expression longer than
  // kMaxDimText characters is cut in the middle ("...").
  std::string ToString() const;
  static constexpr size_t kMaxDimText = 60;
  // The value with the symbols bound (a negative constant's value); nullopt if
  // one is missing or unknown.
  std::optional<int64_t> Evaluate(const std::map<std::string, int64_t>& symbols) const;
  // The symbol names a symbolic dim's expression uses ("batch" and "seq" for
  // "batch*seq"); empty for a known or unknown dim.
  std::set<std::string> Symbols() const;
  // Same known value, or same symbol. Unknown dims never equal anything.
  bool operator==(const Dim& o) const;
  bool operator!=(const Dim& o) const { return !(*this == o); }

  // Symbolic arithmetic: known op known folds; otherwise a canonical
  // expression ("batch*3", "seq" for (seq+1)-1, "(h+1)/2"); unknown in gives
  // unknown out, and so does a negative constant or an int64 overflow.
  friend Dim operator*(const Dim& a, const Dim& b);
  friend Dim operator+(const Dim& a, const Dim& b);
  friend Dim operator-(const Dim& a, const Dim& b);
  // Floor division.
  Dim FloorDiv(const Dim& b) const;

 private:
  static Dim FromPoly(const std::optional<dim_expr::Poly>& p);
  std::optional<dim_expr::Poly> AsPoly() const;

  int64_t value_ = -1;
  bool negative_constant_ = false;  // value_ is that constant
  std::string symbol_;
  std::shared_ptr<const dim_expr::Poly> expr_;  // set when symbolic
};

class Shape {
 public:
  Shape() = default;  // unknown rank
  explicit Shape(std::vector<Dim> dims) : rank_known_(true), dims_(std::move(dims)) {}
  static Shape Unranked() { return Shape(); }
  static Shape Scalar() { return Shape(std::vector<Dim>{}); }
  static Shape Of(const std::vector<int64_t>& dims);

  bool rank_known() const { return rank_known_; }
  int rank() const { return rank_known_ ? static_cast<int>(dims_.size()) : -1; }
  const std::vector<Dim>& dims() const { return dims_; }
  std::vector<Dim>& mutable_dims() { return dims_; }
  const Dim& operator[](size_t i) const { return dims_[i]; }
  Dim& operator[](size_t i) { return dims_[i]; }

  // Every dim known (and rank known).
  bool fully_known() const;
  // The concrete dims when fully known.
  std::optional<std::vector<int64_t>> concrete() const;
  // Product of dims (symbolic where needed); unknown if rank unknown.
  Dim NumElements() const;
  // True when the known dims multiply past int64 (and none is 0): no tensor
  // can have this shape, and element counts computed from it would overflow.
  bool KnownDimsOverflow() const;

  // "[batch,3,224,224]", "[]" for a scalar, "?" for unknown rank.
  std::string ToString() const;
  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }

 private:
  bool rank_known_ = false;
  std::vector<Dim> dims_;
};

// "1x3x224x224" style for concrete shapes (used by CLI flags and messages).
std::string DimsToString(const std::vector<int64_t>& dims);

}  // namespace kiln
