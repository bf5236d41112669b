// String ops: StringConcat, StringSplit, StringNormalizer and
// TfIdfVectorizer (n-gram counting over int or string tokens).
// RegexFullMatch lives in misc_regex.cc.
#include <map>
#include <set>

#include "ops/op_table.h"
#include "ops/op_util.h"

namespace kiln {
namespace ops {
namespace {

Status CheckString(const RunContext& ctx, size_t i) {
  if (!ctx.has_input(i) || ctx.input_value(i).kind != ValueKind::kTensor ||
      ctx.input(i).dtype() != DataType::kString)
    return ctx.Error("input " + std::to_string(i) + " must be a string tensor");
  return Status::Ok();
}

// Appends code point cp to s as UTF-8.
void AppendUtf8(uint32_t cp, std::string* s) {
  if (cp < 0x80) {
    s->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    s->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    s->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    s->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    s->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    s->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    s->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Case mapping of one code point: ASCII, Latin-1, basic Greek and Cyrillic.
uint32_t MapCase(uint32_t c, bool upper) {
  auto in = [&](uint32_t lo, uint32_t hi) { return c >= lo && c <= hi; };
  if (upper) {
    if (in('a', 'z') || (in(0xE0, 0xFE) && c != 0xF7) || (in(0x3B1, 0x3C9) && c != 0x3C2) || in(0x430, 0x44F))
      return c - 0x20;
    if (in(0x450, 0x45F)) return c - 0x50;
  } else {
    if (in('A', 'Z') || (in(0xC0, 0xDE) && c != 0xD7) || (in(0x391, 0x3A9) && c != 0x3A2) || in(0x410, 0x42F))
      return c + 0x20;
    if (in(0x400, 0x40F)) return c + 0x50;
  }
  return c;
}

// Upper/lower case of UTF-8 text; invalid bytes pass through unchanged.
std::string ChangeCase(const std::string& s, bool upper) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    unsigned char b = static_cast<unsigned char>(s[i]);
    size_t len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    bool valid = len > 0 && i + len <= s.size();
    uint32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
    for (size_t k = 1; valid && k < len; ++k) {
      unsigned char cb = static_cast<unsigned char>(s[i + k]);
      if ((cb >> 6) != 2) valid = false;
      cp = (cp << 6) | (cb & 0x3F);
    }
    if (!valid) {
      out.push_back(s[i++]);
      continue;
    }
    AppendUtf8(MapCase(cp, upper), &out);
    i += len;
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------- StringConcat

Status InferStringConcat(InferContext& ctx) {
  if (ctx.num_inputs() != 2) return ctx.Error("needs two inputs");
  auto s = BroadcastShapes({ctx.input_shape(0), ctx.input_shape(1)});
  if (!s.ok()) return ctx.Error(s.status().message());
  ctx.set_output(0, DataType::kString, *s);
  return Status::Ok();
}

Status RunStringConcat(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(CheckString(ctx, 0));
  KILN_RETURN_IF_ERROR(CheckString(ctx, 1));
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  std::vector<int64_t> dims;
  if (!BroadcastDims({a.dims(), b.dims()}, &dims)) return ctx.Error("shapes do not broadcast");
  Tensor out(DataType::kString, dims);
  std::vector<std::string>& o = out.mutable_strings();
  const auto& as = a.strings();
  const auto& bs = b.strings();
  size_t i = 0;
  ForEachBroadcast(dims, {BroadcastStrides(a.dims(), dims), BroadcastStrides(b.dims(), dims)},
                   [&](const std::vector<int64_t>& off) {
                     o[i++] = as[static_cast<size_t>(off[0])] + bs[static_cast<size_t>(off[1])];
                   });
  ctx.set_output(0, std::move(out));
  return Status::Ok();
}

// ---------------------------------------------------------------- StringSplit
// Like Python's str.split(delimiter, maxsplit): no or empty delimiter splits
// on runs of whitespace and drops leading/trailing whitespace.

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::vector<std::string> SplitString(const std::string& s, const std::string& delim, int64_t maxsplit) {
  std::vector<std::string> parts;
  if (!delim.empty()) {
    size_t start = 0;
    while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
      size_t p = s.find(delim, start);
      if (p == std::string::npos) break;
      parts.push_back(s.substr(start, p - start));
      start = p + delim.size();
    }
    parts.push_back(s.substr(start));
    return parts;
  }
  size_t i = 0;
  while (true) {
    while (i < s.size() && IsSpace(s[i])) ++i;
    if (i >= s.size()) break;
    if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) >= maxsplit) {
      parts.push_back(s.substr(i));  // the rest, trailing whitespace kept
      break;
    }
    size_t j = i;
    while (j < s.size() && !IsSpace(s[j])) ++j;
    parts.push_back(s.substr(i, j - i));
    i = j;
  }
  return parts;
}

}  // namespace

Status InferStringSplit(InferContext& ctx) {
  const Shape& s = ctx.input_shape(0);
  Shape y = Shape::Unranked();
  if (s.rank_known()) {
    std::vector<Dim> dims = s.dims();
    dims.push_back(Dim::Unknown());
    y = Shape(std::move(dims));
  }
  ctx.set_output(0, DataType::kString, y);
  ctx.set_output(1, DataType::kInt64, s);
  return Status::Ok();
}

Status RunStringSplit(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(CheckString(ctx, 0));
  const Tensor& x = ctx.input(0);
  const std::string delim = ctx.attr_string("delimiter", "");
  const int64_t maxsplit = ctx.has_attr("maxsplit") ? ctx.attr_int("maxsplit", -1) : -1;
  std::vector<std::vector<std::string>> parts;
  size_t width = 0;
  for (const std::string& s : x.strings()) {
    parts.push_back(SplitString(s, delim, maxsplit));
    width = std::max(width, parts.back().size());
  }
  std::vector<int64_t> dims = x.dims();
  dims.push_back(static_cast<int64_t>(width));
  Tensor y(DataType::kString, dims);
  Tensor z(DataType::kInt64, x.dims());
  std::vector<std::string>& ys = y.mutable_strings();
  int64_t* zd = z.mutable_data<int64_t>();
  for (size_t i = 0; i < parts.size(); ++i) {
    zd[i] = static_cast<int64_t>(parts[i].size());
    for (size_t k = 0; k < parts[i].size(); ++k) ys[i * width + k] = parts[i][k];
  }
  ctx.set_output(0, std::move(y));
  if (ctx.num_outputs() > 1) ctx.set_output(1, std::move(z));
  return Status::Ok();
}

// ---------------------------------------------------------------- StringNormalizer
// Input [C] or [1, C]. Removes stopwords (whole words; case-insensitively
// unless is_case_sensitive), changes case, and drops the elements left empty
// (all empty: a single ""), as the ONNX reference does.

Status InferStringNormalizer(InferContext& ctx) {
  const Shape& s = ctx.input_shape(0);
  if (s.rank_known() && s.rank() != 1 && s.rank() != 2) return ctx.Error("input must be [C] or [1, C]");
  Shape y = Shape::Unranked();
  if (s.rank() == 1) y = Shape({Dim::Unknown()});
  if (s.rank() == 2) y = Shape({s[0], Dim::Unknown()});
  ctx.set_output(0, DataType::kString, y);
  return Status::Ok();
}

Status RunStringNormalizer(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(CheckString(ctx, 0));
  const Tensor& x = ctx.input(0);
  if (x.rank() != 1 && (x.rank() != 2 || x.dim(0) != 1)) return ctx.Error("input must be [C] or [1, C]");
  const std::string action = ctx.attr_string("case_change_action", "NONE");
  if (action != "NONE" && action != "LOWER" && action != "UPPER")
    return ctx.Error("unknown case_change_action '" + action + "'");
  const bool sensitive = ctx.attr_int("is_case_sensitive", 0) != 0;
  std::set<std::string> stops;
  for (const std::string& w : ctx.attr_strings("stopwords"))
    stops.insert(sensitive ? w : ChangeCase(w, false));

  std::vector<std::string> kept;
  for (const std::string& s : x.strings()) {
    // Remove stopwords word by word (elements are usually single words).
    std::string text;
    size_t start = 0;
    bool first = true;
    while (start <= s.size()) {
      size_t sp = s.find(' ', start);
      if (sp == std::string::npos) sp = s.size();
      std::string word = s.substr(start, sp - start);
      if (!stops.count(sensitive ? word : ChangeCase(word, false))) {
        if (!first) text += ' ';
        text += word;
        first = false;
      }
      start = sp + 1;
    }
    if (action == "LOWER") text = ChangeCase(text, false);
    if (action == "UPPER") text = ChangeCase(text, true);
    if (!text.empty()) kept.push_back(std::move(text));
  }
  if (kept.empty()) kept.push_back("");
  const int64_t n = static_cast<int64_t>(kept.size());
  Tensor y(DataType::kString, x.rank() == 1 ? std::vector<int64_t>{n} : std::vector<int64_t>{1, n});
  y.mutable_strings() = std::move(kept);
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

// ---------------------------------------------------------------- TfIdfVectorizer
// The pool holds n-grams grouped by size (ngram_counts gives where each size
// starts). For every row, every start position and every skip distance
// (1..max_skip_count+1; unigrams only once), n-grams of the configured sizes
// found in the pool count toward output column ngram_indexes[pool position].

namespace {

template <class K>
struct NgramPool {
  std::map<std::vector<K>, int64_t> index;  // n-gram -> output column
};

template <class K>
Expected<NgramPool<K>> BuildPool(const RunContext& ctx, const std::vector<K>& pool,
                                 const std::vector<int64_t>& counts, const std::vector<int64_t>& indexes,
                                 int64_t min_n, int64_t max_n) {
  NgramPool<K> p;
  size_t ngram_id = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const int64_t n = static_cast<int64_t>(i) + 1;
    const size_t start = static_cast<size_t>(counts[i]);
    const size_t end = i + 1 < counts.size() ? static_cast<size_t>(counts[i + 1]) : pool.size();
    if (start > end || end > pool.size()) return ctx.Error("ngram_counts do not fit the pool");
    for (size_t s = start; s + static_cast<size_t>(n) <= end; s += static_cast<size_t>(n), ++ngram_id) {
      if (ngram_id >= indexes.size()) return ctx.Error("ngram_indexes is shorter than the pool");
      if (n < min_n || n > max_n) continue;
      std::vector<K> key(pool.begin() + static_cast<long>(s), pool.begin() + static_cast<long>(s) + n);
      p.index.emplace(std::move(key), indexes[ngram_id]);
    }
  }
  return p;
}

template <class K>
void CountRow(const std::vector<K>& row, const NgramPool<K>& pool, int64_t min_n, int64_t max_n,
              int64_t max_skip, int64_t* freq) {
  const int64_t len = static_cast<int64_t>(row.size());
  for (int64_t skip = 1; skip <= max_skip + 1; ++skip) {
    const int64_t first_n = (skip > 1 && min_n == 1) ? 2 : min_n;  // unigrams counted once
    if (first_n > max_n) break;
    for (int64_t start = 0; start < len; ++start) {
      std::vector<K> key;
      for (int64_t n = 1; n <= max_n; ++n) {
        int64_t pos = start + (n - 1) * skip;
        if (pos >= len) break;
        key.push_back(row[static_cast<size_t>(pos)]);
        if (n < first_n) continue;
        auto it = pool.index.find(key);
        if (it != pool.index.end()) ++freq[it->second];
      }
    }
  }
}

}  // namespace

Status InferTfIdfVectorizer(InferContext& ctx) {
  std::vector<int64_t> idx = ctx.attr_ints("ngram_indexes");
  int64_t size = 0;
  for (int64_t i : idx) size = std::max(size, i + 1);
  const Shape& s = ctx.input_shape(0);
  if (s.rank_known() && s.rank() > 2) return ctx.Error("input must be [C] or [B, C]");
  Shape y = Shape::Unranked();
  if (s.rank() == 0 || s.rank() == 1) y = Shape({Dim(size)});
  if (s.rank() == 2) y = Shape({s[0], Dim(size)});
  ctx.set_output(0, DataType::kFloat, y);
  return Status::Ok();
}

Status RunTfIdfVectorizer(RunContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.rank() > 2) return ctx.Error("input must be [C] or [B, C]");
  const int64_t min_n = ctx.attr_int("min_gram_length", 1), max_n = ctx.attr_int("max_gram_length", 1);
  const int64_t max_skip = ctx.attr_int("max_skip_count", 0);
  const std::string mode = ctx.attr_string("mode", "TF");
  if (mode != "TF" && mode != "IDF" && mode != "TFIDF") return ctx.Error("unknown mode '" + mode + "'");
  if (min_n < 1 || max_n < min_n || max_skip < 0) return ctx.Error("bad gram lengths or max_skip_count");
  const std::vector<int64_t> counts = ctx.attr_ints("ngram_counts");
  const std::vector<int64_t> indexes = ctx.attr_ints("ngram_indexes");
  const std::vector<float> weights = ctx.attr_floats("weights");
  int64_t out_size = 0;
  for (int64_t i : indexes) {
    if (i < 0) return ctx.Error("ngram_indexes must be >= 0");
    out_size = std::max(out_size, i + 1);
  }
  if (!weights.empty() && static_cast<int64_t>(weights.size()) < out_size)
    return ctx.Error("weights is shorter than the output");
  const int64_t rows = x.rank() == 2 ? x.dim(0) : 1;
  const int64_t cols = x.rank() == 2 ? x.dim(1) : x.numel();
  std::vector<int64_t> freq(static_cast<size_t>(rows * out_size), 0);

