// .npy reader and writer. The header is a Python dict literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }; a small parser
// for Python literals (strings, ints, bools, tuples, lists, dicts) reads it.
#include "io/npy.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <utility>
#include <vector>

namespace kiln {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;

// ---- a tiny Python literal parser (enough for .npy headers) ----

struct PyValue {
  enum class Kind { kNone, kBool, kInt, kString, kTuple, kList, kDict };
  Kind kind = Kind::kNone;
  bool b = false;
  int64_t i = 0;
  std::string s;
  std::vector<PyValue> items;           // tuple / list
  std::map<std::string, PyValue> dict;  // dict with string keys
};

class PyParser {
 public:
  explicit PyParser(const std::string& text) : t_(text) {}

  bool Parse(PyValue* out, std::string* err) {
    if (!Value(out, 0)) {
      *err = err_.empty() ? "malformed header" : err_;
      return false;
    }
    Skip();
    if (pos_ != t_.size()) {
      *err = "unexpected text after the header dict";
      return false;
    }
    return true;
  }

 private:
  void Skip() {
    while (pos_ < t_.size() && (t_[pos_] == ' ' || t_[pos_] == '\t' || t_[pos_] == '\n' || t_[pos_] == '\r'))
      ++pos_;
  }
  bool Fail(const std::string& m) {
    if (err_.empty()) err_ = m + " at header offset " + std::to_string(pos_);
    return false;
  }
  bool Peek(char c) {
    Skip();
    return pos_ < t_.size() && t_[pos_] == c;
  }
  bool Word(const char* w) {
    size_t n = std::strlen(w);
    if (t_.compare(pos_, n, w) != 0) return false;
    pos_ += n;
    return true;
  }

  bool Value(PyValue* v, int depth) {
    if (depth > 16) return Fail("header nests too deeply");
    Skip();
    if (pos_ >= t_.size()) return Fail("header ends early");
    char c = t_[pos_];
    if (c == '\'' || c == '"') {
      v->kind = PyValue::Kind::kString;
      return String(&v->s);
    }
    if (c == '(' || c == '[') {
      v->kind = c == '(' ? PyValue::Kind::kTuple : PyValue::Kind::kList;
      return Sequence(v, c == '(' ? ')' : ']', depth);
    }
    if (c == '{') {
      v->kind = PyValue::Kind::kDict;
      return Dict(v, depth);
    }
    if (Word("True")) {
      v->kind = PyValue::Kind::kBool;
      v->b = true;
      return true;
    }
    if (Word("False")) {
      v->kind = PyValue::Kind::kBool;
      return true;
    }
    if (Word("None")) return true;
    if (c == '-' || (c >= '0' && c <= '9')) {
      v->kind = PyValue::Kind::kInt;
      return Int(&v->i);
    }
    return Fail(std::string("unexpected character '") + c + "'");
  }

  bool String(std::string* s) {
    char q = t_[pos_++];
    while (pos_ < t_.size() && t_[pos_] != q) {
      if (t_[pos_] == '\\' && pos_ + 1 < t_.size()) ++pos_;
      s->push_back(t_[pos_++]);
    }
    if (pos_ >= t_.size()) return Fail("unterminated string");
    ++pos_;
    return true;
  }

  bool Int(int64_t* out) {
    bool neg = false;
    if (t_[pos_] == '-') {
      neg = true;
      ++pos_;
    }
    if (pos_ >= t_.size() || t_[pos_] < '0' || t_[pos_] > '9') return Fail("bad integer");
    uint64_t v = 0;
    while (pos_ < t_.size() && t_[pos_] >= '0' && t_[pos_] <= '9') {
      uint64_t d = static_cast<uint64_t>(t_[pos_++] - '0');
      if (v > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - d) / 10)
        return Fail("integer too large");
      v = v * 10 + d;
    }
    if (pos_ < t_.size() && (t_[pos_] == 'L' || t_[pos_] == 'l')) ++pos_;  // Python 2 longs
    *out = neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
    return true;
  }

  bool Sequence(PyValue* v, char close, int depth) {
    ++pos_;
    while (true) {
      if (Peek(close)) {
        ++pos_;
        return true;
      }
      PyValue item;
      if (!Value(&item, depth + 1)) return false;
      v->items.push_back(std::move(item));
      if (Peek(',')) {
        ++pos_;
        continue;
      }
      if (!Peek(close)) return Fail(std::string("expected ',' or '") + close + "'");
    }
  }

