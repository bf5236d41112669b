// Helpers private to the shape family; see shape_util.h.
#include "ops/shape_util.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>

#include "ops/op_util.h"

namespace kiln {
namespace shape_ops {
namespace {

bool IsIntegerType(DataType dt) {
  return IsSignedInteger(dt) || IsUnsignedInteger(dt) || dt == DataType::kBool;
}

// Removes one pair of parentheses that encloses the whole string.
std::string StripParens(std::string s) {
  while (s.size() >= 2 && s.front() == '(' && s.back() == ')') {
    int depth = 0;
    bool encloses = true;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '(') ++depth;
      if (s[i] == ')') --depth;
      if (depth == 0 && i + 1 < s.size()) {
        encloses = false;
        break;
      }
    }
    if (!encloses) break;
    s = s.substr(1, s.size() - 2);
  }
  return s;
}

bool IsNumber(const std::string& s) {
  if (s.empty() || s.size() > 18) return false;  // fits int64 without overflow
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

bool IsAtom(const std::string& s) {
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

// A dim as coefficient * product of symbolic factors.
struct Factors {
  int64_t coeff = 1;
  std::vector<std::string> syms;  // stripped of enclosing parentheses
  bool ok = true;
};

void AddFactors(const Dim& d, Factors* f) {
  if (!f->ok) return;
  if (d.known()) {
    if (__builtin_mul_overflow(f->coeff, d.value(), &f->coeff)) f->ok = false;
    return;
  }
  if (!d.symbolic()) {
    f->ok = false;
    return;
  }
  std::string s = StripParens(d.symbol());
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i < s.size() && s[i] == '(') ++depth;
    if (i < s.size() && s[i] == ')') --depth;
    if (i == s.size() || (depth == 0 && s[i] == '*')) {
      std::string piece = StripParens(s.substr(start, i - start));
      if (IsNumber(piece)) {
        if (__builtin_mul_overflow(f->coeff, std::stoll(piece), &f->coeff)) f->ok = false;
      } else if (!piece.empty()) {
        f->syms.push_back(piece);
      }
      start = i + 1;
    }
  }
}

Dim FromFactors(const Factors& f) {
  if (!f.ok) return Dim::Unknown();
  if (f.coeff == 0) return Dim(0);
  if (f.syms.empty()) return Dim(f.coeff);
  if (f.syms.size() == 1 && f.coeff == 1) return Dim::Symbol(f.syms[0]);
  std::string s;
  for (const std::string& a : f.syms) {
    if (!s.empty()) s += "*";
    s += IsAtom(a) ? a : "(" + a + ")";
  }
  if (f.coeff != 1) s += "*" + std::to_string(f.coeff);
  return Dim::Symbol(s);
}

// A dim as constant + sum of coefficient * monomial; monomials are keyed by
// their factors (sorted), so "a*b" and "b*a" are the same term.
struct Linear {
  int64_t constant = 0;
  std::map<std::string, int64_t> terms;
  bool ok = true;
};

void AddLinear(const std::string& expr, int64_t sign, Linear* l);

void AddChecked(int64_t* acc, int64_t v, Linear* l) {
  if (__builtin_add_overflow(*acc, v, acc)) l->ok = false;
}

void AddTerm(std::string piece, int64_t sign, Linear* l) {
  piece = StripParens(piece);
  if (piece.empty() || piece[0] == '-') {
    l->ok = false;
    return;
  }
  int depth = 0;
  for (char c : piece) {  // a parenthesized sum: expand it
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (depth == 0 && (c == '+' || c == '-')) {
      AddLinear(piece, sign, l);
      return;
    }
  }
  if (IsNumber(piece)) {
    AddChecked(&l->constant, sign * std::stoll(piece), l);
    return;
  }
  Factors f;
  AddFactors(Dim::Symbol(piece), &f);
  if (!f.ok) {
    l->ok = false;
    return;
  }
  std::sort(f.syms.begin(), f.syms.end());
  std::string key;
  for (const std::string& a : f.syms) key += (key.empty() ? "" : "*") + (IsAtom(a) ? a : "(" + a + ")");
  if (key.empty())
    AddChecked(&l->constant, sign * f.coeff, l);
  else
    AddChecked(&l->terms[key], sign * f.coeff, l);
}

void AddLinear(const std::string& expr, int64_t sign, Linear* l) {
  const std::string e = StripParens(expr);
  int depth = 0;
  size_t start = 0;
  int64_t cur = sign;
  for (size_t i = 0; i <= e.size() && l->ok; ++i) {
    const char c = i < e.size() ? e[i] : '\0';
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (i == e.size() || (depth == 0 && i > 0 && (c == '+' || c == '-'))) {
      AddTerm(e.substr(start, i - start), cur, l);
      cur = c == '-' ? -sign : sign;
      start = i + 1;
    }
  }
}

void AddLinear(const Dim& d, int64_t sign, Linear* l) {
  if (d.known())
    AddChecked(&l->constant, sign * d.value(), l);
  else if (d.symbolic())
    AddLinear(d.symbol(), sign, l);
  else
    l->ok = false;
}

// The linear form as a dim when it is a constant or one term (plus a
// constant); nullopt otherwise.
std::optional<Dim> FromLinear(const Linear& l) {
  if (!l.ok) return std::nullopt;
  std::string term;
  int64_t coeff = 0;
  for (const auto& [key, c] : l.terms) {
    if (c == 0) continue;
    if (!term.empty() || c < 0) return std::nullopt;
    term = key;
    coeff = c;
  }
  if (term.empty()) return l.constant >= 0 ? Dim(l.constant) : Dim::Unknown();
  std::string s = coeff == 1 ? term : (IsAtom(term) ? term : "(" + term + ")") + "*" + std::to_string(coeff);
  if (l.constant > 0) s = (IsAtom(s) ? s : "(" + s + ")") + "+" + std::to_string(l.constant);
  if (l.constant < 0) s = (IsAtom(s) ? s : "(" + s + ")") + "-" + std::to_string(-l.constant);
  return Dim::Symbol(s);
}

}  // namespace

