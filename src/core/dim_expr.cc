// Symbolic dim polynomials; see dim_expr.h.
#include "core/dim_expr.h"

#include <algorithm>
#include <cctype>
#include <numeric>

namespace kiln {
namespace dim_expr {
namespace {

// Beyond this many terms a product is not kept (the dim becomes unknown).
constexpr size_t kMaxTerms = 64;

bool IsName(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

bool IsNumber(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// A single atom with coefficient 1 and no constant.
const Atom* SingleAtom(const Poly& p) {
  if (p.constant != 0 || p.terms.size() != 1 || p.terms[0].coeff != 1 || p.terms[0].atoms.size() != 1)
    return nullptr;
  return &p.terms[0].atoms[0];
}

std::string OperandText(const Poly& p) {
  if (p.is_constant() && p.constant >= 0) return std::to_string(p.constant);
  const Atom* a = SingleAtom(p);
  if (a && !a->name.empty()) return a->key;
  return "(" + ToText(p) + ")";
}

Atom Quotient(const Poly& num, const Poly& den) {
  Atom a;
  a.num = std::make_shared<const Poly>(num);
  a.den = std::make_shared<const Poly>(den);
  a.text = OperandText(num) + "/" + OperandText(den);
  a.key = "(" + a.text + ")";
  return a;
}

void SetKey(Term* t) {
  std::sort(t->atoms.begin(), t->atoms.end(), [](const Atom& x, const Atom& y) { return x.key < y.key; });
  t->key.clear();
  for (const Atom& a : t->atoms) t->key += (t->key.empty() ? "" : "*") + a.key;
}

Poly FromAtom(Atom a) {
  Poly p;
  Term t;
  t.atoms.push_back(std::move(a));
  SetKey(&t);
  p.terms.push_back(std::move(t));
  return p;
}

// Adds c * t into the sorted term list (merging with an equal key).
bool AddTerm(std::vector<Term>* terms, const Term& t, int64_t c) {
  int64_t coeff;
  if (__builtin_mul_overflow(t.coeff, c, &coeff)) return false;
  auto it = std::lower_bound(terms->begin(), terms->end(), t.key,
                             [](const Term& x, const std::string& k) { return x.key < k; });
  if (it != terms->end() && it->key == t.key) {
    if (__builtin_add_overflow(it->coeff, coeff, &it->coeff)) return false;
    if (it->coeff == 0) terms->erase(it);
    return true;
  }
  if (coeff == 0) return true;
  Term n = t;
  n.coeff = coeff;
  terms->insert(it, std::move(n));
  return true;
}

std::optional<Poly> Scale(const Poly& p, int64_t c) {
  Poly out;
  if (__builtin_mul_overflow(p.constant, c, &out.constant)) return std::nullopt;
  for (const Term& t : p.terms)
    if (!AddTerm(&out.terms, t, c)) return std::nullopt;
  return out;
}

int64_t FloorDivInt(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// t's atoms with the multiset `m` removed; nullopt when m is not contained.
std::optional<std::vector<Atom>> RemoveAtoms(const std::vector<Atom>& atoms, const std::vector<Atom>& m) {
  std::vector<Atom> rest = atoms;
  for (const Atom& a : m) {
    auto it = std::find_if(rest.begin(), rest.end(), [&](const Atom& x) { return x.key == a.key; });
    if (it == rest.end()) return std::nullopt;
    rest.erase(it);
  }
  return rest;
}

bool IsZero(const Poly& p) { return p.is_constant() && p.constant == 0; }

std::optional<Poly> DivByConstant(const Poly& a, int64_t k) {
  if (k == 0) return std::nullopt;
  if (k < 0) {
    auto neg = Scale(a, -1);
    if (!neg || k == INT64_MIN) return std::nullopt;
    return DivByConstant(*neg, -k);
  }
  if (k == 1) return a;
  // a = k*q + r with r's coefficients not multiples of k and 0 <= r.constant < k.
  Poly q, r;
  q.constant = FloorDivInt(a.constant, k);
  r.constant = a.constant - q.constant * k;
  for (const Term& t : a.terms) {
    if (t.coeff % k == 0) {
      Term d = t;
      d.coeff = t.coeff / k;
      q.terms.push_back(std::move(d));
    } else {
      r.terms.push_back(t);
    }
  }
  if (r.is_constant()) return q;  // floor(r.constant / k) = 0
  int64_t g = std::gcd(k, r.constant);
  for (const Term& t : r.terms) g = std::gcd(g, t.coeff);
  if (g < 0) g = -g;
  if (g > 1) {
    r.constant /= g;
    for (Term& t : r.terms) t.coeff /= g;
    k /= g;
  }
  // floor((floor(x/d) + y) / k) = floor((x + d*y) / (d*k)).
  for (size_t i = 0; i < r.terms.size(); ++i) {
    const Term& t = r.terms[i];
    if (t.coeff != 1 || t.atoms.size() != 1 || t.atoms[0].name.size() || !t.atoms[0].den->is_constant() ||
        t.atoms[0].den->constant <= 0)
      continue;
    const int64_t d = t.atoms[0].den->constant;
    Poly y = r;
    y.terms.erase(y.terms.begin() + static_cast<std::ptrdiff_t>(i));
    auto dy = Scale(y, d);
    if (!dy) break;
    auto inner = Add(*t.atoms[0].num, *dy);
    int64_t dk;
    if (!inner || __builtin_mul_overflow(d, k, &dk)) break;
    auto folded = DivByConstant(*inner, dk);
    if (!folded) break;
    return Add(q, *folded);
  }
  return Add(q, FromAtom(Quotient(r, Constant(k))));
}

}  // namespace

Poly Constant(int64_t c) {
  Poly p;
  p.constant = c;
  return p;
}

Poly Symbol(const std::string& name) {
  Atom a;
  a.name = name;
  a.text = name;
  a.key = IsName(name) ? name : "(" + name + ")";
  return FromAtom(std::move(a));
}

std::optional<Poly> Add(const Poly& a, const Poly& b) {
  Poly out = a;
  if (__builtin_add_overflow(a.constant, b.constant, &out.constant)) return std::nullopt;
  for (const Term& t : b.terms)
    if (!AddTerm(&out.terms, t, 1)) return std::nullopt;
  return out;
}

std::optional<Poly> Sub(const Poly& a, const Poly& b) {
  auto nb = Scale(b, -1);
  if (!nb) return std::nullopt;
  return Add(a, *nb);
}

std::optional<Poly> Mul(const Poly& a, const Poly& b) {
  // Every term times every term, the constants as terms without atoms.
  auto parts = [](const Poly& p) {
    std::vector<Term> v = p.terms;
    if (p.constant != 0) {
      Term c;
      c.coeff = p.constant;
      v.push_back(c);
    }
    return v;
  };
  Poly out;
  for (const Term& x : parts(a)) {
    for (const Term& y : parts(b)) {
      Term t;
      if (__builtin_mul_overflow(x.coeff, y.coeff, &t.coeff)) return std::nullopt;
      t.atoms = x.atoms;
      t.atoms.insert(t.atoms.end(), y.atoms.begin(), y.atoms.end());
      if (t.atoms.empty()) {
        if (__builtin_add_overflow(out.constant, t.coeff, &out.constant)) return std::nullopt;
        continue;
      }
      SetKey(&t);
      if (!AddTerm(&out.terms, t, 1) || out.terms.size() > kMaxTerms) return std::nullopt;
    }
  }
  return out;
}

std::optional<Poly> FloorDiv(const Poly& a, const Poly& b) {
  if (b.is_constant()) return DivByConstant(a, b.constant);
  if (IsZero(a)) return a;
  if (b.constant == 0 && b.terms.size() == 1) {
    // A monomial divisor c*m: floor((c*m*q + r) / (c*m)) = q + floor(r / (c*m)).
    const Term& m = b.terms[0];
    Poly q, r;
    r.constant = a.constant;
    for (const Term& t : a.terms) {
      auto rest = t.coeff % m.coeff == 0 ? RemoveAtoms(t.atoms, m.atoms) : std::nullopt;
      if (!rest) {
        r.terms.push_back(t);
        continue;
      }
      Term d;
      d.coeff = t.coeff / m.coeff;
      d.atoms = std::move(*rest);
      if (d.atoms.empty()) {
        if (__builtin_add_overflow(q.constant, d.coeff, &q.constant)) return std::nullopt;
        continue;
      }
      SetKey(&d);
      if (!AddTerm(&q.terms, d, 1)) return std::nullopt;
    }
    if (IsZero(r)) return q;
    return Add(q, FromAtom(Quotient(r, b)));
  }
  // a = n*b for a constant n.
  if (!a.terms.empty() && a.terms[0].key == b.terms[0].key && a.terms[0].coeff % b.terms[0].coeff == 0) {
    auto nb = Scale(b, a.terms[0].coeff / b.terms[0].coeff);
    auto diff = nb ? Sub(a, *nb) : std::nullopt;
    if (diff && IsZero(*diff)) return Constant(a.terms[0].coeff / b.terms[0].coeff);
  }
  return FromAtom(Quotient(a, b));
}

std::string ToText(const Poly& p) {
  // A lone quotient goes bare after a binary + or - ("/" binds tighter), but
  // not after a leading unary minus: "-(w/3)" is not "-w/3" = (-w)/3.
  auto term_text = [](const Term& t, bool leading) {
    const int64_t c = t.coeff < 0 ? -t.coeff : t.coeff;
    if (c == 1 && t.atoms.size() == 1 && t.atoms[0].name.empty() && !leading) return t.atoms[0].text;
    return c == 1 ? t.key : t.key + "*" + std::to_string(c);
  };
  if (p.is_constant()) return std::to_string(p.constant);
  if (const Atom* a = SingleAtom(p)) return a->text;
  std::string s;
  for (const Term& t : p.terms)  // positive terms first: "seq-past", not "-past+seq"
    if (t.coeff > 0) s += (s.empty() ? "" : "+") + term_text(t, false);
  const bool constant_first = s.empty() && p.constant > 0;  // "1-h"
  if (constant_first) s = std::to_string(p.constant);
  for (const Term& t : p.terms)
    if (t.coeff < 0) s += "-" + term_text(t, s.empty());
  if (!constant_first && p.constant > 0) s += "+" + std::to_string(p.constant);
  if (p.constant < 0) s += std::to_string(p.constant);
  return s;
}

namespace {

class Parser {
 public:
  explicit Parser(const std::string& s) : s_(s) {}

  std::optional<Poly> Run() {
    auto p = Expr();
    Skip();
    if (!p || pos_ != s_.size()) return std::nullopt;
    return p;
  }

 private:
  void Skip() {
    while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
  }
  bool Eat(char c) {
    Skip();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  std::optional<Poly> Expr() {
    auto p = Product();
    while (p) {
      if (Eat('+')) {
        auto q = Product();
        p = q ? Add(*p, *q) : std::nullopt;
      } else if (Eat('-')) {
        auto q = Product();
        p = q ? Sub(*p, *q) : std::nullopt;
      } else {
        break;
      }
    }
    return p;
  }
  std::optional<Poly> Product() {
    auto p = Factor();
    while (p) {
      if (Eat('*')) {
        auto q = Factor();
        p = q ? Mul(*p, *q) : std::nullopt;
      } else if (Eat('/')) {
        auto q = Factor();
        p = q ? FloorDiv(*p, *q) : std::nullopt;
      } else {
        break;
      }
    }
    return p;
  }
  std::optional<Poly> Factor() {
    if (++depth_ > 64) return std::nullopt;
    std::optional<Poly> p;
    if (Eat('(')) {
      p = Expr();
      if (!Eat(')')) p = std::nullopt;
    } else if (Eat('-')) {
      auto q = Factor();
      p = q ? Sub(Constant(0), *q) : std::nullopt;
    } else {
      size_t start = pos_;
      while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_'))
        ++pos_;
      std::string word = s_.substr(start, pos_ - start);
      if (IsNumber(word) && word.size() <= 18)
        p = Constant(std::stoll(word));
      else if (IsName(word))
        p = Symbol(word);
    }
    --depth_;
    return p;
  }

  const std::string& s_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

std::optional<Poly> Parse(const std::string& text) { return Parser(text).Run(); }

std::optional<int64_t> Evaluate(const Poly& p, const std::map<std::string, int64_t>& symbols) {
  int64_t sum = p.constant;
  for (const Term& t : p.terms) {
    int64_t v = t.coeff;
    for (const Atom& a : t.atoms) {
      std::optional<int64_t> x;
      if (!a.name.empty()) {
        auto it = symbols.find(a.name);
        if (it != symbols.end()) x = it->second;
      } else {
        auto n = Evaluate(*a.num, symbols);
        auto d = Evaluate(*a.den, symbols);
        if (n && d && *d != 0) x = FloorDivInt(*n, *d);
      }
      if (!x || __builtin_mul_overflow(v, *x, &v)) return std::nullopt;
    }
    if (__builtin_add_overflow(sum, v, &sum)) return std::nullopt;
  }
  return sum;
}

void CollectSymbols(const Poly& p, std::set<std::string>* names) {
  for (const Term& t : p.terms)
    for (const Atom& a : t.atoms) {
      if (!a.name.empty()) {
        names->insert(a.name);
      } else {
        CollectSymbols(*a.num, names);
        CollectSymbols(*a.den, names);
      }
    }
}

}  // namespace dim_expr
}  // namespace kiln
