// Canonical symbolic dim arithmetic behind Dim (core/shape.h). A dim
// expression is a polynomial with int64 coefficients over atoms; an atom is a
// named symbol ("batch") or a floor quotient that does not simplify
// ("(h+1)/2"). The form is canonical: like terms combined, zero terms dropped,
// terms and factors sorted by their text, so equal polynomials print the same
// text (which is what Dim compares).
//
// Floor division (the "/" of the text form) is exact integer arithmetic, for
// any sign of the numerator:
//   floor((k*q + r) / k)        = q + floor(r / k)            (q integer)
//   floor((floor(x/a) + y) / c) = floor((x + a*y) / (a*c))    (a, c > 0; y integer)
// so (x*4)/2 = x*2, (x/2)/2 = x/4, and a chain of stride-2 convolutions with
// padding stays one quotient: ResNet's height goes to "(height+31)/32".
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

struct Atom {
  std::string name;                 // a symbol; empty for a quotient
  std::shared_ptr<const Poly> num;  // floor(num / den) for a quotient
  std::shared_ptr<const Poly> den;
  std::string text;  // "batch", "(h+1)/2"
  std::string key;   // text as a factor: parenthesized unless a plain name
};

struct Term {
  int64_t coeff = 1;
  std::vector<Atom> atoms;  // sorted by key; repeats allowed (batch*batch)
  std::string key;          // the atoms' keys joined by '*'
};

struct Poly {
  int64_t constant = 0;
  std::vector<Term> terms;  // sorted by key, no zero coefficients
  bool is_constant() const { return terms.empty(); }
};

Poly Constant(int64_t c);
Poly Symbol(const std::string& name);

// nullopt on int64 overflow or an expression too large to keep.
std::optional<Poly> Add(const Poly& a, const Poly& b);
std::optional<Poly> Sub(const Poly& a, const Poly& b);
std::optional<Poly> Mul(const Poly& a, const Poly& b);
// floor(a / b); nullopt also for a zero divisor.
std::optional<Poly> FloorDiv(const Poly& a, const Poly& b);

// The canonical text: "batch*seq*12", "past+seq", "seq-1", "(h+31)/32".
std::string ToText(const Poly& p);
// Parses the text form (names, integers, + - * / and parentheses; spaces
// allowed); nullopt when `text` is not such an expression.
std::optional<Poly> Parse(const std::string& text);
// The value with every symbol bound; nullopt when a symbol is missing, on a
// zero divisor or on overflow.
std::optional<int64_t> Evaluate(const Poly& p, const std::map<std::string, int64_t>& symbols);
// The symbol names `p` uses (quotients' included), added to `names`.
void CollectSymbols(const Poly& p, std::set<std::string>* names);

}  // namespace dim_expr
}  // namespace kiln