Dim SymSub(const Dim& a, const Dim& b) {
  Linear l;
  AddLinear(a, 1, &l);
  AddLinear(b, -1, &l);
  if (auto d = FromLinear(l)) return *d;
  return a - b;
}

Dim SymAdd(const Dim& a, const Dim& b) {
  Linear l;
  AddLinear(a, 1, &l);
  AddLinear(b, 1, &l);
  if (auto d = FromLinear(l)) return *d;
  return a + b;
}

std::optional<std::vector<int64_t>> ConstInts(const InferContext& ctx, size_t i) {
  if (!ctx.has_input(i)) return std::nullopt;
  const Tensor* t = ctx.input_data(i);
  if (!t || !IsIntegerType(t->dtype())) return std::nullopt;
  std::vector<int64_t> v(static_cast<size_t>(t->numel()));
  for (int64_t k = 0; k < t->numel(); ++k) v[static_cast<size_t>(k)] = t->IntAt(k);
  return v;
}

std::optional<std::vector<Dim>> SymInts(const InferContext& ctx, size_t i) {
  if (!ctx.has_input(i)) return std::nullopt;
  if (auto c = ConstInts(ctx, i)) {
    if (static_cast<int64_t>(c->size()) > kMaxSymElements) return std::nullopt;
    return ToDims(*c);
  }
  if (const std::vector<Dim>* s = ctx.input_sym(i)) return *s;
  return std::nullopt;
}

void SetIntsOutput(InferContext& ctx, size_t i, DataType dtype, const Shape& shape, std::vector<Dim> values) {
  bool all_known = std::all_of(values.begin(), values.end(), [](const Dim& d) { return d.known(); });
  if (all_known && shape.fully_known() && (dtype == DataType::kInt64 || dtype == DataType::kInt32)) {
    Tensor t(dtype, *shape.concrete());
    if (t.numel() == static_cast<int64_t>(values.size())) {
      for (size_t k = 0; k < values.size(); ++k) {
        if (dtype == DataType::kInt64)
          t.mutable_data<int64_t>()[k] = values[k].value();
        else
          t.mutable_data<int32_t>()[k] = static_cast<int32_t>(values[k].value());
      }
      ctx.set_output_data(i, std::move(t));
      return;
    }
  }
  ctx.set_output(i, dtype, shape);
  if (static_cast<int64_t>(values.size()) <= kMaxSymElements) ctx.set_output_sym(i, std::move(values));
}

Status CheckDims(const NodeContext& ctx, const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return ctx.Error("shape " + IntsToString(dims) + " has a negative dim");
    if (d == 0) return Status::Ok();
  }
  for (int64_t d : dims) {
    if (d > kMaxElements || n > kMaxElements / d)
      return ctx.Error("shape " + IntsToString(dims) + " has too many elements");
    n *= d;
  }
  return Status::Ok();
}

namespace {
Status RequireInput(const RunContext& ctx, size_t i) {
  if (!ctx.has_input(i)) return ctx.Error("input " + std::to_string(i) + " is required");
  const RtValue& v = ctx.input_value(i);
  if (v.kind != ValueKind::kTensor || !v.tensor.defined())
    return ctx.Error("input " + std::to_string(i) + " must be a tensor");
  return Status::Ok();
}
}  // namespace

Status RequireInputs(const RunContext& ctx, size_t n) {
  for (size_t i = 0; i < n; ++i) KILN_RETURN_IF_ERROR(RequireInput(ctx, i));
  return Status::Ok();
}