  bool Dict(PyValue* v, int depth) {
    ++pos_;
    while (true) {
      if (Peek('}')) {
        ++pos_;
        return true;
      }
      Skip();
      if (pos_ >= t_.size() || (t_[pos_] != '\'' && t_[pos_] != '"')) return Fail("expected a string key");
      std::string key;
      if (!String(&key)) return false;
      if (!Peek(':')) return Fail("expected ':'");
      ++pos_;
      PyValue item;
      if (!Value(&item, depth + 1)) return false;
      v->dict[key] = std::move(item);
      if (Peek(',')) {
        ++pos_;
        continue;
      }
      if (!Peek('}')) return Fail("expected ',' or '}'");
    }
  }

  const std::string& t_;
  size_t pos_ = 0;
  std::string err_;
};

// ---- dtypes ----

struct NpyType {
  DataType dtype = DataType::kUndefined;
  bool big_endian = false;
  size_t item_size = 0;  // bytes per element in the file
  enum class Str { kNone, kUnicode, kBytes } str = Str::kNone;
};

Status Err(const std::string& name, const std::string& msg) { return InvalidArgument(name + ": " + msg); }

Expected<NpyType> ParseDescr(const std::string& descr, const std::string& name) {
  if (descr.size() < 2) return Err(name, "unsupported dtype '" + descr + "'");
  NpyType t;
  char order = descr[0];
  std::string code = descr.substr(1);
  if (order != '<' && order != '>' && order != '|' && order != '=')
    return Err(name, "unsupported dtype '" + descr + "' (no byte-order character)");
  t.big_endian = order == '>';
  char kind = code[0];
  std::string width_text = code.substr(1);
  if (kind == 'O') return Err(name, "object arrays (dtype '" + descr + "') are not supported");
  if (width_text.empty() || width_text.find_first_not_of("0123456789") != std::string::npos ||
      width_text.size() > 9)
    return Err(name, "unsupported dtype '" + descr + "'");
  size_t width = static_cast<size_t>(std::stoul(width_text));
  static const struct {
    char kind;
    size_t width;
    DataType dt;
  } kTable[] = {
      {'b', 1, DataType::kBool},      {'i', 1, DataType::kInt8},        {'i', 2, DataType::kInt16},
      {'i', 4, DataType::kInt32},     {'i', 8, DataType::kInt64},       {'u', 1, DataType::kUInt8},
      {'u', 2, DataType::kUInt16},    {'u', 4, DataType::kUInt32},      {'u', 8, DataType::kUInt64},
      {'f', 2, DataType::kFloat16},   {'f', 4, DataType::kFloat},       {'f', 8, DataType::kDouble},
      {'c', 8, DataType::kComplex64}, {'c', 16, DataType::kComplex128},
  };
  for (const auto& r : kTable) {
    if (r.kind == kind && r.width == width) {
      t.dtype = r.dt;
      t.item_size = width;
      return t;
    }
  }
  if (kind == 'U' || kind == 'S') {
    // Zero-width strings hold no bytes, so a tiny file could ask for any
    // number of them; numpy itself never writes one (it widens them to 1).
    if (width == 0) return Err(name, "zero-width string dtype '" + descr + "' is not supported");
    t.dtype = DataType::kString;
    t.str = kind == 'U' ? NpyType::Str::kUnicode : NpyType::Str::kBytes;
    t.item_size = kind == 'U' ? width * 4 : width;
    return t;
  }
  return Err(name, "unsupported dtype '" + descr + "'");
}

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | ((cp >> 18) & 0x07)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// UTF-8 → code points; invalid bytes are taken as Latin-1 so nothing is lost silently.
std::vector<uint32_t> DecodeUtf8(const std::string& s) {
  std::vector<uint32_t> cps;
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    int extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
    uint32_t cp = extra == 0 ? c : extra == 1 ? (c & 0x1fu) : extra == 2 ? (c & 0x0fu) : (c & 0x07u);
    bool ok = c < 0x80 || c >= 0xc0;  // a stray continuation byte is invalid
    for (int k = 1; ok && k <= extra; ++k) {
      if (i + static_cast<size_t>(k) >= s.size()) {
        ok = false;
        break;
      }
      auto cc = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      if ((cc & 0xc0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3fu);
    }
    if (!ok) {
      cps.push_back(c);
      ++i;
      continue;
    }
    cps.push_back(cp);
    i += static_cast<size_t>(extra) + 1;
  }
  return cps;
}

uint32_t LoadLE32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

}  // namespace

bool NpyCompatible(DataType dt) { return !NpyDescr(dt).empty() || dt == DataType::kString; }