  if (x.dtype() == DataType::kString) {
    KILN_ASSIGN_OR_RETURN(auto pool, BuildPool<std::string>(ctx, ctx.attr_strings("pool_strings"), counts,
                                                            indexes, min_n, max_n));
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<std::string> row(x.strings().begin() + r * cols, x.strings().begin() + (r + 1) * cols);
      CountRow(row, pool, min_n, max_n, max_skip, &freq[static_cast<size_t>(r * out_size)]);
    }
  } else if (x.dtype() == DataType::kInt32 || x.dtype() == DataType::kInt64) {
    KILN_ASSIGN_OR_RETURN(
        auto pool, BuildPool<int64_t>(ctx, ctx.attr_ints("pool_int64s"), counts, indexes, min_n, max_n));
    std::vector<int64_t> all = x.ToInt64s();
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<int64_t> row(all.begin() + r * cols, all.begin() + (r + 1) * cols);
      CountRow(row, pool, min_n, max_n, max_skip, &freq[static_cast<size_t>(r * out_size)]);
    }
  } else {
    return ctx.Error("input must be string, int32 or int64");
  }

  Tensor y(DataType::kFloat,
           x.rank() == 2 ? std::vector<int64_t>{rows, out_size} : std::vector<int64_t>{out_size});
  float* yd = y.mutable_data<float>();
  for (size_t i = 0; i < freq.size(); ++i) {
    const float w = weights.empty() ? 1.0f : weights[i % static_cast<size_t>(out_size)];
    const float f = static_cast<float>(freq[i]);
    if (mode == "TF")
      yd[i] = f;
    else if (mode == "IDF")
      yd[i] = freq[i] > 0 ? w : 0.0f;
    else
      yd[i] = f * w;
  }
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