Status ReadInts(const RunContext& ctx, size_t i, std::vector<int64_t>* out) {
  KILN_RETURN_IF_ERROR(RequireInput(ctx, i));
  const Tensor& t = ctx.input(i);
  if (!IsIntegerType(t.dtype()))
    return ctx.Error("input " + std::to_string(i) + " must be an integer tensor");
  *out = t.ToInt64s();
  return Status::Ok();
}

Status ReadScalarInt(const RunContext& ctx, size_t i, int64_t* out) {
  KILN_RETURN_IF_ERROR(RequireInput(ctx, i));
  const Tensor& t = ctx.input(i);
  if (t.numel() != 1) return ctx.Error("input " + std::to_string(i) + " must hold one value");
  if (!IsIntegerType(t.dtype()))
    return ctx.Error("input " + std::to_string(i) + " must be an integer tensor");
  *out = t.IntAt(0);
  return Status::Ok();
}

Dim Product(const std::vector<Dim>& dims) {
  Factors f;
  for (const Dim& d : dims) AddFactors(d, &f);
  return FromFactors(f);
}

Dim ExactDiv(const Dim& a, const Dim& b) {
  Factors fa, fb;
  AddFactors(a, &fa);
  AddFactors(b, &fb);
  if (!fa.ok || !fb.ok || fb.coeff == 0) return Dim::Unknown();
  if (fa.coeff % fb.coeff != 0) return Dim::Unknown();
  for (const std::string& s : fb.syms) {
    auto it = std::find(fa.syms.begin(), fa.syms.end(), s);
    if (it == fa.syms.end()) return Dim::Unknown();
    fa.syms.erase(it);
  }
  fa.coeff /= fb.coeff;
  return FromFactors(fa);
}

BlockCopier::BlockCopier(const Tensor& src, Tensor& dst) : size_(ElementSize(src.dtype())) {
  if (src.dtype() == DataType::kString) {
    src_str_ = &src.strings();
    dst_str_ = &dst.mutable_strings();
  } else {
    src_ = static_cast<const uint8_t*>(src.raw());
    dst_ = static_cast<uint8_t*>(dst.mutable_raw());
  }
}

void BlockCopier::Copy(int64_t src_off, int64_t dst_off, int64_t count) const {
  if (count <= 0) return;
  if (src_str_) {
    for (int64_t k = 0; k < count; ++k)
      (*dst_str_)[static_cast<size_t>(dst_off + k)] = (*src_str_)[static_cast<size_t>(src_off + k)];
    return;
  }
  std::memmove(dst_ + static_cast<size_t>(dst_off) * size_, src_ + static_cast<size_t>(src_off) * size_,
               static_cast<size_t>(count) * size_);
}

void FillWith(const Tensor& src, int64_t src_off, Tensor& dst) {
  if (dst.numel() == 0) return;
  if (src.dtype() == DataType::kString) {
    const std::string& v = src.strings()[static_cast<size_t>(src_off)];
    for (std::string& s : dst.mutable_strings()) s = v;
    return;
  }
  size_t size = ElementSize(src.dtype());
  const uint8_t* s = static_cast<const uint8_t*>(src.raw()) + static_cast<size_t>(src_off) * size;
  uint8_t* d = static_cast<uint8_t*>(dst.mutable_raw());
  for (int64_t k = 0; k < dst.numel(); ++k) std::memcpy(d + static_cast<size_t>(k) * size, s, size);
}

Tensor NumericScalar(DataType dt, double v) {
  Tensor t(dt, {});
  bool ok = DispatchAll(dt, [&](auto tag) {
    using T = decltype(tag);
    t.mutable_data<T>()[0] = FromCompute<T>(static_cast<compute_t<T>>(v));
  });
  return ok ? t : Tensor();
}

Status NormalizeAxes(const NodeContext& ctx, std::vector<int64_t>* axes, int64_t rank) {
  std::vector<bool> seen(static_cast<size_t>(std::max<int64_t>(rank, 0)), false);
  for (int64_t& a : *axes) {
    KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, a, rank, &a));
    if (seen[static_cast<size_t>(a)]) return ctx.Error("axis " + std::to_string(a) + " is repeated");
    seen[static_cast<size_t>(a)] = true;
  }
  return Status::Ok();
}

Tensor PermuteCopy(const Tensor& src, const std::vector<int64_t>& dims, const std::vector<int64_t>& perm) {
  std::vector<int64_t> strides = Strides(dims);
  std::vector<int64_t> out_dims(perm.size()), in_strides(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) {
    out_dims[i] = dims[static_cast<size_t>(perm[i])];
    in_strides[i] = strides[static_cast<size_t>(perm[i])];
  }
  Tensor out(src.dtype(), out_dims);
  ElementCopier copy(src, out);
  int64_t o = 0;
  ForEachBroadcast(out_dims, {in_strides}, [&](const std::vector<int64_t>& off) { copy.Copy(off[0], o++); });
  return out;
}

std::string IntsToString(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

}  // namespace shape_ops
}  // namespace kiln