std::string NpyDescr(DataType dt) {
  switch (dt) {
    case DataType::kBool:
      return "|b1";
    case DataType::kInt8:
      return "|i1";
    case DataType::kUInt8:
      return "|u1";
    case DataType::kInt16:
      return "<i2";
    case DataType::kUInt16:
      return "<u2";
    case DataType::kInt32:
      return "<i4";
    case DataType::kUInt32:
      return "<u4";
    case DataType::kInt64:
      return "<i8";
    case DataType::kUInt64:
      return "<u8";
    case DataType::kFloat16:
      return "<f2";
    case DataType::kFloat:
      return "<f4";
    case DataType::kDouble:
      return "<f8";
    case DataType::kComplex64:
      return "<c8";
    case DataType::kComplex128:
      return "<c16";
    default:
      return "";
  }
}

Expected<Tensor> ParseNpy(const void* data, size_t size, const std::string& name) {
  const auto* p = static_cast<const unsigned char*>(data);
  if (size < kMagicLen + 2 || std::memcmp(p, kMagic, kMagicLen) != 0)
    return Err(name, "not a .npy file (bad magic; expected \\x93NUMPY)");
  int major = p[6];
  size_t header_len = 0;
  size_t offset = 0;
  if (major == 1) {
    if (size < 10) return Err(name, "truncated .npy header");
    header_len = static_cast<size_t>(p[8]) | (static_cast<size_t>(p[9]) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) return Err(name, "truncated .npy header");
    header_len = LoadLE32(p + 8);
    offset = 12;
  } else {
    return Err(name, "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(p[7]));
  }
  if (header_len > size - offset) return Err(name, "truncated .npy header");
  std::string header(reinterpret_cast<const char*>(p + offset), header_len);
  offset += header_len;

  PyValue dict;
  std::string perr;
  if (!PyParser(header).Parse(&dict, &perr)) return Err(name, "bad .npy header: " + perr);
  if (dict.kind != PyValue::Kind::kDict) return Err(name, "bad .npy header: not a dict");
  auto descr_it = dict.dict.find("descr");
  auto fortran_it = dict.dict.find("fortran_order");
  auto shape_it = dict.dict.find("shape");
  if (descr_it == dict.dict.end() || fortran_it == dict.dict.end() || shape_it == dict.dict.end())
    return Err(name, "bad .npy header: needs 'descr', 'fortran_order' and 'shape'");
  if (descr_it->second.kind != PyValue::Kind::kString)
    return Err(name, "structured arrays are not supported (descr is not a plain dtype)");
  if (fortran_it->second.kind != PyValue::Kind::kBool)
    return Err(name, "bad .npy header: bad 'fortran_order'");
  if (shape_it->second.kind != PyValue::Kind::kTuple)
    return Err(name, "bad .npy header: 'shape' is not a tuple");

  KILN_ASSIGN_OR_RETURN(NpyType type, ParseDescr(descr_it->second.s, name));
  std::vector<int64_t> dims;
  int64_t numel = 1;
  for (const PyValue& d : shape_it->second.items) {
    if (d.kind != PyValue::Kind::kInt || d.i < 0)
      return Err(name, "bad .npy header: bad dimension in 'shape'");
    dims.push_back(d.i);
    if (numel != 0 && d.i != 0 && numel > std::numeric_limits<int64_t>::max() / d.i)
      return Err(name, "shape is too large");
    numel *= d.i;
  }
  bool fortran = fortran_it->second.b;
  // A Fortran-ordered array of rank <= 1 has the same layout as C order.
  int nontrivial = 0;
  for (int64_t d : dims) nontrivial += d > 1 ? 1 : 0;
  if (fortran && nontrivial > 1)
    return Err(name, "Fortran-ordered arrays are not supported (save with np.ascontiguousarray)");

  size_t remaining = size - offset;
  if (type.item_size != 0 && static_cast<uint64_t>(numel) > remaining / type.item_size)
    return Err(name, "truncated data: shape " + DimsToString(dims) + " of '" + descr_it->second.s +
                         "' needs " + std::to_string(static_cast<uint64_t>(numel) * type.item_size) +
                         " bytes, file has " + std::to_string(remaining));
  const unsigned char* body = p + offset;

  Tensor t(type.dtype, dims);
  if (type.dtype == DataType::kString) {
    auto& strs = t.mutable_strings();
    for (int64_t e = 0; e < numel; ++e) {
      const unsigned char* q = body + static_cast<size_t>(e) * type.item_size;
      std::string s;
      if (type.str == NpyType::Str::kBytes) {
        size_t n = type.item_size;
        while (n > 0 && q[n - 1] == 0) --n;
        s.assign(reinterpret_cast<const char*>(q), n);
      } else {
        size_t n = type.item_size / 4;
        std::vector<uint32_t> cps(n);
        for (size_t k = 0; k < n; ++k) {
          const unsigned char* c = q + 4 * k;
          cps[k] = type.big_endian ? (static_cast<uint32_t>(c[0]) << 24 | static_cast<uint32_t>(c[1]) << 16 |
                                      static_cast<uint32_t>(c[2]) << 8 | c[3])
                                   : LoadLE32(c);
        }
        while (!cps.empty() && cps.back() == 0) cps.pop_back();
        for (uint32_t cp : cps) AppendUtf8(&s, cp);
      }
      strs[static_cast<size_t>(e)] = std::move(s);
    }
    return t;
  }
  size_t nbytes = static_cast<size_t>(numel) * type.item_size;
  auto* out = static_cast<unsigned char*>(t.mutable_raw());
  if (nbytes) std::memcpy(out, body, nbytes);
  // Byte-swap big-endian data (complex: each half separately).
  size_t swap_unit = type.dtype == DataType::kComplex64 || type.dtype == DataType::kComplex128
                         ? type.item_size / 2
                         : type.item_size;
  if (type.big_endian && swap_unit > 1) {
    for (size_t off = 0; off < nbytes; off += swap_unit)
      for (size_t a = 0, b = swap_unit - 1; a < b; ++a, --b) std::swap(out[off + a], out[off + b]);
  }
  if (type.dtype == DataType::kBool)
    for (size_t k = 0; k < nbytes; ++k) out[k] = out[k] ? 1 : 0;
  return t;
}

Expected<Tensor> ReadNpy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return IoError(path + ": cannot open file");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return IoError(path + ": read error");
  std::string bytes = ss.str();
  return ParseNpy(bytes.data(), bytes.size(), path);
}

Expected<std::string> EncodeNpy(const Tensor& t) {
  if (!t.defined()) return InvalidArgument("cannot write an undefined tensor as .npy");
  std::string descr = NpyDescr(t.dtype());
  size_t width = 0;  // code points per string
  std::vector<std::vector<uint32_t>> cps;
  if (t.dtype() == DataType::kString) {
    cps.reserve(t.strings().size());
    for (const std::string& s : t.strings()) {
      cps.push_back(DecodeUtf8(s));
      width = std::max(width, cps.back().size());
    }
    if (width == 0) width = 1;
    descr = "<U" + std::to_string(width);
  }
  if (descr.empty())
    return Unsupported(std::string("dtype ") + std::string(DataTypeName(t.dtype())) +
                       " has no .npy equivalent; convert it first (e.g. to float32)");
  std::string shape = "(";
  for (size_t i = 0; i < t.dims().size(); ++i) {
    shape += std::to_string(t.dims()[i]);
    if (t.dims().size() == 1 || i + 1 < t.dims().size()) shape += ",";
    if (i + 1 < t.dims().size()) shape += " ";
  }
  shape += ")";
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad with spaces so the data starts on a 64-byte boundary; ends with '\n'.
  int major = 1;
  size_t prefix = kMagicLen + 2 + 2;
  if (header.size() + prefix + 1 > 65535) {
    major = 2;
    prefix = kMagicLen + 2 + 4;
  }
  size_t total = prefix + header.size() + 1;
  size_t padded = (total + 63) / 64 * 64;
  header.append(padded - total, ' ');
  header.push_back('\n');

  std::string out(kMagic, kMagicLen);
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  size_t hl = header.size();
  out.push_back(static_cast<char>(hl & 0xff));
  out.push_back(static_cast<char>((hl >> 8) & 0xff));
  if (major == 2) {
    out.push_back(static_cast<char>((hl >> 16) & 0xff));
    out.push_back(static_cast<char>((hl >> 24) & 0xff));
  }
  out += header;
  if (t.dtype() == DataType::kString) {
    for (const auto& s : cps) {
      for (size_t k = 0; k < width; ++k) {
        uint32_t cp = k < s.size() ? s[k] : 0;
        for (int b = 0; b < 4; ++b) out.push_back(static_cast<char>((cp >> (8 * b)) & 0xff));
      }
    }
  } else if (t.nbytes()) {
    out.append(static_cast<const char*>(t.raw()), t.nbytes());
  }
  return out;
}

Status WriteNpy(const std::string& path, const Tensor& t) {
  auto bytes = EncodeNpy(t);
  if (!bytes.ok()) return bytes.status().WithPrefix(path);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return IoError(path + ": cannot open file for writing");
  f.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
  f.close();
  if (!f) return IoError(path + ": write error");
  return Status::Ok();
}

}  // namespace kiln
